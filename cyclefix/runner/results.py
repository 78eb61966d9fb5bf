"""Structured results of one pytest run: what each test did and why it failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Outcome = Literal["passed", "failed", "error", "skipped", "timeout"]


@dataclass(frozen=True)
class Frame:
    """One traceback frame in a project (non-test) file; path is relative to the project root."""

    path: str
    line: int
    function: str
    # The source of that line, stripped.
    source: str = ""


@dataclass(frozen=True)
class TestCaseResult:
    """The outcome of one test, with what a person needs to see why it failed."""

    __test__ = False  # not a pytest test class, though its name starts with "Test"

    nodeid: str
    outcome: Outcome
    duration: float = 0.0
    # Test file relative to the project root, and the 1-based line where it failed.
    path: str | None = None
    line: int | None = None
    exc_type: str | None = None
    exc_message: str | None = None
    # Source of the failing assert statement, e.g. "assert median([1, 2, 3]) == 2".
    assert_source: str | None = None
    # Pytest's own rendering of the compared values, e.g. "assert 3 == 2".
    assert_explanation: str | None = None
    # For `assert CALL == EXPECTED`: the call's arguments, the expected and the actual value.
    input: str | None = None
    expected: str | None = None
    actual: str | None = None
    # Source of the test function, for the model's view of intent.
    test_source: str | None = None
    # Line in a project file where the exception was raised (deepest project frame).
    project_frames: tuple[Frame, ...] = ()
    # Where project code raised exceptions the test caught and its failing statement inspects.
    caught_frames: tuple[Frame, ...] = ()
    stdout: str = ""
    stderr: str = ""
    # Source of the failing statement in the test file (the assert, or the line that raised).
    line_source: str | None = None
    # What the failing test function's calls were bound to when it failed.
    callees: tuple[Callee, ...] = ()
    # Project functions this test executed (only in a traced run; empty otherwise).
    executed: tuple[ExecutedFunction, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome in ("passed", "skipped")


@dataclass(frozen=True)
class Callee:
    """A name a failing test calls, and the project function or class it was bound to."""

    name: str  # as the test calls it, e.g. "candidate"
    path: str  # project file defining it, relative to the root
    function: str  # its own name there, e.g. "has_close_elements"


@dataclass(frozen=True)
class ProbedCall:
    """One call a failing test made to a project function: its arguments and what came out,
    each rendered (bounded, never by the project's own __repr__) in the test process."""

    call: str  # e.g. "percent_of(125, 10)"
    returned: str | None = None  # e.g. "12"; None when it raised or never returned
    raised: str | None = None  # e.g. "ValueError('negative')"


@dataclass(frozen=True)
class ExecutedFunction:
    """A project (non-test) function a test executed, and which of its lines ran."""

    path: str  # file relative to the project root
    qualname: str  # e.g. "Invoice.tax", "percent_of"
    line: int  # its def line
    lines: tuple[int, ...] = ()  # the lines that ran (empty when only calls were traced)
    # Its first calls in a failing test (runner.trace's probe); empty in a passing test.
    calls: tuple[ProbedCall, ...] = ()


@dataclass(frozen=True)
class CollectionError:
    """A test module pytest could not import (syntax error, import error)."""

    path: str
    message: str
    line: int | None = None
    # The collector that failed, e.g. "tests/test_calc.py"; `path` is where the error is.
    nodeid: str = ""
    # The exception raised at import time, and its traceback frames in project non-test files
    # (deepest last): a bug in project code found while importing a test module.
    exc_type: str | None = None
    project_frames: tuple[Frame, ...] = ()


@dataclass(frozen=True)
class RunPhases:
    """Where a run's wall time went, summed over its pytest processes (informational only).

    The phases come from the test process's monotonic clock through its signed records; the
    parent's own clock gives the start and end of each process, so they add up to at most
    `total_s` (the rest is interpreter shutdown and record handling).
    """

    # Process start until the plugin's session starts: interpreter, pytest and plugin imports.
    startup_s: float
    # Collection: importing the test modules and building the selection.
    collect_s: float
    # Setup, call and teardown of the tests.
    tests_s: float
    # Wall time of the test processes, from spawn until they were reaped.
    total_s: float


@dataclass(frozen=True)
class TestRunResult:
    """One pytest run in a project folder."""

    __test__ = False  # not a pytest test class, though its name starts with "Test"

    root: Path
    tests: tuple[TestCaseResult, ...]
    exit_code: int
    duration: float
    selected: tuple[str, ...] = ()
    collection_errors: tuple[CollectionError, ...] = ()
    # The whole run hit its wall-clock cap and was killed.
    timed_out: bool = False
    cancelled: bool = False
    # False when the OS did not let us cut the network for the test process.
    network_isolated: bool = False
    # Tail of pytest's own output, bounded, for when structured results are not enough.
    output_tail: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Whether per-test execution was recorded (TestCaseResult.executed is meaningful).
    traced: bool = False
    # Where the time went; None when no test process was started.
    phases: RunPhases | None = None

    @property
    def failures(self) -> tuple[TestCaseResult, ...]:
        return tuple(t for t in self.tests if not t.ok)

    @property
    def passed(self) -> tuple[TestCaseResult, ...]:
        return tuple(t for t in self.tests if t.outcome == "passed")

    @property
    def passed_ids(self) -> frozenset[str]:
        """Node ids that passed; an id several items share (a plugin's cases) only if all did."""
        return frozenset(t.nodeid for t in self.passed) - {t.nodeid for t in self.failures}

    @property
    def hung(self) -> bool:
        """A test ran past its timeout, or the whole run past its cap."""
        return self.timed_out or any(t.outcome == "timeout" for t in self.tests)

    @property
    def all_passed(self) -> bool:
        """Every collected test passed or was skipped, and at least one ran."""
        return (
            bool(self.tests)
            and not self.failures
            and not self.collection_errors
            and not self.timed_out
            and not self.cancelled
        )
