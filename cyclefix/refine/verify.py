"""Verification: the test runs of one fix, the user's and each candidate's in the scratch copy.

A candidate is written into the scratch copy only for its run and the base text is put back
after it; the previously failing tests run first. Where the selection's tests take a while (a
real suite), they run first on their own, after the tests of their class that ran before them,
up to the first of those that fails (a regression): a candidate that fixes none of them costs
only their time, and one that fixes some or all is checked on the rest up to its first failure
(each passed before). With explicit
`--tests`, a candidate that passes them must not break the other tests of the modules it
changed either. A test that fails in a candidate's run but also fails confined on the user's
unchanged code was not broken by it (refine.sandbox_only).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cyclefix.errors import CyclefixError
from cyclefix.refine.apply import write_atomic
from cyclefix.refine.sandbox_only import BaseFailures, without_tests
from cyclefix.refine.source import project_file
from cyclefix.refine.types import RefineEvent, TestsFinished, TestsStarted
from cyclefix.runner import (
    Confinement,
    ProjectPython,
    SandboxLimits,
    WarmWorkers,
    order_failing_first,
    run_tests,
    scratch_copy,
    select_tests,
    with_class_predecessors,
)
from cyclefix.runner.feedback import feedback_text
from cyclefix.runner.results import RunPhases, TestCaseResult, TestRunResult

# Candidates' tests may take this many times the slowest test of the user's own run (which ran
# within the configured timeout), up to SLOW_TEST_CAP seconds: a slow suite on a busy machine
# must not turn a correct fix into a timeout.
SLOW_TEST_FACTOR = 3.0
SLOW_TEST_CAP = 60.0
# A candidate's run stops after this many timed-out tests: each costs a full timeout, and a
# candidate that hangs twice is rejected anyway.
CANDIDATE_MAX_HANGS = 2
# Below this many seconds of tests in the user's run, a candidate runs the whole selection in
# one process: a second pytest start would cost more than the tests it saves.
STAGED_MIN_TEST_SECONDS = 1.0
# The failing tests run on their own are traced for the probe (refine.probe) up to this many,
# their class's earlier tests included: tracing makes a run several times slower (pycparser's
# unittest classes: 400 tests, 40 s traced, 9 s not).
PROBE_MAX_TESTS = 40


@dataclass(frozen=True)
class Verified:
    """A candidate's verification: its run, what it broke elsewhere, and what that cost."""

    run: TestRunResult
    # With explicit --tests: a test of the changed modules it broke, in words; else "".
    regression: str
    seconds: float  # wall time of its test runs
    phases: RunPhases | None  # those runs' phases added up; None when none started


def added_phases(phases: Sequence[RunPhases]) -> RunPhases | None:
    """Several runs' phases as one; None when there were none."""
    if not phases:
        return None
    return RunPhases(
        startup_s=sum(p.startup_s for p in phases),
        collect_s=sum(p.collect_s for p in phases),
        tests_s=sum(p.tests_s for p in phases),
        total_s=sum(p.total_s for p in phases),
    )


