"""refine.pitfalls: code a prompt shows that uses a surprising construct gets a note on it."""

from __future__ import annotations

import shutil
from pathlib import Path

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, fix
from cyclefix.refine.pitfalls import (
    IDENTITY,
    IN_PLACE,
    ROUND,
    STRIP,
    pitfall_notes,
    with_pitfalls,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_builtin_round_gets_the_half_to_even_note() -> None:
    assert pitfall_notes("def f(c, p):\n    return round(c * p / 100)\n") == (ROUND,)
    assert "round(12.5) == 12" in ROUND


def test_a_round_of_the_codes_own_is_not_the_builtin() -> None:
    code = "from decimal_tools import round\n\ndef f(x):\n    return round(x)\n"
    assert pitfall_notes(code) == ()
    assert pitfall_notes("def f(x, round):\n    return round(x)\n") == ()


def test_strip_with_a_word_gets_the_character_set_note() -> None:
    assert pitfall_notes("def f(s):\n    return s.rstrip('.py')\n") == (STRIP,)


def test_strip_of_whitespace_characters_is_plainly_a_set() -> None:
    assert pitfall_notes("def f(s):\n    return s.strip(' \\n')\n") == ()
    assert pitfall_notes("def f(s):\n    return s.strip('x')\n") == ()


def test_using_what_sort_returns_gets_the_in_place_note() -> None:
    assert pitfall_notes("def f(xs):\n    return xs.sort()\n") == (IN_PLACE,)
    assert pitfall_notes("def f(xs):\n    ys = xs.append(1)\n    return ys\n") == (IN_PLACE,)


def test_sort_as_a_statement_is_fine() -> None:
    assert pitfall_notes("def f(xs):\n    xs.sort()\n    return xs\n") == ()


def test_identity_with_a_literal_gets_the_identity_note() -> None:
    assert pitfall_notes("def f(x):\n    return x is 3\n") == (IDENTITY,)
    assert pitfall_notes("def f(s):\n    return 'a' is not s\n") == (IDENTITY,)
    assert pitfall_notes("def f(x):\n    return x is None or x is True\n") == ()


def test_notes_follow_the_feedback_in_a_fixed_order() -> None:
    code = "def f(s, x):\n    return x is 2 or s.strip('ab') == str(round(x))\n"
    assert with_pitfalls("Test Case Failed", code) == "\n".join(
        ("Test Case Failed", ROUND, STRIP, IDENTITY)
    )


def test_code_without_pitfalls_or_that_does_not_parse_leaves_the_feedback() -> None:
    assert with_pitfalls("Test Case Failed", "def f(x):\n    return x + 1\n") == (
        "Test Case Failed"
    )
    assert with_pitfalls("Test Case Failed", "def f(x:\n") == "Test Case Failed"


def _answer(body: str) -> str:
    return f"```python\ndef percent_of(cents: int, percent: int) -> int:\n    {body}\n```\n"


def test_the_next_round_of_an_answer_using_round_says_how_it_rounds(tmp_path: Path) -> None:
    project = tmp_path / "invoicing"
    shutil.copytree(EXAMPLES / "invoicing", project)
    backend = ScriptedBackend(
        [
            _answer("return round(cents * percent / 100)"),
            _answer("return (cents * percent + 50) // 100"),
        ]
    )
    config = RefineConfig(rounds=2, budget_seconds=120, extend_to_budget=False)
    result = fix(project, backend, config=config)
    assert result.status == "fixed"
    first, second = (call[-1].content for call in backend.calls)
    assert ROUND not in first
    assert ROUND in second
