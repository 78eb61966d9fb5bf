"""What a session knows of a project's tests: the latest result of each, merged across runs.

A test run covers only part of the suite (the tests of the saved module), so results are
merged: a run replaces what it re-ran and leaves the rest as the last run saw it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cyclefix.errors import CyclefixError
from cyclefix.refine import CollectionError, Target, TestCaseResult, TestRunResult, suspects

logger = logging.getLogger(__name__)

# Localizing parses the project; past a few dozen failures the tests say enough.
MAX_LOCALIZED_FAILURES = 25

Suspects = Mapping[str, tuple[Target, ...]]


def localize(
    run: TestRunResult, limit: int = MAX_LOCALIZED_FAILURES
) -> dict[str, tuple[Target, ...]]:
    """In a worker thread: the suspects of each failing test of `run` (the first `limit`)."""
    out: dict[str, tuple[Target, ...]] = {}
    for case in run.failures[:limit]:
        try:
            # The run's passing tests still count: what they executed clears the code they share.
            out[case.nodeid] = suspects(run, (case,))
        except (CyclefixError, OSError, SyntaxError, ValueError) as exc:
            logger.info("cannot localize %s: %s", case.nodeid, exc)
            out[case.nodeid] = ()
    return out


def covers(selected: tuple[str, ...], nodeid: str) -> bool:
    """Whether a run of `selected` (files, folders or node ids) re-ran test `nodeid`."""
    if not selected:
        return True  # no explicit selection: the whole suite ran
    for item in selected:
        item = item.rstrip("/")
        if nodeid == item or nodeid.startswith(item + "::") or nodeid.startswith(item + "["):
            return True
        if "::" not in item and nodeid.split("::", 1)[0].startswith(item + "/"):
            return True
    return False


@dataclass
class RunLedger:
    root: Path
    # The latest result of every test seen, in the order first seen.
    cases: dict[str, TestCaseResult] = field(default_factory=dict)
    collection_errors: dict[str, CollectionError] = field(default_factory=dict)
    # The suspects of each failing test that was localized (see `localize`).
    suspects: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    last_run: TestRunResult | None = None

    def record(self, run: TestRunResult, localized: Suspects | None = None) -> None:
        """Merge a finished run: what it re-ran is replaced, the rest is kept; `localized`
        holds the suspects of its failures (see `localize`)."""
        if run.cancelled:
            return
        self.last_run = run
        selected = tuple(self._relative(s) for s in run.selected)
        for nodeid in [n for n in self.cases if covers(selected, n)]:
            del self.cases[nodeid]
            self.suspects.pop(nodeid, None)
        for path in [p for p in self.collection_errors if covers(selected, p)]:
            del self.collection_errors[path]
        for case in run.tests:
            self.cases[case.nodeid] = case
            self.suspects.pop(case.nodeid, None)
            if not case.ok and localized is not None and case.nodeid in localized:
                self.suspects[case.nodeid] = localized[case.nodeid]
        for error in run.collection_errors:
            self.collection_errors[error.path] = error

    def replace_all(self, run: TestRunResult) -> None:
        """A run of the whole selection: it alone is what is known now."""
        if run.cancelled:
            return
        self.cases.clear()
        self.collection_errors.clear()
        self.suspects.clear()
        self.record(run)

    @property
    def failures(self) -> tuple[TestCaseResult, ...]:
        return tuple(case for case in self.cases.values() if not case.ok)

    def failing_nodeids(self) -> tuple[str, ...]:
        return tuple(nodeid for nodeid, case in self.cases.items() if not case.ok)

    def spectrum(self) -> TestRunResult | None:
        """The last run with every known test in it: all of them count for localization."""
        if self.last_run is None:
            return None
        return dataclasses.replace(
            self.last_run, tests=tuple(self.cases.values()), collection_errors=()
        )

    def run_of(self, nodeids: tuple[str, ...]) -> TestRunResult | None:
        """The known results of exactly `nodeids` as one run (a refinement's initial run);
        None when any of them is unknown."""
        if self.last_run is None or any(n not in self.cases for n in nodeids):
            return None
        return dataclasses.replace(
            self.last_run,
            tests=tuple(self.cases[n] for n in nodeids),
            selected=nodeids,
            collection_errors=(),
            timed_out=False,
            notes=(),
        )

    def _relative(self, selected: str) -> str:
        path, sep, rest = selected.partition("::")
        candidate = Path(path)
        if candidate.is_absolute():
            with contextlib.suppress(ValueError):
                path = candidate.relative_to(self.root).as_posix()
        return path + sep + rest
