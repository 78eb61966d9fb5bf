"""`cyclefix bench`: measure self-refinement on HumanEval, MBPP, MBPP+, a folder of tasks, or
bugs injected into real PyPI libraries (`projects`).

Here: the sub-commands' options, and the small ones (projects-seed, compare, bugs); running a
suite is bench.run_command, what it writes besides its results bench.outputs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cyclefix.bench.records import RoundResult
from cyclefix.bench.run_command import run_bench
from cyclefix.bench.summary import ModelSummary
from cyclefix.cli import EXIT_OK
from cyclefix.refine.types import RefineConfig


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
        "--extend",
        action="store_true",
        help="past --rounds, go on within --budget as `cyclefix fix` does (other suspects, "
        "hotter samples); the last round's line holds the extra rounds. Off by default: the "
        "CYCLE protocol, exactly --rounds",
    )
    p.add_argument(
        "--agreement-answers",
        type=int,
        default=RefineConfig.agreement_answers,
        metavar="N",
        help="answers drawn to vote on a fix that passes only a few visible tests, by what "
        f"they return on the tests' calls varied (refine.agreement; default "
        f"{RefineConfig.agreement_answers}: none)",
    )
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

    p = suites.add_parser(
        "compare",
        help="bench results side by side: per round, then the tasks whose outcome differs",
    )
    p.add_argument("a", type=Path, help="results folder (or its summary.json) A")
    p.add_argument("b", type=Path, help="results folder (or its summary.json) B")
    p.add_argument(
        "more", type=Path, nargs="*", help="more results folders, each compared with A (C, D, ...)"
    )
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


def run_projects_seed(args: argparse.Namespace) -> int:
    import dataclasses
    import os
    import shlex
    import sys
    from datetime import UTC, datetime

    from rich.console import Console

    from cyclefix.bench.projects_libraries import CANDIDATES, HELD_OUT
    from cyclefix.bench.projects_manifest import write_manifest
    from cyclefix.bench.projects_seed import seed_manifest
    from cyclefix.bench.report import machine_description
    from cyclefix.errors import CyclefixError

    known = {spec.name: spec for spec in (*CANDIDATES, *HELD_OUT)}
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


def _load_run(path: Path) -> tuple[list[ModelSummary], list[RoundResult]]:
    """A results folder's summary (summary.json, else figured from its results) and lines."""
    from cyclefix.bench.records import RESULTS_FILE, read_results
    from cyclefix.bench.summary import SUMMARY_FILE, load_summary, summarize
    from cyclefix.errors import CyclefixError

    if not path.exists():
        raise CyclefixError(f"no such results folder: {path}")
    folder = path if path.is_dir() else path.parent
    records = read_results(folder / RESULTS_FILE)
    if (folder / SUMMARY_FILE).exists() or not records:
        _data, models = load_summary(folder)
        return models, records
    return summarize(records, max(r.round for r in records)), records


def run_compare(args: argparse.Namespace) -> int:
    from cyclefix.bench.across_runs import render_task_outcomes, task_outcomes
    from cyclefix.bench.report import compare_table

    paths: list[Path] = [args.a, args.b, *args.more]
    labels = [chr(ord("A") + i) if i < 26 else f"R{i + 1}" for i in range(len(paths))]
    runs = [_load_run(path) for path in paths]
    print("\n".join(f"{label} = {path}" for label, path in zip(labels, paths, strict=True)))
    for label, (models, _records) in zip(labels[1:], runs[1:], strict=True):
        print(f"\n{compare_table(runs[0][0], models, name_b=label)}")
    print(render_task_outcomes(task_outcomes([records for _m, records in runs], labels)))
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
