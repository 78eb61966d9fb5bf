"""Agreement: a fix passing a few tests is put to a vote of more passing answers, by what they
return on the tests' calls varied."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
from scripted_support import ForkingScriptedBackend

from cyclefix.refine import RefineConfig, fix
from cyclefix.refine.agreement import Behaviour, Vote, confirmed, decided, vote
from cyclefix.refine.round import Outcome
from cyclefix.refine.types import Attempt


def test_the_largest_group_of_alike_candidates_wins() -> None:
    assert vote([("1", "2"), ("1", "3"), ("1", "3")]) == Vote(1, 2, 3, 2, runner_up=1)


def test_a_tie_keeps_the_fix_found_first() -> None:
    assert vote([("1",), ("2",)]).chosen == 0
    assert vote([("1",), ("2",), ("2",), ("1",)]).chosen == 0


def test_a_call_any_candidate_raised_on_is_left_out_of_the_vote() -> None:
    # Call 0: one raised (None), so only call 1 counts, where all three agree.
    result = vote([("1", "5"), (None, "5"), ("2", "5")])
    assert result == Vote(0, 3, 3, 1, runner_up=0)


def test_there_is_no_vote_without_candidates() -> None:
    with pytest.raises(ValueError):
        vote([])


def _outcome(verdict: str, body: str) -> Outcome:
    attempt = Attempt(1, body, verdict, "", "", 0.9, 1, 1, 0.1)  # type: ignore[arg-type]
    return Outcome(attempt, {"m.py": f"def f(x):\n    return {body}\n"}, None, None)


def _confirm(
    found: Outcome, drawn: list[Outcome], behaviours: Mapping[str, Behaviour]
) -> tuple[Outcome, list[Attempt], Vote | None]:
    return confirmed(
        found,
        draws=len(drawn),
        draw=lambda i: drawn[i],
        behaviour_of=lambda o: behaviours[o.attempt.code],
        stop=lambda: False,
    )


def test_two_passing_answers_that_agree_outvote_the_first_fix() -> None:
    first = _outcome("passed", "x + 1")
    a, b = _outcome("passed", "x + 2"), _outcome("passed", "2 + x")
    behaviours = {"x + 1": ("1",), "x + 2": ("2",), "2 + x": ("2",)}
    chosen, attempts, result = _confirm(first, [a, b], behaviours)
    assert chosen is a and result == Vote(1, 2, 3, 1, runner_up=1)
    assert attempts == [a.attempt, b.attempt]


def test_an_answer_drawn_again_votes_for_the_candidate_it_repeats() -> None:
    first = _outcome("passed", "x + 1")
    other = _outcome("passed", "x + 2")
    again = _outcome("duplicate", "x + 1")
    behaviours = {"x + 1": ("1",), "x + 2": ("2",)}
    chosen, _attempts, result = _confirm(first, [other, again], behaviours)
    assert chosen is first and result == Vote(0, 2, 3, 1, runner_up=1)


def test_the_draws_end_once_the_answers_left_could_not_change_the_vote() -> None:
    first = _outcome("passed", "x + 1")
    agreeing = _outcome("passed", "1 + x")
    behaviours = {"x + 1": ("1",), "1 + x": ("1",)}
    drawn = [agreeing, _outcome("passed", "x + 2"), _outcome("passed", "x + 3")]
    # Two votes for the fix after one draw: two more could only tie, and a tie keeps it.
    chosen, attempts, result = _confirm(first, drawn, behaviours)
    assert chosen is first and attempts == [agreeing.attempt] and result is not None


@pytest.mark.parametrize(
    ("result", "left", "settled"),
    [
        (Vote(0, 2, 2, 1, runner_up=0), 2, True),  # a new group could only tie
        (Vote(0, 2, 2, 1, runner_up=0), 3, False),
        (Vote(1, 2, 3, 1, runner_up=1), 0, True),
        (Vote(1, 2, 3, 1, runner_up=1), 1, False),  # the fix's group could tie, and win
        (Vote(0, 1, 2, 1, runner_up=1), 1, False),
    ],
)
def test_a_vote_is_decided_when_no_group_can_catch_up_with_the_votes_left(
    result: Vote, left: int, settled: bool
) -> None:
    assert decided(result, left) is settled


def test_answers_that_fail_do_not_vote_and_a_lone_fix_stands_unrun() -> None:
    first = _outcome("passed", "x + 1")
    failed = _outcome("tests_failed", "x + 2")
    chosen, attempts, result = _confirm(first, [failed], {})  # no behaviour is asked for
    assert chosen is first and result is None and attempts == [failed.attempt]


def test_no_answer_is_drawn_once_the_fix_is_stopped() -> None:
    first = _outcome("passed", "x + 1")
    chosen, attempts, result = confirmed(
        first,
        draws=3,
        draw=lambda i: pytest.fail("drew an answer after the stop"),
        behaviour_of=lambda o: (),
        stop=lambda: True,
    )
    assert (chosen, attempts, result) == (first, [], None)


def fence(code: str) -> str:
    return "```python\n" + textwrap.dedent(code).strip() + "\n```\n"


# Odd levels from n: only the example n=3 is checked, which `range(3, 8, 2)` fits too.
FITS_THE_EXAMPLE = "def make_a_pile(n):\n    return list(range(3, 8, 2))\n"
RIGHT = "def make_a_pile(n):\n    return [n + 2 * i for i in range(n)]\n"
RIGHT_TOO = "def make_a_pile(n):\n    levels = [n]\n    while len(levels) < n:\n        levels.append(levels[-1] + 2)\n    return levels\n"


def _pile(root: Path) -> None:
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (root / "pile.py").write_text("def make_a_pile(n):\n    return [n]\n")
    (root / "test_pile.py").write_text(
        "from pile import make_a_pile\n\n\n"
        "def test_example():\n    assert make_a_pile(3) == [3, 5, 7]\n"
    )


CONFIG = RefineConfig(
    rounds=2, budget_seconds=120, extend_to_budget=False, extra_answers=0, agreement_answers=2
)


def test_the_fix_is_the_answer_other_passing_answers_agree_with(tmp_path: Path) -> None:
    _pile(tmp_path)
    replies = [fence(FITS_THE_EXAMPLE), fence(RIGHT), fence(RIGHT_TOO)]
    result = fix(tmp_path, ForkingScriptedBackend(replies, []), config=CONFIG)
    assert result.status == "fixed"
    assert "n + 2 * i" in result.diff
    attempts = result.rounds[0].attempts
    assert [a.verdict for a in attempts] == ["passed", "passed", "passed"]
    assert result.fixed_by is attempts[1]
    assert any("2 of 3 passing answers agree" in n for n in result.notes)
    assert (tmp_path / "pile.py").read_text() == "def make_a_pile(n):\n    return [n]\n"


def test_a_fix_passing_more_tests_than_a_few_is_not_put_to_a_vote(tmp_path: Path) -> None:
    _pile(tmp_path)
    (tmp_path / "test_pile.py").write_text(
        "from pile import make_a_pile\n\n\n"
        + "".join(
            f"def test_{n}():\n    assert make_a_pile({n}) == {[n + 2 * i for i in range(n)]}\n\n\n"
            for n in (1, 2, 3, 4)
        )
    )
    result = fix(tmp_path, ForkingScriptedBackend([fence(RIGHT)], []), config=CONFIG)
    assert result.status == "fixed" and len(result.rounds[0].attempts) == 1


def test_no_vote_is_taken_when_agreement_answers_are_off(tmp_path: Path) -> None:
    _pile(tmp_path)
    replies = [fence(FITS_THE_EXAMPLE), fence(RIGHT), fence(RIGHT_TOO)]
    config = RefineConfig(
        rounds=2, budget_seconds=120, extend_to_budget=False, extra_answers=0, agreement_answers=0
    )
    result = fix(tmp_path, ForkingScriptedBackend(replies, []), config=config)
    assert "range(3, 8, 2)" in result.diff and len(result.rounds[0].attempts) == 1


def test_no_answers_are_drawn_to_vote_where_one_takes_long_to_write(tmp_path: Path) -> None:
    _pile(tmp_path)
    # A docstring of 1,700 characters: the code shown is past LONG_ANSWER_CHARS.
    long_doc = '    """' + "Stones of each level. " * 80 + '"""\n'
    (tmp_path / "pile.py").write_text("def make_a_pile(n):\n" + long_doc + "    return [n]\n")
    replies = [fence(FITS_THE_EXAMPLE), fence(RIGHT), fence(RIGHT_TOO)]
    result = fix(tmp_path, ForkingScriptedBackend(replies, []), config=CONFIG)
    assert result.status == "fixed" and len(result.rounds[0].attempts) == 1
