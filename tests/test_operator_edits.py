"""Operator edits: one operator, keyword or number of a suspicious line changed to a neighbour."""

from __future__ import annotations

from edit_support import copy_of, scored

from cyclefix.models.backend import Choice
from cyclefix.refine.operator_edits import OPERATOR_GAP, operator_edits
from cyclefix.refine.types import EditLine


def edited_lines(code: str, line: str) -> list[str]:
    """The suspicious `line` as each operator edit of `code` writes it, in the edits' order."""
    text = copy_of(code)
    return [
        next(
            new.strip()
            for old, new in zip(code.splitlines(), edit.code.splitlines(), strict=True)
            if old != new
        )
        for edit in operator_edits(text, scored(text, {}), [EditLine(line)])
    ]


def test_a_not_in_front_of_a_returned_comparison_is_taken_away() -> None:
    code = "def is_child_of(self, other):\n    return not self.parent == other\n"
    assert "return self.parent == other" in edited_lines(code, "return not self.parent == other")


def test_membership_and_identity_tests_get_their_negation() -> None:
    code = "def f(x, xs):\n    if x in [True, False]:\n        return xs is None\n"
    assert "if x not in [True, False]:" in edited_lines(code, "if x in [True, False]:")
    assert "return xs is not None" in edited_lines(code, "return xs is None")
    code = "def f(x, xs):\n    return x not in xs or xs is not None\n"
    lines = edited_lines(code, "return x not in xs or xs is not None")
    assert "return x in xs or xs is not None" in lines
    assert "return x not in xs or xs is None" in lines


def test_an_order_comparison_gets_its_three_neighbours_negation_first() -> None:
    code = "def f(a, b):\n    return a < b\n"
    assert edited_lines(code, "return a < b")[:3] == [
        "return a >= b",
        "return a <= b",
        "return a > b",
    ]


def test_and_becomes_or_at_each_place_it_is_written() -> None:
    code = "def f(a, b, c):\n    return a and (b and c)\n"
    lines = edited_lines(code, "return a and (b and c)")
    assert "return a or (b and c)" in lines and "return a and (b or c)" in lines


def test_a_not_goes_in_front_of_a_condition_and_of_each_operand_of_and() -> None:
    code = "def f(a, b):\n    if a and b:\n        return 1\n    return 0\n"
    lines = edited_lines(code, "if a and b:")
    assert "if not (a and b):" in lines
    assert "if not a and b:" in lines and "if a and not b:" in lines


def test_arithmetic_turns_to_its_inverse_in_expressions_and_augmented_assignments() -> None:
    code = "def f(a, b):\n    a += b\n    return (a) - len(b * 2)\n"
    assert "a -= b" in edited_lines(code, "a += b")
    lines = edited_lines(code, "return (a) - len(b * 2)")
    assert "return (a) + len(b * 2)" in lines and "return (a) - len(b / 2)" in lines


def test_an_integer_goes_one_up_and_one_down_a_negative_one_as_one_number() -> None:
    code = "def f(xs, start):\n    return range(start - 2, -2, -1), xs[0]\n"
    lines = edited_lines(code, "return range(start - 2, -2, -1), xs[0]")
    assert "return range(start - 2, -1, -1), xs[0]" in lines
    assert "return range(start - 2, -2, -1), xs[-1]" in lines
    assert "return range(start - 1, -2, -1), xs[0]" in lines
    assert "return range(start - 2, --2, -1), xs[0]" not in lines


def test_a_plus_one_is_dropped_and_a_boolean_flipped() -> None:
    code = "def f(n):\n    return g(n + 1, strict=True)\n"
    lines = edited_lines(code, "return g(n + 1, strict=True)")
    assert "return g(n, strict=True)" in lines and "return g(n + 1, strict=False)" in lines


def test_only_suspicious_lines_are_edited_and_codes_seen_are_not_offered_again() -> None:
    code = "def f(a, b):\n    c = a == b\n    return c != a\n"
    text = copy_of(code)
    edits = operator_edits(text, scored(text, {}), [EditLine("return c != a")])
    assert [e.code for e in edits] == [code.replace("c != a", "c == a")]
    assert (
        operator_edits(text, scored(text, {}), [EditLine("return c != a")], [edits[0].code]) == []
    )


def test_the_model_writing_the_new_operator_ranks_the_edit_higher_and_a_line_penalty_lower() -> (
    None
):
    code = "def f(a, b):\n    return a + b\n"
    text = copy_of(code)
    line = "return a + b"
    forks = scored(text, {(line, " +"): [Choice(" -", -0.5)]})
    (edit,) = operator_edits(text, forks, [EditLine(line)])
    assert edit.code == code.replace("+", "-") and edit.gap == -0.5
    (edit,) = operator_edits(text, scored(text, {}), [EditLine(line, 1.5)])
    assert edit.gap == OPERATOR_GAP - 1.5


def test_formatting_and_joining_strings_is_left_alone() -> None:
    code = 'def f(x):\n    return "%s items" % x + "!"\n'
    lines = edited_lines(code, 'return "%s items" % x + "!"')
    assert not any("//" in line or "-" in line for line in lines)
