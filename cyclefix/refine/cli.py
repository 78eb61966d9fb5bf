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

if TYPE_CHECKING:
    from rich.console import Console

    from cyclefix.refine.types import FixResult, RefineEvent

EXIT_OK, EXIT_NOT_FIXED, EXIT_USAGE = 0, 1, 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "fix",
        help="run the tests of PATH and propose a fix that makes them pass",
        description="Run the tests for PATH (a file or project folder); when some fail, let a "
        "local model propose fixes, verify each in a scratch copy, and show only a fix under "
        "which every selected test passes. Your files change only with --apply.",
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
        help="registry name, path to a .gguf file, or "
        "openai:URL#MODEL (default: qwen2.5-coder-1.5b)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="refinement rounds (default 4); when they end without a fix, more rounds follow "
        "(other suspects, rewrites from the intent, hotter samples) until --budget is spent",
    )
    p.add_argument(
        "--budget", type=float, default=300.0, help="time budget in seconds (default 300)"
    )
    p.add_argument(
        "--no-extend",
        action="store_true",
        help="stop after --rounds even when budget remains (the bench's CYCLE protocol)",
    )
    p.add_argument(
        "--per-test-timeout", type=float, default=3.0, help="seconds before a test counts as hung"
    )
    p.add_argument(
        "--python",
        default=None,
        metavar="PATH",
        help="Python that runs the tests (default: the project's .venv, venv or env, or the "
        "activated environment, when it has pytest; else cyclefix's own)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--apply", action="store_true", help="write the verified fix to your files")
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
    from cyclefix.models.registry import DEFAULT_MODEL
    from cyclefix.refine.report import fix_result_to_dict
    from cyclefix.refine.types import FixResult

    given = Path(args.path).expanduser().absolute()
    root = given if given.is_dir() else given.parent
    model = args.model or DEFAULT_MODEL
    result = FixResult("error", root, (), "", (), None, None, seconds, model, error=message)
    print(json.dumps(fix_result_to_dict(result), indent=2))


