"""Argument swaps: two neighbouring arguments of a call on a suspicious line, swapped."""

from __future__ import annotations

from edit_support import copy_of, scored

from cyclefix.models.backend import Choice
from cyclefix.refine.argument_swaps import SWAP_GAP, argument_swaps
from cyclefix.refine.types import EditLine

CODE = "def is_text(value):\n    return isinstance(str, value)\n"
LINE = "return isinstance(str, value)"


def test_a_swap_of_two_arguments_on_a_suspicious_line_is_a_candidate() -> None:
    text = copy_of(CODE)
    (swap,) = argument_swaps(text, scored(text, {}), [EditLine(LINE)])
    assert swap.code == CODE.replace("(str, value)", "(value, str)")
    assert swap.line == LINE and swap.gap == SWAP_GAP


def test_the_model_choosing_the_second_argument_first_ranks_the_swap_higher() -> None:
    text = copy_of(CODE)
    forks = scored(text, {(LINE, "str"): [Choice("value", -1.5)]})
    (swap,) = argument_swaps(text, forks, [EditLine(LINE)])
    assert swap.gap == -1.5


def test_a_line_penalty_ranks_the_swap_lower() -> None:
    text = copy_of(CODE)
    (swap,) = argument_swaps(text, scored(text, {}), [EditLine(LINE, 2.0)])
    assert swap.gap == SWAP_GAP - 2.0


def test_calls_on_lines_not_suspected_are_left_alone() -> None:
    code = "def f(a, b):\n    x = pow(a, b)\n    return divmod(x, b)\n"
    text = copy_of(code)
    swaps = argument_swaps(text, scored(text, {}), [EditLine("return divmod(x, b)")])
    assert [s.code for s in swaps] == [code.replace("divmod(x, b)", "divmod(b, x)")]


def test_each_neighbouring_pair_of_a_call_and_of_a_nested_call_is_swapped() -> None:
    code = 'def f(a, b, c):\n    return "{}{}".format(a[1:], g(b, c), a[0])\n'
    line = 'return "{}{}".format(a[1:], g(b, c), a[0])'
    text = copy_of(code)
    swaps = {s.code for s in argument_swaps(text, scored(text, {}), [EditLine(line)])}
    assert swaps == {
        code.replace("a[1:], g(b, c)", "g(b, c), a[1:]"),
        code.replace("g(b, c), a[0]", "a[0], g(b, c)"),
        code.replace("g(b, c)", "g(c, b)"),
    }


def test_starred_equal_seen_or_multi_line_arguments_are_not_swapped() -> None:
    code = "def f(a, b):\n    g(*a, b)\n    g(b, b)\n    g(a,\n      b)\n    g(a, b)\n"
    lines = [EditLine("g(*a, b)"), EditLine("g(b, b)"), EditLine("g(a,"), EditLine("g(a, b)")]
    text = copy_of(code)
    seen = [code.replace("g(a, b)\n", "g(b, a)\n")]
    assert argument_swaps(text, scored(text, {}), lines, seen) == []


def test_methods_and_non_ascii_text_keep_their_offsets() -> None:
    code = 'def f(self, a):\n    return self.m("é…", a)\n'
    line = 'return self.m("é…", a)'
    text = copy_of(code)
    (swap,) = argument_swaps(text, scored(text, {}), [EditLine(line)])
    assert swap.code == code.replace('("é…", a)', '(a, "é…")')
