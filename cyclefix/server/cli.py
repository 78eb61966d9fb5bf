"""`cyclefix serve`: run the language server for an editor."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from cyclefix.errors import CyclefixError

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def parse_host_port(value: str) -> tuple[str, int]:
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise CyclefixError(f"--tcp expects HOST:PORT, got {value!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise CyclefixError(f"--tcp port must be a number, got {port_text!r}") from None
    if not 1 <= port <= 65535:
        raise CyclefixError(f"--tcp port must be from 1 to 65535, got {port}")
    return host.strip("[]"), port


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the language server (LSP) for editors",
        description="Language server: runs the tests of a Python file when it is saved, "
        "shows failures as diagnostics, and offers fixes that passed the tests as code "
        "actions. Speaks LSP on stdin/stdout unless --tcp is given.",
    )
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument(
        "--stdio", action="store_true", help="speak LSP on stdin/stdout (the default)"
    )
    transport.add_argument(
        "--tcp", metavar="HOST:PORT", help="listen on a TCP port for one editor connection"
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="log file (default: server.log in the user's log dir)",
    )
    parser.add_argument(
        "--log-level", choices=sorted(_LEVELS), default="info", help="log file detail"
    )
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    tcp = parse_host_port(args.tcp) if args.tcp else None
    from cyclefix.server.logs import default_log_file, setup_file_logging

    log_file = setup_file_logging(args.log_file or default_log_file(), _LEVELS[args.log_level])
    logger = logging.getLogger("cyclefix.server")
    logger.info("starting cyclefix serve (%s), log %s", "tcp" if tcp else "stdio", log_file)

    from cyclefix.server.handlers import create_server

    server = create_server()
    try:
        if tcp is not None:
            server.start_tcp(*tcp)
        else:
            # Keep the real stdout for the protocol only; anything else that writes to fd 1
            # (a print, a C library, a child process) lands on stderr instead.
            protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
            os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
            sys.stdout = sys.stderr
            server.start_io(sys.stdin.buffer, protocol_out)
    finally:
        server.stop_work()
        logger.info("cyclefix serve stopped")
    return 0
