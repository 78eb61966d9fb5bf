"""`cyclefix bench`: measure self-refinement on HumanEval, MBPP, MBPP+, a folder of tasks, or
bugs injected into real PyPI libraries (`projects`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cyclefix.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

if TYPE_CHECKING:
    from cyclefix.bench.projects_run import ProjectSuite
    from cyclefix.bench.tasks import BenchTask

def _add_run_options(p: argparse.ArgumentParser, budget: float = 1800.0) -> None:
    p.add_argument(
        "--model",
        action="append",
        metavar="M",
        help="registry name, .gguf path, "
        "openai:URL#MODEL or scripted:PATH.json; repeat to run several models "
        "(default: qwen2.5-coder-1.5b)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="refinement rounds after round 0 (default 4; 0: the one-shot round alone)",
    )
    p.add_argument("--limit", type=int, default=None, metavar="K", help="only the first K tasks")
    p.add_argument(
        "--task-seed",
        type=int,
        default=None,
        metavar="S",
        help="take a random subset: shuffle the tasks with seed S before --limit",
    )
    p.add_argument("--tasks", nargs="+", default=(), metavar="ID", help="only these task ids")
    p.add_argument(
        "--samples",
        type=int,
        default=1,
        metavar="N",
        help="independent runs per task, for pass@k (default 1)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="W",
        help="tasks in flight at once: their tests run in parallel, generation on a "
        "local model stays one at a time (default 1)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="results folder (default bench-out/SUITE); a rerun resumes it",
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="round-0 temperature (default 0 for one sample, 0.2 for several)",
    )
    p.add_argument("--max-tokens", type=int, default=768, help="round-0 answer length cap")
    p.add_argument(
        "--budget",
        type=float,
        default=budget,
        metavar="SECONDS",
        help=f"time budget of one task's refinement (default {budget:.0f})",
    )
    p.add_argument(
        "--per-test-timeout",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="seconds before a visible test counts as hung (default 3)",
    )
    p.add_argument("--keep-work", action="store_true", help="keep each task's work folder")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads for a local model (default: the physical cores; on a "
        "machine shared with other work, fewer threads can be much faster)",
    )
    p.add_argument(
        "--pytest-plugins",
        action="store_true",
        help="let the tasks' pytest runs load every installed pytest plugin (off by "
        "default: bench tasks need none, and plugin start-up dominates short runs)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = subparsers.add_parser(
        "bench",
        help="measure fix and pass rates per refinement round on a benchmark suite",
        description="Round 0 writes each task's code in one shot (or takes the buggy project); "
        "rounds 1..N run cyclefix's own refine loop with feedback from the visible tests only; "
        "every round is scored on hidden tests. Writes results.jsonl (resumable), summary.json, "
        "report.md and pass_by_round.png.",
    )
    suites = bench.add_subparsers(dest="suite", metavar="SUITE", required=True)
    for name, text in (
        ("humaneval", "the 164 HumanEval problems; docstring examples visible, `check` hidden"),
        ("mbpp", "MBPP test split (11-510); first assert visible, all asserts hidden"),
        ("mbpp+", "MBPP+ problems of the test split; EvalPlus inputs hidden"),
    ):
        p = suites.add_parser(name, help=text, description=text)
        _add_run_options(p)
        if name.startswith("mbpp"):
            p.add_argument(
                "--data",
                type=Path,
                default=None,
                metavar="DIR",
                help="folder holding mbpp.jsonl (default ../shared/data/mbpp)",
            )
        p.set_defaults(func=run_bench)
    from cyclefix.bench.evalplus import add_evalplus_parsers

    add_evalplus_parsers(suites, _add_run_options, run_bench)
    p = suites.add_parser(
        "folder", help="a folder of task projects (buggy module + tests, optional hidden_tests/)"
    )
    p.add_argument("path", type=Path, help="folder whose sub-folders are task projects")
    _add_run_options(p)
    p.set_defaults(func=run_bench)

    p = suites.add_parser(
        "projects",
        help="one-line bugs injected into real PyPI libraries, judged by their own tests",
        description="The seeded bugs of a projects manifest: each library's pinned sdist is "
        "downloaded with pip into the user cache ($CYCLEFIX_CACHE or ~/.cache/cyclefix), each bug "
        "is a fresh copy of the library with one line changed, and a fix counts only when a "
        "fresh run of the library's own tests passes every test that passed as shipped. The "
        "report adds per-library figures, the localizer's rank of the injected function and "
        "the fix rate against time.",
    )
    _add_run_options(p, budget=300.0)
    _add_manifest_options(p)
    p.set_defaults(func=run_bench)
    p = suites.add_parser(
        "projects-seed",
        help="download the libraries and seed the projects manifest (no model needed)",
    )
    _add_manifest_options(p)
    p.add_argument(
        "--per-library", type=int, default=5, metavar="N", help="bugs per library (default 5)"
    )
    p.add_argument(
        "--max-tries",
        type=int,
        default=30,
        metavar="N",
        help="mutants tried per library, each one run of its suite (default 30)",
    )
    p.add_argument("--seed", type=int, default=0, help="mutation seed (default 0)")
    p.set_defaults(func=run_projects_seed)

    p = suites.add_parser("compare", help="two bench results side by side, with differences")
    p.add_argument("a", type=Path, help="results folder (or summary.json) A")
    p.add_argument("b", type=Path, help="results folder (or summary.json) B")
    p.set_defaults(func=run_compare)

    p = suites.add_parser("bugs", help="build a folder suite of bugs by mutating MBPP solutions")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to create")
    p.add_argument(
        "--limit", type=int, default=100, metavar="K", help="number of bugs (default 100)"
    )
    p.add_argument("--seed", type=int, default=0, help="mutation seed (default 0)")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder holding mbpp.jsonl (default ../shared/data/mbpp)",
    )
    p.set_defaults(func=run_bugs)


def _add_manifest_options(p: argparse.ArgumentParser) -> None:
    from cyclefix.bench.projects_manifest import DEFAULT_MANIFEST

    p.add_argument(
        "--manifest",
        type=Path,
        default=DEFAULT_MANIFEST,
        metavar="PATH",
        help="the seeded bugs (default benchmarks/projects/manifest.json of this checkout)",
    )
    p.add_argument(
        "--libraries", nargs="+", default=(), metavar="NAME", help="only these libraries"
    )


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
    from cyclefix.bench.harness import BenchRun, BenchSettings, select_tasks
    from cyclefix.bench.projects_run import ProjectsRun
    from cyclefix.errors import CyclefixError
    from cyclefix.models.registry import DEFAULT_MODEL

    for name in ("samples", "workers", "max_tokens"):
        if getattr(args, name) < 1:
            raise CyclefixError(f"--{name.replace('_', '-')} must be at least 1")
    if args.rounds < 0:
        raise CyclefixError("--rounds must be 0 (round 0 alone) or more")
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
    _log_command(out_dir, meta, args.model or [DEFAULT_MODEL])
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


HISTORY_FILE = "commands.jsonl"


def _log_command(out_dir: Path, meta: dict[str, Any], models: list[str]) -> None:
    """Every bench command that wrote into out_dir, for the report's provenance."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    entry = {"date": meta["date"], "command": meta["command"], "models": models,
             "tasks": meta["tasks"]}  # fmt: skip
    with (out_dir / HISTORY_FILE).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def _read_history(out_dir: Path) -> list[dict[str, Any]]:
    import json

    path = out_dir / HISTORY_FILE
    if not path.exists():
        return []
    entries: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


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


