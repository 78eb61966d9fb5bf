"""Token edits from the real llama.cpp runtime's scoring of a faulty function (0.5B GGUF)."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest
from project_support import make_project

from cyclefix.refine import fix, open_backend
from cyclefix.refine.copies import EDIT_BACKLOG, CopyPlanner
from cyclefix.refine.operator_edits import operator_edits
from cyclefix.refine.prompt import RefinePrompt
from cyclefix.refine.token_edits import EDITS_PER_ROUND, token_edits
from cyclefix.refine.types import EditLine, RefineConfig, Target

pytestmark = pytest.mark.model

CODE = (
    "def percent_value(text):\n"
    '    """The number in a percentage such as "12.5%"."""\n'
    '    return float(text.split("%")[1])\n'
)
LINE = 'return float(text.split("%")[1])'
FEEDBACK = (
    'Failed at line: return float(text.split("%")[1]); Error: ValueError: could not convert '
    "string to float: ''; Test line: assert percent_value(\"12.5%\") == 12.5"
)


def test_the_real_models_alternatives_at_the_suspicious_line_give_whole_candidates() -> None:
    backend = open_backend("qwen2.5-coder-0.5b")
    try:
        planner = CopyPlanner(backend, RefineConfig(), [], threading.Event())
        prompt = RefinePrompt(
            ("percent_value",), CODE, FEEDBACK, suspicious_lines=(EditLine(LINE),)
        )
        target = Target("m.py", "percent_value", 1, 3, CODE)
        planner.branches_off_copies(prompt, 0.2, (target,), 0)
        chosen = list(planner.token_edits(prompt, (target,)))
        _, (copy, forks, _) = planner.scored_copy(prompt, CODE, 1.0, 1.0)
        lines = [EditLine(LINE)]
        edits = token_edits(copy, forks, lines) + operator_edits(copy, forks, lines)
        every = list(dict.fromkeys(e.code for e in sorted(edits, key=lambda e: -e.gap)))
    finally:
        backend.close()
    assert 0 < len(chosen) <= EDIT_BACKLOG and set(chosen) <= set(every)
    # Likeliest first (further down, gaps a rounding apart may swap between two scorings).
    assert chosen[:EDITS_PER_ROUND] == every[:EDITS_PER_ROUND]
    for code in every:
        ast.parse(code)
        changed = [
            (old, new)
            for old, new in zip(CODE.splitlines(), code.splitlines(), strict=True)
            if old != new
        ]
        assert [old.strip() for old, _ in changed] == [LINE]
    # The shipped line is among the model's own alternatives there.
    assert CODE.replace("[1]", "[0]") in every


def test_the_real_models_scoring_ranks_every_operator_edit_among_the_token_edits() -> None:
    code = (
        "def is_child_of(self, other):\n"
        '    """Whether `other` is this node\'s parent."""\n'
        "    return not self.parent == other\n"
    )
    line = "return not self.parent == other"
    feedback = "Test Case Failed: assert child.is_child_of(root), Actual output: False"
    backend = open_backend("qwen2.5-coder-0.5b")
    try:
        planner = CopyPlanner(backend, RefineConfig(), [], threading.Event())
        prompt = RefinePrompt(("is_child_of",), code, feedback, suspicious_lines=(EditLine(line),))
        target = Target("tree.py", "is_child_of", 1, 3, code)
        chosen = list(planner.token_edits(prompt, (target,)))
        _, (copy, forks, _) = planner.scored_copy(prompt, code, 1.0, 1.0)
        operators = [e.code for e in operator_edits(copy, forks, [EditLine(line)])]
    finally:
        backend.close()
    # `not` taken away, `==` to `!=`: each a candidate, whatever the model rated it.
    assert code.replace("not self", "self") in operators
    assert code.replace("==", "!=") in operators
    assert set(operators) <= set(chosen)


def test_the_real_models_edits_reach_the_assignment_an_error_flows_from(tmp_path: Path) -> None:
    files = {
        "codec.py": (
            "LIMIT = 10\n\n\n"
            "class TooLong(ValueError):\n    pass\n\n\n"
            "def encode(text, final):\n"
            '    """The text as bytes; over LIMIT bytes is too long, one more allowed while more\n'
            '    input may follow (not final) or for a trailing dot."""\n'
            "    data = text.encode()\n"
            "    spare = not final and text.endswith('.')\n"
            "    if len(data) > LIMIT + spare:\n"
            "        raise TooLong(text)\n"
            "    return data\n"
        ),
        "tests/test_codec.py": (
            "import pytest\n"
            "from codec import TooLong, encode\n\n\n"
            "def test_a_trailing_dot_is_one_byte_more():\n"
            "    assert encode('abcdefghij.', final=True) == b'abcdefghij.'\n\n\n"
            "def test_final_input_over_the_limit_is_too_long():\n"
            "    with pytest.raises(TooLong):\n"
            "        encode('abcdefghijk', final=True)\n"
        ),
    }
    project = make_project(tmp_path / "codec_project", files)
    backend = open_backend("qwen2.5-coder-0.5b")
    try:
        config = RefineConfig(rounds=1, budget_seconds=120, extend_to_budget=False)
        result = fix(project, backend, config=config)
    finally:
        backend.close()
    assignment = "spare = not final and text.endswith('.')"
    edited = [
        a.code
        for a in result.attempts
        if a.token_edit and assignment not in a.code and "if len(data) > LIMIT + spare:" in a.code
    ]
    assert edited, [(a.verdict, a.token_edit, a.detail) for a in result.attempts]