class Verifier:
    """Runs the tests of one fix: `selection` in the user's project, then in its scratch copy."""

    def __init__(
        self,
        root: Path,
        selection: Sequence[str],
        explicit_tests: bool,
        limits: SandboxLimits,
        python: ProjectPython,
        emit: Callable[[RefineEvent], None],
        cancel: threading.Event,
        pass_env: Sequence[str] = (),
        warm: WarmWorkers | None = None,
    ) -> None:
        self.root = root
        self.warm = warm
        self.selection = tuple(selection)
        self.explicit_tests = explicit_tests
        self.limits = limits
        self.python = python
        self.emit = emit
        self.cancel = cancel
        self.pass_env = tuple(pass_env)
        # The phases of every run so far, in order: a candidate's are those of its runs.
        self.phases: list[RunPhases] = []
        self.base_failures = BaseFailures(self._run_on_base)
        # Tests that passed in the user's run but fail confined on their code: excused for
        # the whole fix, and left out of every later candidate run (in the order found).
        self.sandbox_only: tuple[str, ...] = ()
        # The user's run's test ids in the order they ran (runner.select.with_class_predecessors).
        self.test_order: tuple[str, ...] = ()
        # Tests the user's run ran to an end other than a skip: none may be skipped for a fix.
        self.ran_before: frozenset[str] = frozenset()
        # The lines the candidate in the scratch copy wrote, while it is there (with_files).
        self.answer_lines: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()

    def fit_timeout_to(self, initial: TestRunResult) -> str:
        """Raise the candidates' per-test timeout for a project with slow tests; the note
        saying so, or ""."""
        slowest = max(
            (t.duration for t in initial.tests if t.outcome in ("passed", "failed")), default=0.0
        )
        wanted = min(SLOW_TEST_CAP, SLOW_TEST_FACTOR * slowest)
        if wanted <= self.limits.per_test_timeout:
            return ""
        self.limits = dataclasses.replace(self.limits, per_test_timeout=round(wanted, 1))
        return (
            f"per-test timeout for candidates raised to {self.limits.per_test_timeout:g} s "
            f"(a test of this project took {slowest:.1f} s)"
        )

    def prepare_candidates(self) -> None:
        """Start the candidates' warm worker in the background (runner.warm): the first
        candidate's run then forks from it instead of starting pytest."""
        if self.warm is not None:
            self.warm.prepare(
                self.root,
                python=self.python.python,
                limits=self.limits,
                confinement=Confinement(self.root),
                pass_env=self.pass_env,
            )

    def run_tests(
        self,
        root: Path,
        selection: Sequence[str],
        *,
        scratch: bool,
        stop_on_first_failure: bool = False,
        may_fail: Sequence[str] = (),
        trace: bool = False,
        skip: Sequence[str] = (),
    ) -> TestRunResult:
        """One run of `selection` (but the node ids of `skip`) in `root`: the user's project,
        or the scratch copy; `trace`: a candidate's run records what its failing tests' calls
        did (refine.probe)."""
        self.emit(TestsStarted(root, tuple(selection), scratch))
        # Tests that hang only in the sandbox do not count towards the candidate's hangs.
        hangs = CANDIDATE_MAX_HANGS + len(self.sandbox_only)
        limits = dataclasses.replace(self.limits, max_hangs=hangs) if scratch else self.limits
        run = run_tests(
            root,
            selection,
            limits=limits,
            python=self.python.python,
            cancel=self.cancel,
            trace=trace or not scratch,  # the initial run: its spectrum localizes
            # Candidates run on the scratch copy: they may write nothing of the user's, and
            # what they write there is put back after the run (runner.scratch).
            confinement=Confinement(self.root, answer_lines=self.answer_lines) if scratch else None,
            pass_env=self.pass_env,
            stop_on_first_failure=stop_on_first_failure,
            may_fail=may_fail,
            warm=self.warm,
            skip=skip,
        )
        if run.phases is not None:
            self.phases.append(run.phases)
        self.emit(TestsFinished(run, scratch))
        return run

    def with_files(
        self,
        scratch: Path,
        files: dict[str, str],
        base: dict[str, str],
        action: Callable[[], TestRunResult],
    ) -> TestRunResult:
        """Write the candidate into the scratch copy, run, and put the base text back."""
        try:
            for rel, text in files.items():
                write_atomic(project_file(scratch, rel), text)
            self.answer_lines = tuple((rel, written_lines(base[rel], files[rel])) for rel in files)
            return action()
        finally:
            self.answer_lines = ()
            for rel in files:
                write_atomic(project_file(scratch, rel), base[rel])

    def verify(
        self,
        scratch: Path,
        files: dict[str, str],
        base: dict[str, str],
        base_run: TestRunResult | None,
        passed_before: frozenset[str] = frozenset(),
    ) -> Verified:
        """The candidate's run (`run_candidate`), judged without the tests of `passed_before`
        (the user's run) that fail in the sandbox anyway, and, when it passes, what it broke
        among the other tests of the modules it changed (`regressions`), with their time and
        phases."""
        started, first = time.monotonic(), len(self.phases)
        run = self.judged(
            passed_before,
            lambda: self.run_candidate(scratch, files, base, self.without_sandbox_only(base_run)),
        )
        regression = ""
        if run.all_passed and not run.cancelled:
            regression = self.regressions(scratch, files, base)
        spent = time.monotonic() - started
        return Verified(run, regression, spent, added_phases(self.phases[first:]))

    def without_sandbox_only(self, run: TestRunResult | None) -> TestRunResult | None:
        """`run` without the tests found to fail only in the sandbox."""
        return without_tests(run, self.sandbox_only) if run is not None else None

    def judged(
        self, passed_before: frozenset[str], run_once: Callable[[], TestRunResult]
    ) -> TestRunResult:
        """A candidate's run (`run_once`) without the tests found to fail only in the
        sandbox: those known when it ran, and those of `passed_before` it fails that fail
        confined on the user's code too. Run again when these are new and nothing else
        failed: it may have stopped at them (first failure, hang limit) before the rest."""
        while True:
            known = frozenset(self.sandbox_only)  # runs made knowing them never stop at them
            run = skips_refused(run_once(), self.ran_before)
            if run.cancelled:
                return run
            broke = [
                t.nodeid
                for t in run.failures
                if t.nodeid in passed_before and t.nodeid not in known
            ]
            excused = self.base_failures.failing(broke) if broke else frozenset()
            self.sandbox_only = (*self.sandbox_only, *sorted(excused))
            judged = without_tests(run, known | excused)
            if not excused or judged.failures or judged.collection_errors or judged.timed_out:
                # with other failures, those are the verdict either way
                return unrun_refused(judged, self.ran_before - known - excused)

    def _run_on_base(self, nodeids: tuple[str, ...]) -> TestRunResult | None:
        """`nodeids` run confined, as a candidate's are, on a fresh copy of the user's project
        that no candidate ran in; None when the copy or the run could not be made."""
        try:
            with scratch_copy(self.root) as fresh:
                leading = with_class_predecessors(nodeids, self.test_order)
                # A test the fresh copy skips too is skipped by the sandbox, not a candidate.
                return skips_refused(self.run_tests(fresh, leading, scratch=True), self.ran_before)
        except (CyclefixError, OSError):
            return None

    def run_candidate(
        self,
        scratch: Path,
        files: dict[str, str],
        base: dict[str, str],
        base_run: TestRunResult | None,
    ) -> TestRunResult:
        """The selection with the candidate's `files` in place, the tests failing in
        `base_run` (the code it rewrites) first; staged where the tests take a while."""
        failing = [t.nodeid for t in base_run.failures] if base_run is not None else []
        leading = with_class_predecessors(failing, self.test_order)
        failing_now = frozenset(failing)
        selection = order_failing_first(self.selection, leading)
        # Left out, they judge nothing: a run may then stop at its first failure.
        sandbox_only = tuple(self.sandbox_only)

        def whole(stop_on_first_failure: bool = False, trace: bool = False) -> TestRunResult:
            return self.run_tests(
                scratch,
                selection,
                scratch=True,
                stop_on_first_failure=stop_on_first_failure,
                trace=trace,
                skip=sandbox_only,
            )

        # Traced only where cheap (a quick suite, or a few failing tests alone): the probe.
        if base_run is None or not self._stageable(scratch, base_run, failing):
            return self.with_files(scratch, files, base, lambda: whole(trace=True))

        def staged() -> TestRunResult:
            probe = len(leading) <= PROBE_MAX_TESTS
            # The tests of their class before them passed before: the first of those that
            # fails is a regression, and the run stops there.
            first = self.run_tests(
                scratch,
                leading,
                scratch=True,
                trace=probe,
                stop_on_first_failure=True,
                may_fail=(*failing, *sandbox_only),
            )
            if first.collection_errors or first.cancelled or first.timed_out:
                return first
            if first.all_passed:
                return whole(stop_on_first_failure=True)  # the rest must still pass
            broke = any(not t.ok and t.nodeid not in failing_now for t in first.tests)
            if not broke and any(t.nodeid in failing_now for t in first.passed):
                # Progress, if it broke nothing else: the other tests, up to the first that
                # fails (each passed before: a regression, and the candidate is not kept).
                others = self.run_tests(
                    scratch,
                    selection,
                    scratch=True,
                    stop_on_first_failure=True,
                    # The ids asked for, not those the run reported: code under test runs there.
                    skip=(*sandbox_only, *leading),
                )
                return merged_runs(first, others)
            ran = {t.nodeid for t in first.tests}
            rest = tuple(t for t in base_run.tests if t.nodeid not in ran)
            why = "a test that passed before fails" if broke else "the failing tests still fail"
            note = f"the other {len(rest)} test(s) were not run: {why}"
            return dataclasses.replace(first, tests=first.tests + rest, notes=(*first.notes, note))

        return self.with_files(scratch, files, base, staged)

    @staticmethod
    def _stageable(scratch: Path, base_run: TestRunResult, failing: Sequence[str]) -> bool:
        """Whether running the failing tests on their own first can pay: real test ids of
        files in the copy, not all of the selection, and tests that take a while."""
        if not failing or len(failing) >= len(base_run.tests) or base_run.collection_errors:
            return False
        if sum(t.duration for t in base_run.tests) < STAGED_MIN_TEST_SECONDS:
            return False
        return all(
            "::" in nodeid and (scratch / nodeid.partition("::")[0]).is_file() for nodeid in failing
        )

    def regressions(self, scratch: Path, files: dict[str, str], base: dict[str, str]) -> str:
        """With explicit --tests, also run the other tests of the changed modules: none that
        passes confined on the user's code may fail. What broke, or ""."""
        if not self.explicit_tests:
            return ""
        changed = [scratch / rel for rel in files]
        related = select_tests(scratch, changed, ())
        if not related or set(related) <= set(self.selection):
            return ""
        after = self.with_files(
            scratch, files, base, lambda: self.run_tests(scratch, related, scratch=True)
        )
        if after.cancelled:
            return "stopped before the other tests of the changed modules had run"
        if not after.failures:
            return ""
        # Compared with the user's code on a fresh copy, not with the shared scratch copy,
        # where an earlier candidate's tests may have left files that make a test fail.
        on_base = self.base_failures.failing(t.nodeid for t in after.failures)
        broke = [t for t in after.failures if t.nodeid not in on_base]
        if not broke:
            return ""
        return f"breaks a test that passed before: {feedback_text(broke[0])}"


