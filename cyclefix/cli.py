"""The `cyclefix` command: one subcommand per job, each defined next to the code it drives."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cyclefix import __version__
from cyclefix.errors import CyclefixError

# Exit codes shared by every subcommand.
EXIT_OK = 0
EXIT_NOT_FIXED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    # Each register() only adds arguments; heavy imports happen inside the handlers.
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
    )
    parser.add_argument("--version", action="version", version=f"cyclefix {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (refine_cli, models_cli, server_cli, tui_cli, bench_cli, training_cli):
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except CyclefixError as exc:
        print(f"cyclefix: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("cyclefix: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