def write_outputs(out_dir: Path, settings: Any, meta: dict[str, Any]) -> None:
    import json

    from cyclefix.bench.harness import load_all
    from cyclefix.bench.report import (
        PLOT_FILE,
        REPORT_FILE,
        machine_description,
        render_report,
        write_plot,
    )
    from cyclefix.bench.summary import SUMMARY_FILE, summarize, summary_to_json

    records = load_all(out_dir)
    if not records:
        return
    summaries = summarize(records, settings.rounds)
    meta = {**meta, "machine": machine_description(), "history": _read_history(out_dir)}
    identity = settings.identity()
    (out_dir / SUMMARY_FILE).write_text(
        json.dumps(summary_to_json(summaries, identity, meta), indent=2) + "\n", encoding="utf-8"
    )
    (out_dir / REPORT_FILE).write_text(render_report(summaries, identity, meta), encoding="utf-8")
    write_plot(summaries, out_dir / PLOT_FILE, f"{settings.suite}: pass@1 by refinement round")


def write_projects_outputs(out_dir: Path, suite: ProjectSuite, rounds: int) -> None:
    """The real-project section appended to report.md, and projects.json."""
    import json

    from cyclefix.bench.harness import load_all
    from cyclefix.bench.projects_report import (
        PROJECTS_FILE,
        bug_outcomes,
        projects_summary,
        render_projects_section,
    )
    from cyclefix.bench.report import REPORT_FILE

    outcomes = bug_outcomes(load_all(out_dir), suite.manifest, rounds)
    if not outcomes:
        return
    report = out_dir / REPORT_FILE
    text = report.read_text(encoding="utf-8") if report.exists() else ""
    section = render_projects_section(outcomes, suite.manifest)
    report.write_text(text.rstrip("\n") + "\n\n" + section, encoding="utf-8")
    (out_dir / PROJECTS_FILE).write_text(
        json.dumps(projects_summary(outcomes), indent=2) + "\n", encoding="utf-8"
    )


