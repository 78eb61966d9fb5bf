"""`cyclefix tui`: open the terminal UI on a project (Textual is imported only when it runs)."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from cyclefix.cli import EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "tui",
        help="open the terminal UI: watch a project, run its tests, review verified fixes",
        description="Watch PATH (a project folder, default: the current folder), re-run the "
        "tests a save affects, ask a local model to fix a failing test and review the verified "
        "fix before it touches your files.",
    )
    parser.add_argument(
        "path", nargs="?", type=Path, default=Path("."), help="project folder (default: .)"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="registry name, path to a .gguf file, or openai:URL#MODEL "
        "(default: the registry's default model)",
    )
    parser.add_argument(
        "--tests",
        nargs="+",
        metavar="TEST",
        help="test files or node ids to run instead of the whole suite",
    )
    parser.add_argument("--rounds", type=int, default=None, help="refinement rounds (default 4)")
    parser.add_argument(
        "--trust-project",
        action="store_true",
        help="trust the model and python the project's pyproject.toml names",
    )
    parser.add_argument(
        "--no-watch", action="store_true", help="do not re-run tests when files are saved"
    )
    parser.set_defaults(func=run_tui)


def run_tui(args: argparse.Namespace) -> int:
    from cyclefix.config import parse_overrides, trust_project
    from cyclefix.errors import CyclefixError
    from cyclefix.refine import find_project_root, open_backend
    from cyclefix.session.models import model_names
    from cyclefix.session.settings import selected_tests, session_settings
    from cyclefix.tui.app import CyclefixApp
    from cyclefix.tui.settings import TuiSettings

    path: Path = args.path
    if not path.exists():
        raise CyclefixError(f"no such file or folder: {path}")
    root = find_project_root(path.resolve(), args.tests or ())
    # One configuration (cyclefix.config): flags over [tool.cyclefix] over the user's file.
    flags, problems = parse_overrides(
        {"model": args.model, "tests": args.tests, "rounds": args.rounds}, "command line"
    )
    if problems:
        raise CyclefixError("; ".join(p.removesuffix("; using the default") for p in problems))
    if args.trust_project:
        trust_project(root)
    resolved = session_settings(root, flags=flags)
    # A project's model or python not trusted yet: the app asks in a dialog, default meanwhile.
    shared = resolved.settings
    # --tests are relative to the current folder; a settings file's to the project root.
    tests = selected_tests(root, resolved, from_cwd=True)
    settings = TuiSettings(
        root=root,
        model=shared.model,
        tests=tests,
        config=shared.refine_config(),
        model_names=model_names(),
        watch=not args.no_watch,
        untrusted=resolved.untrusted,
        git_on_apply=shared.git_on_apply,
    )
    # The model loads with the threads and gpuLayers settings.
    factory = functools.partial(
        open_backend, n_threads=shared.threads, n_gpu_layers=shared.gpu_layers
    )
    CyclefixApp(settings, backend_factory=factory).run()
    return EXIT_OK
