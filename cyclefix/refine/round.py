"""One round of the loop as data: what its attempts share, what each produced, which is better.

A round rewrites its targets from the accepted state (the user's code plus adopted progress)
in the scratch copy; each attempt ends in an `Outcome`. The comparisons here decide what the
loop keeps: progress without regressions, and which of two tested candidates counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cyclefix.refine.source import read_source
from cyclefix.refine.types import Attempt, Target
from cyclefix.runner.results import TestCaseResult, TestRunResult

# Verdicts of answers that never reached the tests: the round samples again.
RESAMPLED = ("copy", "duplicate", "no_code", "wrong_target", "syntax_error")
# Verdicts of candidates the tests judged.
TESTED = ("passed", "tests_failed", "regressed")


@dataclass
class State:
    """The accepted state of the project in the scratch copy: user's code plus adopted progress."""

    sources: dict[str, str] = field(default_factory=dict)  # rel path -> text (files touched)
    run: TestRunResult | None = None


@dataclass(frozen=True)
class Round:
    """What every attempt of one round shares."""

    index: int  # 1-based
    scratch: Path  # the scratch copy the candidates run in
    targets: tuple[Target, ...]  # the functions the round rewrites
    state: State  # the accepted state the round starts from
    passed_before: frozenset[str]  # tests that passed in the user's run: none may break


@dataclass(frozen=True)
class Outcome:
    """One attempt and what it left: its candidate's files, test run and first failure."""

    attempt: Attempt
    files: dict[str, str]  # spliced files of this candidate (empty if never spliced)
    run: TestRunResult | None
    failing: TestCaseResult | None  # first failing test of its run, for the next round's feedback
    # A copy's answer prefixes that leave it where the model was least sure (refine.fork).
    branches: tuple[str, ...] = ()


def base_files(rnd: Round, paths: Iterable[str]) -> dict[str, str]:
    """The accepted text of each file of `paths` in the round's scratch copy."""
    return {rel: rnd.state.sources.get(rel) or read_source(rnd.scratch / rel) for rel in paths}


def better(new: Outcome, old: Outcome) -> bool:
    """Of two tested candidates of one round: `new` passes, or fails without breaking what
    passed before where `old` breaks it, or gets further than `old`."""
    verdict = new.attempt.verdict
    if verdict == "passed":
        return True
    if verdict != "tests_failed" or new.run is None:
        return False
    return old.attempt.verdict == "regressed" or improves(new.run, old.run)


def worse(new: TestRunResult | None, old: TestRunResult | None) -> bool:
    """Fewer tests pass, or as many and a test that fails in both now stops at an earlier line."""
    if new is None or old is None or new.collection_errors:
        return False
    if len(new.passed) != len(old.passed):
        return len(new.passed) < len(old.passed)
    return assert_reach(new, old) < 0


def improves(new: TestRunResult, old: TestRunResult | None) -> bool:
    """More tests pass and none stopped passing, or the same pass and one gets further."""
    if old is None:
        return False
    old_ok = {t.nodeid for t in old.passed}
    new_ok = {t.nodeid for t in new.passed}
    return old_ok < new_ok or (old_ok == new_ok and assert_reach(new, old) > 0)


def assert_reach(new: TestRunResult, old: TestRunResult) -> int:
    """-1 when a test failing in both runs stops at an earlier line of the same file in `new`,
    1 when none does and one gets further (without hanging), else 0.

    One test that checks many cases in turn (HumanEval's `check(candidate)`) fails either way
    until it passes; the line it stops at is the only sign that an attempt got closer.
    """
    old_stops = {t.nodeid: (t.path, t.line) for t in old.failures if t.path and t.line}
    further = False
    for test in new.failures:
        stop = old_stops.get(test.nodeid)
        if stop is None or test.path != stop[0] or test.line is None:
            continue
        if test.line < stop[1]:
            return -1
        further = further or (test.line > stop[1] and test.outcome != "timeout")
    return 1 if further else 0