def run_projects_seed(args: argparse.Namespace) -> int:
    import dataclasses
    import os
    import shlex
    import sys
    from datetime import UTC, datetime

    from rich.console import Console

    from cyclefix.bench.projects_libraries import CANDIDATES
    from cyclefix.bench.projects_manifest import write_manifest
    from cyclefix.bench.projects_seed import seed_manifest
    from cyclefix.bench.report import machine_description
    from cyclefix.errors import CyclefixError

    known = {spec.name: spec for spec in CANDIDATES}
    unknown = [name for name in args.libraries if name not in known]
    if unknown:
        raise CyclefixError(
            f"no such candidate library: {', '.join(unknown)} (have {', '.join(known)})"
        )
    specs = [known[n] for n in args.libraries] if args.libraries else list(CANDIDATES)
    # Bench tasks need no pytest plugin; loading every installed one dominates short runs.
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    console = Console(stderr=True, highlight=False)

    def done(spec: Any, bugs: list[Any]) -> None:
        private = sum(b.private for b in bugs)
        cross = sum(b.cross_module for b in bugs)
        console.print(
            f"{spec.slug}: {len(bugs)} bugs ({private} in private helpers, {cross} caught only "
            "in another module's tests)"
        )

    manifest = seed_manifest(
        specs,
        per_library=args.per_library,
        seed=args.seed,
        max_tries=args.max_tries,
        on_library=done,
    )
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = shlex.join(["cyclefix", *sys.argv[1:]])
    note = f"seeded {when} by `{command}` ({machine_description()})"
    write_manifest(args.manifest, dataclasses.replace(manifest, notes=(note,)))
    console.print(f"{len(manifest.bugs)} bugs in {args.manifest}")
    return EXIT_OK


def run_compare(args: argparse.Namespace) -> int:
    from cyclefix.bench.report import compare_table
    from cyclefix.bench.summary import load_summary

    _data_a, a = load_summary(args.a)
    _data_b, b = load_summary(args.b)
    print(f"A = {args.a}\nB = {args.b}\n")
    print(compare_table(a, b))
    return EXIT_OK


def run_bugs(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cyclefix.bench.bugs import build_mbpp_bugs

    console = Console(stderr=True, highlight=False)
    with console.status("Mutating MBPP reference solutions and keeping the mutants tests catch…"):
        bugs = build_mbpp_bugs(args.out, limit=args.limit, seed=args.seed, data_dir=args.data)
    kinds: dict[str, int] = {}
    for bug in bugs:
        kinds[bug.kind] = kinds.get(bug.kind, 0) + 1
    shown = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    console.print(f"{len(bugs)} bug projects in {args.out} ({shown})")
    return EXIT_OK
