"""What the server knows about one project: failing tests, errors, and a verified fix.

A test run covers only part of the suite (the tests of the saved module), so results are
merged: a run replaces what it re-ran and leaves the rest as the last run saw it.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cyclefix.refine.types import FixResult, Target
from cyclefix.runner.results import CollectionError, TestRunResult
from cyclefix.server.diagnostics import Failure, SyntaxProblem

_fix_ids = itertools.count(1)
MAX_LOCALIZED_FAILURES = 25


@dataclass(frozen=True)
class VerifiedFix:
    """A fix that passed the tests, for the file contents it was computed from."""

    fix_id: str
    result: FixResult
    # Document version of each changed file that was open in the editor when the run began.
    versions: dict[Path, int]
    # (absolute path, 1-based def line) of each function the fix rewrites.
    locations: tuple[tuple[Path, int], ...]

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(change.path.resolve() for change in self.result.changes)

    @property
    def passed(self) -> int:
        run = self.result.final_run
        return len(run.passed) if run is not None else 0


def new_fix_id() -> str:
    return f"fix-{next(_fix_ids)}"


def _file_part(test: str) -> str:
    return test.split("::", 1)[0]


def _covers(selected: tuple[str, ...], nodeid: str) -> bool:
    """Whether a run of `selected` (files, folders or node ids) re-ran test `nodeid`."""
    if not selected:
        return True  # no explicit selection: the whole suite ran
    for item in selected:
        item = item.rstrip("/")
        if nodeid == item or nodeid.startswith(item + "::") or nodeid.startswith(item + "["):
            return True
        if "::" not in item and _file_part(nodeid).startswith(item + "/"):
            return True
    return False


@dataclass
class ProjectState:
    root: Path
    failures: dict[str, Failure] = field(default_factory=dict)
    collection_errors: dict[str, CollectionError] = field(default_factory=dict)
    syntax_problems: dict[Path, SyntaxProblem] = field(default_factory=dict)
    fix: VerifiedFix | None = None
    last_run: TestRunResult | None = None
    # Files that carried diagnostics at the last publish, to clear the ones now clean.
    published: set[Path] = field(default_factory=set)
    # How many refinements were asked for: the seed of the next one, so "again" differs.
    refinements: int = 0

    def record_run(
        self, run: TestRunResult, find_suspects: Callable[[TestRunResult], tuple[Target, ...]]
    ) -> None:
        """Merge a finished run: what it re-ran is replaced, the rest is kept."""
        if run.cancelled:
            return
        self.last_run = run
        selected = tuple(self._relative(s) for s in run.selected)
        for nodeid in [n for n in self.failures if _covers(selected, n)]:
            del self.failures[nodeid]
        for path in [p for p in self.collection_errors if _covers(selected, p)]:
            del self.collection_errors[path]
        localized = 0
        for case in run.tests:
            self.failures.pop(case.nodeid, None)
            if case.ok:
                continue
            # Localizing parses the project; past a few dozen failures the tests say enough.
            suspects: tuple[Target, ...] = ()
            if localized < MAX_LOCALIZED_FAILURES:
                localized += 1
                single = TestRunResult(
                    root=run.root, tests=(case,), exit_code=run.exit_code, duration=0.0
                )
                suspects = find_suspects(single)
            self.failures[case.nodeid] = Failure(case=case, suspects=suspects)
        for error in run.collection_errors:
            self.collection_errors[error.path] = error

    def _relative(self, selected: str) -> str:
        path, sep, rest = selected.partition("::")
        candidate = Path(path)
        if candidate.is_absolute():
            with contextlib.suppress(ValueError):
                path = candidate.relative_to(self.root).as_posix()
        return path + sep + rest

    def failing_nodeids(self) -> tuple[str, ...]:
        return tuple(self.failures)
