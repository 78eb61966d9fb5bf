"""A token edit that passes on thin evidence waits for the model's answers before it is the fix.

A fix tries token and operator edits by the dozen (refine.token_edits, refine.operator_edits);
against a few weak tests (two docstring examples, one assert) one of them passes by chance
about as often as it is the fix: over four EvalPlus runs, 39 of 92 verified edits passed the
hidden tests where 79 of 107 of the model's answers did. If a wrong edit passed each test with
even odds, one of `n` tried edits would pass all `k` tests by chance about n / 2**k times; where
that is 1 or more, the passing edit is held while the rounds asked for go on, and an answer
(or a part of one) that passes in them is the fix instead. When none does, the held edit is.
Ten passing tests hold none short of a thousand edits: a real suite's verdict stands at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from cyclefix.refine.round import TESTED, Outcome
from cyclefix.refine.types import Attempt, RoundRecord

# Past this many passing tests no count of edits holds one (and 2**k stays small).
_ENOUGH_TESTS = 30


@dataclass(frozen=True)
class HeldFix:
    """A passing edit held back, and the accepted sources it passed with."""

    outcome: Outcome
    sources: dict[str, str]  # the state's sources with the edit's files in place


def edits_tested(rounds: tuple[RoundRecord, ...] | list[RoundRecord]) -> int:
    """Token edits of a fix the tests judged, over its rounds so far."""
    return sum(1 for r in rounds for a in r.attempts if a.token_edit and a.verdict in TESTED)


def passes_by_chance(attempt: Attempt, edits_so_far: int) -> bool:
    """Whether a passing token edit, the latest of `edits_so_far` the tests judged, passed too
    few tests for that many tries (n >= 2**k) to stand without waiting for the model."""
    if not attempt.token_edit or attempt.verdict != "passed":
        return False
    k = attempt.tests_passed
    return k < _ENOUGH_TESTS and edits_so_far >= 2**k


def held_note(attempt: Attempt, edits_so_far: int) -> str:
    return (
        f"round {attempt.round}: a token edit passed {attempt.tests_passed} test(s) after "
        f"{edits_so_far} edit(s) were tried; held while the model's answers had their rounds"
    )
