"""A token edit passing a few tests after many tries waits for the model's answers (refine.held)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from scripted_support import ForkingScriptedBackend

from cyclefix.bench.records import AttemptStats, RoundResult, RoundStatus
from cyclefix.bench.summary import FixOrigin, fix_origins, summarize_model
from cyclefix.refine import RefineConfig, fix
from cyclefix.refine.held import passes_by_chance
from cyclefix.refine.report import fix_result_to_dict
from cyclefix.refine.types import Attempt

CONFIG = RefineConfig(
    rounds=3, budget_seconds=120, extend_to_budget=False, per_test_timeout=2.0, extra_answers=0
)
# A fork anywhere makes the copy "scored": operator edits of its suspicious line follow.
SCORED = [("return", " yield", -9.0)]
WRONG = "def is_positive(x):\n    return x >= -1\n"
RIGHT = "def is_positive(x):\n    return 0 < x\n"


def fence(code: str) -> str:
    return "Here it is:\n```python\n" + textwrap.dedent(code).strip() + "\n```\n"


def _edit(tests_passed: int) -> Attempt:
    return Attempt(
        1, "code", "passed", "", "", 0.2, 0, 0, 0.1, tests_passed, tests_passed, token_edit=True
    )


@pytest.mark.parametrize(
    ("tests_passed", "edits_so_far", "held"),
    [(1, 1, False), (1, 2, True), (2, 3, False), (2, 4, True), (4, 16, True), (10, 64, False)],
)
def test_an_edit_is_held_when_the_edits_tried_reach_two_to_the_tests_it_passed(
    tests_passed: int, edits_so_far: int, held: bool
) -> None:
    assert passes_by_chance(_edit(tests_passed), edits_so_far) is held


def test_an_answer_of_the_model_is_never_held() -> None:
    answer = Attempt(1, "code", "passed", "", "", 0.2, 9, 9, 0.1, 1, 1)
    assert not passes_by_chance(answer, 100)


def _signs(root: Path, tests: str) -> None:
    """`is_positive` says 0 is positive; `tests` judge it."""
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (root / "signs.py").write_text("def is_positive(x):\n    return x >= 0\n")
    (root / "test_signs.py").write_text("from signs import is_positive\n\n\n" + tests)


ONE_TEST = "def test_signs():\n    assert is_positive(3) and not is_positive(0)\n"


def test_a_held_edit_gives_way_to_an_answer_that_passes_in_a_later_round(tmp_path: Path) -> None:
    _signs(tmp_path, ONE_TEST)
    backend = ForkingScriptedBackend([fence(WRONG), fence(RIGHT)], [], SCORED)
    result = fix(tmp_path, backend, config=CONFIG)
    assert result.status == "fixed"
    first = result.rounds[0].attempts
    # The answer failed; `<` failed; `>` passed its one test as the second edit tried: held.
    assert [(a.verdict, a.token_edit) for a in first] == [
        ("tests_failed", False),
        ("tests_failed", True),
        ("passed", True),
    ]
    assert "+    return 0 < x" in result.diff
    assert result.fixed_by is not None and not result.fixed_by.token_edit
    assert any("held while the model's answers had their rounds" in n for n in result.notes)


def test_the_held_edit_is_the_fix_when_no_answer_passes_in_the_rounds_asked_for(
    tmp_path: Path,
) -> None:
    _signs(tmp_path, ONE_TEST)
    backend = ForkingScriptedBackend([fence(WRONG)], [], SCORED)
    result = fix(tmp_path, backend, config=CONFIG)
    assert result.status == "fixed"
    assert len(result.rounds) == CONFIG.rounds
    # The first edit held stays the fix, though another passes its one test in round 2.
    assert "+    return x > 0" in result.diff
    assert result.fixed_by is result.rounds[0].attempts[-1]
    assert fix_result_to_dict(result)["fixed_by"] == {"round": 1, "attempt": 2}
    assert result.final_run is not None and result.final_run.all_passed
    assert "the token edit held in round 1 is the fix: no answer passed" in result.notes


def test_an_edit_passing_enough_tests_is_the_fix_at_once(tmp_path: Path) -> None:
    _signs(
        tmp_path,
        "def test_three():\n    assert is_positive(3)\n\n\n"
        "def test_zero():\n    assert not is_positive(0)\n\n\n"
        "def test_minus_one():\n    assert not is_positive(-1)\n",
    )
    backend = ForkingScriptedBackend([fence(WRONG)], [], SCORED)
    result = fix(tmp_path, backend, config=CONFIG)
    assert result.status == "fixed" and len(result.rounds) == 1
    assert result.fixed_by is not None and result.fixed_by.token_edit
    assert not any("held" in n for n in result.notes)


def _line(round_: int, status: RoundStatus, *attempts: AttemptStats) -> RoundResult:
    return RoundResult(
        "humaneval",
        "m",
        "HumanEval/1",
        0,
        round_,
        status,
        True,
        True,
        attempts,
    )


def _stats(verdict: str, *, token_edit: bool = False, fix: bool = False) -> AttemptStats:
    return AttemptStats(verdict, False, 0.2, 0, 0, 0.0, 0.0, 0.0, token_edit=token_edit, fix=fix)


def test_the_bench_credits_a_fix_to_the_held_edit_it_was() -> None:
    held = _line(1, "refined", _stats("tests_failed"), _stats("passed", token_edit=True, fix=True))
    fixed = _line(3, "fixed", _stats("tests_failed"), _stats("passed", token_edit=True))
    assert fix_origins([fixed], [held, fixed]) == (FixOrigin("token_edit", 1, 1),)
    # Lines written before the mark was kept: the fixed round's last passing attempt.
    answer = _line(2, "fixed", _stats("passed"))
    assert fix_origins([answer], [answer]) == (FixOrigin("answer", 1, 1),)


def test_the_run_summary_credits_a_held_edit_from_an_earlier_rounds_line() -> None:
    start = _line(0, "generated")
    held = _line(1, "refined", _stats("tests_failed"), _stats("passed", token_edit=True, fix=True))
    # The last round's own attempts failed: the held edit is the fix.
    fixed = _line(2, "fixed", _stats("tests_failed"))
    summary = summarize_model([start, held, fixed], rounds=2)
    assert summary.fix_origins == (FixOrigin("token_edit", 1, 1),)
