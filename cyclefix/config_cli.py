"""`cyclefix config [PATH]`: the effective settings for a project and where each came from."""

from __future__ import annotations

import argparse
from pathlib import Path

from cyclefix.cli import EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "config",
        help="show the effective settings for a project and where each came from",
        description="Print every setting `fix`, `tui` and `serve` use for PATH (default: the "
        "current folder) and its source. Precedence, highest first: command-line flags, editor "
        "or TUI settings, [tool.cyclefix] in the project's pyproject.toml, the user's config "
        "file ($XDG_CONFIG_HOME/cyclefix/config.toml, else ~/.config/cyclefix/config.toml), "
        "the defaults. A project's model or python counts only once trusted.",
    )
    parser.add_argument(
        "path", nargs="?", type=Path, default=Path("."), help="a file or project folder"
    )
    parser.set_defaults(func=run_config)


def run_config(args: argparse.Namespace) -> int:
    from cyclefix.config import format_settings, load_settings
    from cyclefix.errors import CyclefixError
    from cyclefix.runner.project import find_project_root

    path: Path = args.path
    if not path.exists():
        raise CyclefixError(f"no such file or folder: {path}")
    root = find_project_root(path.resolve())
    print(f"Settings for {root}")
    print(format_settings(load_settings(root)))
    return EXIT_OK
