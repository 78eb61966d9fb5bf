"""`cyclefix fix`: run the tests, refine with a local model, show (and apply) a verified fix."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from cyclefix.cli import EXIT_NOT_FIXED, EXIT_OK, EXIT_USAGE
from cyclefix.models.registry import DEFAULT_MODEL

if TYPE_CHECKING:
    from rich.console import Console

    from cyclefix.config import ResolvedSettings, Settings
    from cyclefix.refine import RefineConfig, Selection, WarmWorkers
    from cyclefix.refine.console import Progress
    from cyclefix.refine.types import FixResult

# The flag that replaces each project setting that needs trust (named in the refusal).
TRUST_FLAGS = {"model": "--model", "python": "--python"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "fix",
        help="run the tests of PATH and propose a fix that makes them pass",
        description="Run the tests for PATH (a file or project folder); when some fail, let a "
        "local model propose fixes, verify each in a scratch copy, and show only a fix under "
        "which every selected test passes. Your files change only with --apply. When stdout "
        "is not a terminal it gets the diff alone (cyclefix fix . > fix.diff && git apply "
        "fix.diff) and the progress goes to stderr. Settings not given as flags come from "
        "[tool.cyclefix] in the project's pyproject.toml, then the user's config file (see "
        "`cyclefix config`).",
    )
    p.add_argument("path", type=Path, help="a Python file or a project folder")
    p.add_argument(
        "--tests",
        nargs="+",
        metavar="TEST",
        help="test files or node ids to use "
        "(default: the tests that import PATH, else the whole suite)",
    )
    p.add_argument(
        "--model",
        default=None,
        help=f"registry name, path to a .gguf file, or openai:URL#MODEL (default: {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="refinement rounds (default 4); when they end without a fix, more rounds follow "
        "(other suspects, rewrites from the intent, hotter samples) until --budget is spent",
    )
    p.add_argument(
        "--budget", type=float, default=None, help="time budget in seconds (default 300)"
    )
    p.add_argument(
        "--no-extend",
        action="store_true",
        help="stop after --rounds even when budget remains (the bench's CYCLE protocol)",
    )
    p.add_argument(
        "--per-test-timeout",
        type=float,
        default=None,
        help="seconds before a test counts as hung (default 3)",
    )
    p.add_argument(
        "--python",
        default=None,
        metavar="PATH",
        help="Python that runs the tests (default, the first with pytest: the activated "
        "$VIRTUAL_ENV, a .venv, venv or env folder in the project or a folder above it, "
        "else cyclefix's own)",
    )
    p.add_argument(
        "--pass-env",
        action="append",
        default=None,
        metavar="NAME",
        help="an environment variable the tests need, passed through (repeatable; only a "
        "small allowlist passes by default, never CYCLEFIX_*)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument(
        "--gpu-layers",
        default=None,
        metavar="N",
        help='model layers to run on the GPU: a number, 0 for CPU only, or "all" (default: all '
        "when llama.cpp was built with a GPU backend, else 0)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for the model (default: the physical cores)",
    )
    p.add_argument("--apply", action="store_true", help="write the verified fix to your files")
    git = p.add_mutually_exclusive_group()
    git.add_argument(
        "--commit",
        action="store_true",
        help="with --apply: commit the fix (message naming the tests it made pass); refused "
        "when a file it changes has uncommitted changes",
    )
    git.add_argument("--stage", action="store_true", help="with --apply: git add the fixed files")
    p.add_argument(
        "--trust-project",
        action="store_true",
        help="trust the model and python the project's pyproject.toml names (remembered in "
        "your config folder, for this project and those values)",
    )
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-q", "--quiet", action="store_true", help="no progress: the result only"
    )
    verbosity.add_argument(
        "-v", "--verbose", action="store_true", help="each candidate's feedback and speed too"
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run_fix)


def run_fix(args: argparse.Namespace) -> int:
    from cyclefix.errors import CyclefixError

    started = time.monotonic()
    try:
        return _run_fix(args)
    except CyclefixError as exc:
        if not args.json:
            raise
        # --json promises one object on stdout, also when the run never started.
        _print_json_error(args, str(exc), time.monotonic() - started)
        print(f"cyclefix: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _print_json_error(args: argparse.Namespace, message: str, seconds: float) -> None:
    from cyclefix.refine.report import fix_result_to_dict
    from cyclefix.refine.types import FixResult

    given = Path(args.path).expanduser().absolute()
    root = given if given.is_dir() else given.parent
    model = args.model or DEFAULT_MODEL
    result = FixResult("error", root, (), "", (), None, None, seconds, model, error=message)
    print(json.dumps(fix_result_to_dict(result), indent=2))


def fix_settings(args: argparse.Namespace) -> tuple[Path, ResolvedSettings]:
    """The project root and its settings: flags over [tool.cyclefix] over the user's config."""
    from cyclefix.config import load_settings, parse_overrides, require_trusted, trust_project
    from cyclefix.errors import CyclefixError
    from cyclefix.refine import find_project_root

    path: Path = args.path
    if not path.exists():
        raise CyclefixError(f"no such file or folder: {path}")
    root = find_project_root(path.resolve(), args.tests or ())
    given = {
        "model": args.model,
        "tests": args.tests,
        "rounds": args.rounds,
        "budget": args.budget,
        "perTestTimeout": args.per_test_timeout,
        "python": args.python,
        "gpuLayers": _gpu_layers(args.gpu_layers),
        "threads": args.threads,
        "gitOnApply": "commit" if args.commit else "stage" if args.stage else None,
        "passEnv": args.pass_env,
    }
    flags, problems = parse_overrides(given, "command line")
    if problems:
        # The validator's names are the settings'; say them as the flags they came from.
        raise CyclefixError(
            "; ".join(
                p.removeprefix("command line: ").removesuffix("; using the default")
                for p in problems
            )
        )
    if args.trust_project:
        trust_project(root)
    resolved = load_settings(root, flags=flags)
    require_trusted(resolved, TRUST_FLAGS)
    return root, resolved


