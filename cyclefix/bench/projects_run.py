"""`cyclefix bench projects`: the seeded bugs of real libraries, run like every other suite.

Each bug is a folder task: a fresh copy of the mutated library (its own tests are the visible
tests; there are no hidden ones). Round 0 records where the localizer ranked the injected
function (cyclefix's public `suspects` on the failing run). When cyclefix verifies a fix, the
judge (bench.projects_judge) re-runs the library's whole suite on a fresh copy and decides
`passed`; the lines also carry whether the shipped code came back and the fix's seconds.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cyclefix.bench.generation_log import GenerationLog
from cyclefix.bench.harness import BenchRun
from cyclefix.bench.projects_judge import baseline_passing, judge_config, judge_fix
from cyclefix.bench.projects_libraries import LibrarySpec, cache_root, pristine_tree
from cyclefix.bench.projects_manifest import InjectedBug, Manifest, materialize
from cyclefix.bench.records import RoundResult
from cyclefix.bench.run_settings import BenchSettings
from cyclefix.bench.tasks import BenchTask
from cyclefix.bench.workspace import TaskWorkspace
from cyclefix.errors import CyclefixError
from cyclefix.refine import Backend, FixResult, TestRunResult, suspects


@dataclass(frozen=True)
class PreparedLibrary:
    spec: LibrarySpec
    pristine: Path
    # Node ids passing as shipped: what every judged fix must pass again.
    baseline: frozenset[str]


@dataclass(frozen=True)
class ProjectSuite:
    manifest: Manifest
    libraries: Mapping[str, PreparedLibrary]
    bugs: Mapping[str, InjectedBug]
    tasks: tuple[BenchTask, ...]


def select_bug_ids(manifest: Manifest, libraries: Sequence[str] = ()) -> list[str]:
    """The manifest's bug ids, in its order, of the named libraries (all when none named)."""
    known = {spec.name for spec in manifest.libraries}
    unknown = [name for name in libraries if name not in known]
    if unknown:
        have = ", ".join(sorted(known))
        raise CyclefixError(f"no such library in the manifest: {', '.join(unknown)} (have {have})")
    return [b.bug_id for b in manifest.bugs if not libraries or b.library in libraries]


def load_project_suite(
    manifest: Manifest,
    bug_ids: Sequence[str],
    *,
    cache: Path | None = None,
    on_library: Callable[[LibrarySpec], None] | None = None,
) -> ProjectSuite:
    """Fetch, unpack and check the libraries of `bug_ids`, and write each bug's folder."""
    cache = cache or cache_root()
    by_id = {b.bug_id: b for b in manifest.bugs}
    missing = [i for i in bug_ids if i not in by_id]
    if missing:
        raise CyclefixError(f"no such bug in the manifest: {', '.join(missing[:5])}")
    chosen = [by_id[i] for i in bug_ids]
    libraries: dict[str, PreparedLibrary] = {}
    tasks: list[BenchTask] = []
    for bug in chosen:
        prepared = libraries.get(bug.library)
        if prepared is None:
            spec = manifest.library(bug.library)
            if on_library:
                on_library(spec)
            pristine = pristine_tree(spec, cache)
            prepared = PreparedLibrary(spec, pristine, baseline_passing(spec, pristine))
            libraries[bug.library] = prepared
        folder = materialize(prepared.pristine, bug, cache / "bugs" / bug.bug_id)
        tasks.append(
            BenchTask(
                task_id=bug.bug_id,
                kind="folder",
                source_dir=folder.resolve(),
                hidden_timeout=judge_config(prepared.spec).per_test_timeout,
            )
        )
    return ProjectSuite(manifest, libraries, {b.bug_id: b for b in chosen}, tuple(tasks))


def localizer_rank(run: TestRunResult, bug: InjectedBug) -> dict[str, object]:
    """Where cyclefix's localizer put the injected function among its suspects (1 = first)."""
    try:
        ranked = suspects(run)
    except CyclefixError as exc:
        return {"rank": None, "suspects": 0, "localize_error": str(exc)}
    keys = [(t.path, t.qualname) for t in ranked]
    rank = keys.index((bug.path, bug.function)) + 1 if (bug.path, bug.function) in keys else None
    return {
        "rank": rank,
        "suspects": len(keys),
        "top_suspect": f"{keys[0][0]}::{keys[0][1]}" if keys else "",
        "traced": run.traced,
    }


class ProjectsRun(BenchRun):
    """BenchRun over a ProjectSuite: the localizer's rank and the libraries' own judge added."""

    def __init__(
        self,
        suite: ProjectSuite,
        tasks: Sequence[BenchTask],
        backend: Backend,
        settings: BenchSettings,
        out_dir: Path,
        *,
        serialize_generation: bool = True,
    ) -> None:
        super().__init__(
            tasks, backend, settings, out_dir, serialize_generation=serialize_generation
        )
        self.suite = suite

    def _round_zero(
        self,
        task: BenchTask,
        sample: int,
        ws: TaskWorkspace,
        log: GenerationLog,
        cancel: threading.Event,
    ) -> tuple[RoundResult | None, TestRunResult | None]:
        line, visible = super()._round_zero(task, sample, ws, log, cancel)
        if line is None or visible is None:
            return line, visible
        ranking = localizer_rank(visible, self.suite.bugs[task.task_id])
        return dataclasses.replace(line, extra={**line.extra, **ranking}), visible

    def _round_lines(
        self,
        task: BenchTask,
        sample: int,
        ws: TaskWorkspace,
        log: GenerationLog,
        first: RoundResult,
        result: FixResult,
    ) -> list[RoundResult]:
        lines = super()._round_lines(task, sample, ws, log, first, result)
        if result.status != "fixed" or not result.rounds:
            return lines
        bug = self.suite.bugs[task.task_id]
        library = self.suite.libraries[bug.library]
        changed = ws.changed_files({c.path: c.fixed for c in result.changes})
        verdict = judge_fix(library.spec, library.pristine, bug, changed, library.baseline)
        fixed_round = result.rounds[-1].index
        extra = {**verdict.as_extra(), "fix_seconds": round(result.seconds, 3)}
        return [
            dataclasses.replace(line, passed=verdict.fixed, extra={**line.extra, **extra})
            if line.round >= fixed_round
            else line
            for line in lines
        ]