def merged_runs(first: TestRunResult, then: TestRunResult) -> TestRunResult:
    """Two runs of one candidate, the second left out the tests of the first, as one."""
    tests = first.tests + then.tests
    errors = first.collection_errors + then.collection_errors
    return dataclasses.replace(
        then,
        tests=tests,
        exit_code=2 if errors else 1 if any(not t.ok for t in tests) else 0,
        collection_errors=errors,
        duration=first.duration + then.duration,
        notes=(*first.notes, *(n for n in then.notes if n not in first.notes)),
        traced=first.traced,
    )


def skips_refused(run: TestRunResult, ran_before: frozenset[str]) -> TestRunResult:
    """`run` with each test of `ran_before` it skipped (or xfailed) as an error: a candidate
    that gets a test skipped, by whatever means, has not made it pass."""
    refused = [t for t in run.tests if t.outcome == "skipped" and t.nodeid in ran_before]
    if not refused:
        return run
    errors = {
        t.nodeid: dataclasses.replace(
            t,
            outcome="error",
            exc_type="SkippedUnderCandidate",
            exc_message="skipped with this candidate; it ran with your code",
        )
        for t in refused
    }
    return dataclasses.replace(run, tests=tuple(errors.get(t.nodeid, t) for t in run.tests))


def unrun_refused(run: TestRunResult, ran_before: frozenset[str]) -> TestRunResult:
    """`run`, when it would pass, with each test of `ran_before` it never ran as an error: a
    candidate that gets tests deselected or uncollected has not made them pass."""
    if run.failures or run.collection_errors or run.cancelled or run.timed_out:
        return run  # it fails anyway, and a run that stops at a failure leaves tests out
    missing = sorted(ran_before - {t.nodeid for t in run.tests})
    if not missing:
        return run
    unrun = tuple(
        TestCaseResult(
            nodeid=nodeid,
            outcome="error",
            path=nodeid.split("::", 1)[0],
            exc_type="NotRunUnderCandidate",
            exc_message="not run with this candidate; it ran with your code",
        )
        for nodeid in missing
    )
    return dataclasses.replace(run, tests=run.tests + unrun, exit_code=1)


def written_lines(before: str, after: str) -> tuple[tuple[int, int], ...]:
    """The span (first, last; from 1) of `after` between the lines it shares with `before` at
    its start and at its end: all an answer wrote (a diff of a 5,000-line module would cost a
    candidate a fifth of a second)."""
    old, new = before.splitlines(), after.splitlines()
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    last = len(new) - end
    return ((start + 1, last),) if last > start else ()
