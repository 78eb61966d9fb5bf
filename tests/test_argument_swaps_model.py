"""Argument swaps ranked by the real llama.cpp runtime's scoring of a faulty call (0.5B GGUF)."""

from __future__ import annotations

import threading

import pytest

from cyclefix.refine import open_backend
from cyclefix.refine.argument_swaps import argument_swaps
from cyclefix.refine.copies import CopyPlanner
from cyclefix.refine.prompt import RefinePrompt
from cyclefix.refine.types import EditLine, RefineConfig, Target

pytestmark = pytest.mark.model

CODE = (
    "def is_text(value):\n"
    '    """Whether `value` is a str or bytes."""\n'
    "    return isinstance((str, bytes), value)\n"
)
LINE = "return isinstance((str, bytes), value)"
FEEDBACK = (
    "Failed at line: return isinstance((str, bytes), value); Error: TypeError: isinstance() "
    'arg 2 must be a type, a tuple of types, or a union; Test line: assert is_text("a")'
)
FIXED = CODE.replace("isinstance((str, bytes), value)", "isinstance(value, (str, bytes))")


def test_the_swap_that_fixes_the_call_is_among_the_rounds_candidates() -> None:
    backend = open_backend("qwen2.5-coder-0.5b")
    try:
        planner = CopyPlanner(backend, RefineConfig(), [], threading.Event())
        prompt = RefinePrompt(("is_text",), CODE, FEEDBACK, suspicious_lines=(EditLine(LINE),))
        target = Target("m.py", "is_text", 1, 3, CODE)
        planner.branches_off_copies(prompt, 0.2, (target,), 0)
        chosen = list(planner.token_edits(prompt, (target,)))
        _, (copy, forks, _) = planner.scored_copy(prompt, CODE, 1.0, 1.0)
        swaps = argument_swaps(copy, forks, [EditLine(LINE)])
    finally:
        backend.close()
    assert [swap.code for swap in swaps] == [FIXED]
    assert FIXED in chosen
