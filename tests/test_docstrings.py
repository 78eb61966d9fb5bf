"""Long docstrings shown cut to fit the window, and put back whole in the fix."""

from __future__ import annotations

import ast
import textwrap

from cyclefix.refine.copies import code_under_test
from cyclefix.refine.docstrings import (
    KEPT_LINES,
    LONG_DOCSTRING,
    cut_docstrings,
    restored,
    with_cuts,
)
from cyclefix.refine.prompt import RefinePrompt
from cyclefix.refine.types import Target

EXAMPLES = "".join(f"    >>> table({i})\n    '{i}'\n" for i in range(20))
CODE = (
    "def table(rows):\n"
    '    """Format `rows` as a plain-text table.\n'
    "\n"
    "    Examples:\n"
    f"{EXAMPLES}"
    '    """\n'
    "    return str(rows + 1)\n"
)


def test_a_long_docstring_is_cut_to_its_opening_paragraph_with_a_note() -> None:
    cut, cuts = cut_docstrings(CODE)
    assert cut == (
        "def table(rows):\n"
        '    """Format `rows` as a plain-text table.\n'
        "    (... 42 more lines of this docstring not shown ...)\n"
        '    """\n'
        "    return str(rows + 1)\n"
    )
    ast.parse(cut)
    assert len(cuts) == 1 and with_cuts(CODE, cuts) == cut


def test_short_docstrings_and_code_that_does_not_parse_stay_as_they_are() -> None:
    short = 'def f():\n    """' + "line\n" * (LONG_DOCSTRING - 2) + '    """\n    return 1\n'
    assert cut_docstrings(short) == (short, ())
    assert cut_docstrings("def f(:\n") == ("def f(:\n", ())


def test_the_opening_paragraph_is_kept_up_to_a_few_lines() -> None:
    opening = "".join(f"    Line {i} of the summary.\n" for i in range(10))
    code = f'def f():\n    """Summary.\n{opening}\n{EXAMPLES}    """\n'
    cut, _ = cut_docstrings(code)
    assert cut.count("of the summary.") == KEPT_LINES - 1


def test_an_answer_holding_the_cut_docstring_gets_the_whole_one_back() -> None:
    cut, cuts = cut_docstrings(CODE)
    answer = cut.replace("rows + 1", "rows")
    assert restored(answer, cuts) == CODE.replace("rows + 1", "rows")


def test_a_method_cut_indented_and_answered_dedented_gets_it_back_at_its_indentation() -> None:
    method = textwrap.indent(CODE, "    ")
    cut, cuts = cut_docstrings(method)
    answer = textwrap.dedent(cut).replace("rows + 1", "rows")
    assert restored(answer, cuts) == CODE.replace("rows + 1", "rows")


def test_an_answer_that_reworded_the_cut_opening_still_gets_the_whole_docstring_back() -> None:
    cut, cuts = cut_docstrings(CODE)
    answer = cut.replace("Format `rows`", "Render rows").replace("rows + 1", "rows")
    assert restored(answer, cuts) == CODE.replace("rows + 1", "rows")


def test_an_answer_that_rewrote_the_docstring_keeps_its_own() -> None:
    _, cuts = cut_docstrings(CODE)
    answer = 'def table(rows):\n    """Tables."""\n    return str(rows)\n'
    assert restored(answer, cuts) == answer


def test_the_code_under_test_is_scored_with_the_docstrings_the_prompt_cut() -> None:
    cut, cuts = cut_docstrings(CODE)
    prompt = RefinePrompt(("table",), cut, "failed", code_under_test=cut, cut_docstrings=cuts)
    assert code_under_test(prompt, [Target("m.py", "table", 1, 46, CODE)]) == cut
