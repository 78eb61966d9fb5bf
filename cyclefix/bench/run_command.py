"""`cyclefix bench SUITE`: run the suite's tasks with each model, with a progress bar, and write
the results (resumable on a rerun)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cyclefix.bench.outputs import log_command, write_outputs, write_projects_outputs
from cyclefix.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

if TYPE_CHECKING:
    from cyclefix.bench.projects_run import ProjectSuite
    from cyclefix.bench.tasks import BenchTask


def _load_projects(args: argparse.Namespace, console: Any) -> tuple[ProjectSuite, list[BenchTask]]:
    """The bugs chosen by --libraries, --tasks, --task-seed and --limit, their libraries ready."""
    from cyclefix.bench.harness import select_tasks
    from cyclefix.bench.projects_manifest import read_manifest
    from cyclefix.bench.projects_run import load_project_suite, select_bug_ids
    from cyclefix.bench.tasks import BenchTask

    manifest = read_manifest(args.manifest)
    ids = select_bug_ids(manifest, args.libraries)
    placeholders = [BenchTask(task_id=i, kind="folder") for i in ids]
    chosen = select_tasks(placeholders, ids=args.tasks, limit=args.limit, task_seed=args.task_seed)

    def preparing(spec: Any) -> None:
        console.print(f"Preparing {spec.slug} (download, unpack, its tests as shipped)…")

    suite = load_project_suite(manifest, [t.task_id for t in chosen], on_library=preparing)
    return suite, list(suite.tasks)


def _load_tasks(args: argparse.Namespace) -> list[BenchTask]:
    if args.suite == "humaneval":
        from cyclefix.bench.humaneval import load_humaneval

        return load_humaneval()
    if args.suite == "mbpp":
        from cyclefix.bench.mbpp import load_mbpp

        return load_mbpp(args.data)
    if args.suite == "mbpp+":
        from cyclefix.bench.mbpp import load_mbpp_plus

        return load_mbpp_plus(args.data)
    if args.suite.startswith("evalplus-"):
        from cyclefix.bench.evalplus import load_evalplus

        return load_evalplus(args.suite, getattr(args, "data", None))
    from cyclefix.bench.folder import load_folder

    return load_folder(args.path, per_test_timeout=args.per_test_timeout)


def run_bench(args: argparse.Namespace) -> int:
    import os
    import shlex
    import signal
    import sys
    import threading
    from datetime import UTC, datetime

    from rich.console import Console

    from cyclefix.bench.evalplus_scores import scores_recorded
    from cyclefix.bench.harness import BenchRun, select_tasks
    from cyclefix.bench.projects_run import ProjectsRun
    from cyclefix.bench.run_settings import BenchSettings
    from cyclefix.errors import CyclefixError
    from cyclefix.models.registry import DEFAULT_MODEL

    for name in ("samples", "workers", "max_tokens"):
        if getattr(args, name) < 1:
            raise CyclefixError(f"--{name.replace('_', '-')} must be at least 1")
    if args.rounds < 0:
        raise CyclefixError("--rounds must be 0 (round 0 alone) or more")
    if args.agreement_answers < 0:
        raise CyclefixError("--agreement-answers must be 0 or more")
    if args.budget <= 0 or args.per_test_timeout <= 0:
        raise CyclefixError("--budget and --per-test-timeout must be positive")
    if not args.pytest_plugins:
        # Inherited by every pytest the runner starts, in check() and in the refine loop alike.
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    console = Console(stderr=True, highlight=False)
    out_dir: Path = args.out or Path("bench-out") / args.suite.replace("+", "plus")
    settings = BenchSettings(
        suite=args.suite,
        rounds=args.rounds,
        samples=args.samples,
        seed=args.seed,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        budget_seconds=args.budget,
        per_test_timeout=args.per_test_timeout,
        keep_work=args.keep_work,
        extend_to_budget=args.extend,
        agreement_answers=args.agreement_answers,
    )
    projects: ProjectSuite | None = None
    if args.suite == "projects":
        projects, tasks = _load_projects(args, console)
    else:
        with console.status(f"Loading {args.suite} tasks…"):
            tasks = select_tasks(
                _load_tasks(args), ids=args.tasks, limit=args.limit, task_seed=args.task_seed
            )
    meta: dict[str, Any] = {
        "command": shlex.join(["cyclefix", *sys.argv[1:]]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "tasks": len(tasks),
        "task_seed": args.task_seed,
        "limit": args.limit,
        "errors": [],
    }
    log_command(out_dir, meta, args.model or [DEFAULT_MODEL])
    interrupted = False
    cancel = threading.Event()
    if threading.current_thread() is threading.main_thread():
        # `kill` stops a bench like Ctrl-C does: finished lines kept, the rest resumable.
        signal.signal(signal.SIGTERM, _interrupt)
    for spec in args.model or [DEFAULT_MODEL]:
        with console.status(f"Loading model {spec}…"):
            backend = _open(spec, args.threads)
        try:
            serialize = not spec.startswith("openai:")
            if args.suite.startswith("evalplus-"):
                from cyclefix.bench.evalplus import EvalPlusBackend

                backend = EvalPlusBackend(backend)  # round 0 stops where EvalPlus's does
            run: BenchRun
            if projects is None:
                run = BenchRun(tasks, backend, settings, out_dir, serialize_generation=serialize)
            else:
                run = ProjectsRun(
                    projects, tasks, backend, settings, out_dir, serialize_generation=serialize
                )
            with scores_recorded(args.suite, out_dir, run.model, settings.samples):
                interrupted = _run_with_progress(console, run, args.workers, cancel)
            meta["errors"] += run.errors
        finally:
            backend.close()
        if interrupted:
            break
    write_outputs(out_dir, settings, meta)
    if args.suite.startswith("evalplus-"):
        from cyclefix.bench.evalplus_scores import write_evalplus_outputs

        write_evalplus_outputs(out_dir, settings.suite, settings.rounds)
    if projects is not None:
        write_projects_outputs(out_dir, projects, settings.rounds)
    console.print(
        f"Results in {out_dir}/ (report.md, summary.json, results.jsonl, pass_by_round.png"
        + (", projects.json)" if projects is not None else ")")
    )
    if interrupted:
        console.print("[yellow]Interrupted.[/] Run the same command again to resume.")
        return EXIT_INTERRUPTED
    return EXIT_FAILED if meta["errors"] else EXIT_OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _open(spec: str, threads: int | None) -> Any:
    from cyclefix.errors import CyclefixError
    from cyclefix.refine import open_backend

    if threads is not None and threads < 1:
        raise CyclefixError("--threads must be at least 1")
    # The machine's settings (threads, gpuLayers) from the user's config file; the model and
    # rounds stay as the bench's flags say, so runs are comparable.
    from cyclefix.config import read_user_config

    user, _ = read_user_config()
    return open_backend(
        spec, n_threads=threads or user.get("threads"), n_gpu_layers=user.get("gpu_layers")
    )


def _run_with_progress(console: Any, run: Any, workers: int, cancel: Any) -> bool:
    """Run with a progress bar; True when Ctrl-C stopped it (finished lines are kept)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    pending = run.pending()
    if not pending:
        console.print(f"{run.model}: every task already done in {run.out_dir}")
        return False
    passed = {"now": 0, "first": 0, "runs": 0}
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[score]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(run.model, total=len(pending), score="")

        def done(task: Any, sample: int, lines: list[Any]) -> None:
            by_round = {line.round: line for line in lines}
            last = by_round.get(run.settings.rounds)
            if last is None:
                return  # only round 0 finished (interrupted during refinement)
            passed["runs"] += 1
            passed["now"] += last.passed
            first = by_round.get(0)
            passed["first"] += bool(first.passed) if first is not None else 0
            score = f"pass@1 {100 * passed['now'] / passed['runs']:.0f}%"
            progress.update(bar, advance=1, score=score)

        def error(task: Any, sample: int, message: str) -> None:
            progress.console.print(f"[red]{task.task_id}#{sample}:[/] {message}")
            progress.update(bar, advance=1)

        try:
            run.run(workers=workers, cancel=cancel, on_done=done, on_error=error)
        except KeyboardInterrupt:
            return True
    return bool(cancel.is_set())