def _run_fix(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cyclefix import refine
    from cyclefix.errors import CyclefixError
    from cyclefix.models.registry import DEFAULT_MODEL
    from cyclefix.refine.report import fix_result_to_dict

    out = Console(stderr=args.json, highlight=False)
    path: Path = args.path
    if not path.exists():
        raise CyclefixError(f"no such file or folder: {path}")
    if args.rounds < 1 or args.budget <= 0 or args.per_test_timeout <= 0:
        raise CyclefixError("--rounds, --budget and --per-test-timeout must be positive")
    config = refine.RefineConfig(
        rounds=args.rounds,
        budget_seconds=args.budget,
        per_test_timeout=args.per_test_timeout,
        seed=args.seed,
        python=args.python,
        extend_to_budget=not args.no_extend,
    )
    cancel = threading.Event()
    progress = _Progress(out)
    _cancel_on_signals(cancel)

    initial = _in_worker(
        lambda: refine.check(path, args.tests, config=config, on_event=progress, cancel=cancel),
        cancel,
    )
    result: FixResult
    if initial.cancelled or initial.all_passed or not initial.tests or initial.collection_errors:
        result = refine.fix(
            path, _NoModel(), tests=args.tests, config=config, initial_run=initial, cancel=cancel
        )
    else:
        spec = args.model or DEFAULT_MODEL
        with out.status(f"Loading model {spec}…"):
            backend = refine.open_backend(spec)
        try:
            result = _in_worker(
                lambda: refine.fix(
                    path,
                    backend,
                    tests=args.tests,
                    config=config,
                    initial_run=initial,
                    on_event=progress,
                    cancel=cancel,
                ),
                cancel,
            )
        finally:
            progress.stop()
            backend.close()
    applied = False
    if args.apply and result.status == "fixed":
        try:
            refine.apply_fix(result)
            applied = True
        except CyclefixError as exc:
            # A stale file or an OS error: the files are as they were; the verified diff stays.
            result = dataclasses.replace(
                result, status="error", error=f"the verified fix was not applied: {exc}"
            )
    if args.json:
        print(json.dumps(fix_result_to_dict(result, applied=applied), indent=2))
    else:
        _print_result(out, result, applied)
    if result.status in ("fixed", "already_passing"):
        return EXIT_OK
    if result.status == "error":
        return EXIT_USAGE
    return EXIT_NOT_FIXED


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


class _NoModel:
    """Stands in where no generation will happen (tests pass, or cannot run), so no model loads."""

    name = "none"

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no model is loaded")

    def forks_along(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no model is loaded")

    def close(self) -> None:
        pass


class _Progress:
    """Turns refine events into lines and a live status on the console."""

    def __init__(self, out: Console) -> None:
        from cyclefix import refine

        self.out = out
        self.refine = refine
        self.status: Any = None
        self.tokens = 0
        self.round = ""

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def _show(self, text: str) -> None:
        if self.status is None:
            self.status = self.out.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def __call__(self, event: RefineEvent) -> None:
        r = self.refine
        if isinstance(event, r.TestsStarted):
            where = "candidate in a scratch copy" if event.scratch else _plain(str(event.root))
            self._show(f"Running {len(event.tests) or 'all'} test selection(s) on {where}…")
        elif isinstance(event, r.TestsFinished):
            self.stop()
            if not event.scratch:
                run = event.run
                self.out.print(
                    f"[bold]{len(run.passed)} passed, {len(run.failures)} failing[/] "
                    f"in {run.duration:.1f}s ({_plain(str(run.root))})"
                )
                for case in run.failures:
                    self.out.print(f"  [red]✗[/] {_plain(case.nodeid)}")
                    self.out.print(f"    [dim]{_plain(_short(r.feedback_text(case)))}[/]")
        elif isinstance(event, r.RoundStarted):
            self.tokens = 0
            self.round = f"Round {event.index}/{event.total}"
            names = _plain(", ".join(event.targets))
            self.out.print(
                f"[bold cyan]{self.round}[/]: rewriting {names} (temperature {event.temperature})"
            )
            self._show(f"{self.round}: generating…")
        elif isinstance(event, r.TextGenerated):
            self.tokens += 1
            self._show(f"{self.round}: generating… {self.tokens} pieces")
        elif isinstance(event, r.AttemptFinished):
            self.stop()
            a = event.attempt
            mark = "[green]✓[/]" if a.verdict == "passed" else "[yellow]✗[/]"
            speed = a.completion_tokens / a.seconds if a.seconds else 0.0
            fork = " [dim](fork of the copy)[/]" if a.forked else ""
            self.out.print(
                f"  {mark} {a.verdict}{fork}: {_plain(_short(a.detail))} "
                f"[dim]({a.completion_tokens} tokens, {a.seconds:.1f}s, {speed:.1f} tok/s overall)[/]"
            )


def _plain(text: str) -> str:
    """User text (test ids, source lines) as Rich markup: `[input-1]` and `x[i]` stay as is."""
    from rich.markup import escape

    return escape(text)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _print_result(out: Console, result: FixResult, applied: bool) -> None:
    from rich.syntax import Syntax

    if result.status == "fixed":
        out.print(Syntax(result.diff, "diff", theme="ansi_dark", background_color="default"))
        verb = "Applied" if applied else "Verified fix (not applied; use --apply)"
        final = result.final_run
        n = len(final.tests) if final else 0
        out.print(
            f"[bold green]{verb}[/]: all {n} selected tests pass "
            f"({len(result.rounds)} round(s), {result.seconds:.1f}s, model {result.model})"
        )
    elif result.status == "already_passing":
        out.print("[green]All selected tests already pass: nothing to fix.[/]")
    elif result.status == "error":
        if result.diff:  # a verified fix that --apply could not write
            out.print(Syntax(result.diff, "diff", theme="ansi_dark", background_color="default"))
        out.print(f"[red]error:[/] {_plain(result.error or '')}")
    elif result.status == "cancelled":
        out.print("[yellow]Cancelled.[/] Your files are unchanged.")
    else:
        copies = sum(1 for a in result.attempts if a.is_copy)
        out.print(
            f"[yellow]No verified fix[/] after {len(result.rounds)} round(s) in {result.seconds:.1f}s "
            f"({len(result.attempts)} attempts, {copies} copies refused). Your files are unchanged."
        )
        for note in result.notes:
            out.print(f"  [dim]{_plain(note)}[/]")
    sys.stdout.flush()