def _gpu_layers(value: str | None) -> int | str | None:
    if value is None or value == "all":
        return value
    try:
        return int(value)
    except ValueError:
        return value  # the validator names what is expected


def _run_fix(args: argparse.Namespace) -> int:
    from cyclefix import refine
    from cyclefix.config import tests_under_root
    from cyclefix.errors import CyclefixError
    from cyclefix.refine.console import (
        NORMAL,
        QUIET,
        VERBOSE,
        Progress,
        choose_outputs,
        plain,
        print_result,
    )
    from cyclefix.refine.report import fix_result_to_dict

    command_started = time.monotonic()
    if (args.commit or args.stage) and not args.apply:
        raise CyclefixError("--commit and --stage keep an applied fix: add --apply")
    verbosity = QUIET if args.quiet else VERBOSE if args.verbose else NORMAL
    outputs = choose_outputs(verbosity, args.json)
    out = outputs.progress
    root, resolved = fix_settings(args)
    settings = resolved.settings
    for warning in resolved.warnings:
        out.print(f"[yellow]warning:[/] {plain(warning)}")
    path: Path = args.path
    if args.apply and settings.git_on_apply != "none" and path.is_file():
        # Refused now rather than after the model's minutes: the commit must hold the fix alone.
        from cyclefix.refine.git import check_clean

        check_clean([path.resolve()])
    # --tests are relative to the current folder; a settings file's to the project root.
    from_flag = resolved.sources["tests"] == "command line"
    tests = (list(settings.tests) if from_flag else tests_under_root(root, settings.tests)) or None
    config = dataclasses.replace(
        settings.refine_config(seed=args.seed), extend_to_budget=not args.no_extend
    )
    cancel = threading.Event()
    progress = Progress(out, verbosity)
    _cancel_on_signals(cancel)

    # Worked out once: the check and the fix run the same tests with the same Python.
    selection = refine.select(path, tests, config=config)
    # pytest and its plugins started once for the candidates: each run a fork (runner.warm).
    with refine.WarmWorkers() as warm:
        result, initial_tests_s, model_load_s = _check_and_fix(
            selection, settings, config, progress, cancel, warm, out
        )
    applied, kept = False, ""
    if args.apply and result.status == "fixed":
        try:
            kept = refine.apply_and_keep(result, settings.git_on_apply).git
            applied = True
        except CyclefixError as exc:
            # A stale or dirty file, or an OS error: the files are as they were.
            result = dataclasses.replace(
                result, status="error", error=f"the verified fix was not applied: {exc}"
            )
    # The whole command's seconds, so that its phases add up to what the user waited.
    result = dataclasses.replace(
        result,
        seconds=time.monotonic() - command_started,
        model_load_s=model_load_s,
        initial_tests_s=initial_tests_s,
    )
    if args.json:
        print(json.dumps(fix_result_to_dict(result, applied=applied), indent=2))
    else:
        print_result(outputs, result, applied, kept)
    if result.status in ("fixed", "already_passing"):
        return EXIT_OK
    if result.status == "error":
        return EXIT_USAGE
    return EXIT_NOT_FIXED


def _check_and_fix(
    selection: Selection,
    settings: Settings,
    config: RefineConfig,
    progress: Progress,
    cancel: threading.Event,
    warm: WarmWorkers,
    out: Console,
) -> tuple[FixResult, float, float]:
    """The user's run of the tests, then (when something fails) the model's fix; with the
    seconds of that run and of loading the model."""
    from cyclefix import refine
    from cyclefix.refine.console import plain
    from cyclefix.refine.types import FixResult

    # The candidates' worker warms up beside the user's run and the model's load.
    refine.prepare_candidates(selection, config, warm)
    tests_started = time.monotonic()
    initial = _in_worker(
        # Cold: a worker pays off from its second run, and this kind runs once per command.
        lambda: refine.check(selection, config=config, on_event=progress, cancel=cancel),
        cancel,
    )
    initial_tests_s = time.monotonic() - tests_started
    # Import-time errors in project code are bugs for the model (refine.importtime); other
    # collection errors, no tests or nothing failing end without loading it.
    settled = FixResult.without_model(initial, time.monotonic() - tests_started)
    if settled is not None:
        return settled, initial_tests_s, 0.0
    loading = time.monotonic()
    with out.status(f"Loading model {plain(settings.model)}…"):
        backend = refine.open_backend(
            settings.model, n_threads=settings.threads, n_gpu_layers=settings.gpu_layers
        )
    model_load_s = time.monotonic() - loading
    device = getattr(backend, "device", None)
    if device is not None:
        progress.print(f"Model {plain(backend.name)} on {plain(device.describe())}")
    try:
        result = _in_worker(
            lambda: refine.fix(
                selection,
                backend,
                config=config,
                initial_run=initial,
                on_event=progress,
                cancel=cancel,
                warm=warm,
            ),
            cancel,
        )
    finally:
        progress.stop()
        backend.close()
    return result, initial_tests_s, model_load_s


def _in_worker(job: Any, cancel: threading.Event) -> Any:
    """Run job in a thread so Ctrl-C cancels it cleanly instead of tearing through it."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = job()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="cyclefix-fix", daemon=True)
    worker.start()
    while worker.is_alive():
        try:
            worker.join(0.2)
        except KeyboardInterrupt:
            cancel.set()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _cancel_on_signals(cancel: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        cancel.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
