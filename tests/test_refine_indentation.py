"""An answer takes the indentation of the file it goes into: tabs stay tabs, spaces stay spaces."""

from __future__ import annotations

import ast

from cyclefix.refine.indentation import conform_indentation, indents_with_tabs
from cyclefix.refine.source import function_spans, module_context, target_for_span
from cyclefix.refine.splice import splice_candidate
from cyclefix.refine.types import Target

TABBED = (
    "class Pattern:\n"
    '\t"""A pattern."""\n'
    "\n"
    "\t@staticmethod\n"
    "\tdef first_index(segments):\n"
    '\t\t"""\n'
    "\t\tThe index of the first non-empty segment.\n"
    '\t\t"""\n'
    "\t\tfor i in range(1, len(segments)):\n"
    "\t\t\tif segments[i]:\n"
    "\t\t\t\treturn i\n"
    "\t\treturn -1\n"
    "\n"
    "\tdef size(self):\n"
    "\t\treturn 0\n"
)
FIXED_LOOP = "\t\tfor i in range(0, len(segments)):\n"


def _target(source: str, qualname: str, path: str = "pattern.py") -> Target:
    span = next(s for s in function_spans(ast.parse(source)) if s.qualname == qualname)
    return target_for_span(path, source, span)


def _fixed(answer: str) -> str:
    target = _target(TABBED, "Pattern.first_index")
    new = splice_candidate({"pattern.py": TABBED}, [target], answer).files["pattern.py"]
    ast.parse(new)
    return new


def test_a_method_of_a_tab_indented_class_rewritten_as_shown_keeps_its_tabs() -> None:
    answer = _target(TABBED, "Pattern.first_index").source.replace("(1, len", "(0, len")
    assert _fixed(answer) == TABBED.replace("\t\tfor i in range(1, len(segments)):\n", FIXED_LOOP)


def test_an_answer_in_spaces_goes_into_a_tab_indented_class_with_tabs() -> None:
    shown = _target(TABBED, "Pattern.first_index").source
    answer = shown.replace("\t", "    ").replace("(1, len", "(0, len")
    assert _fixed(answer) == TABBED.replace("\t\tfor i in range(1, len(segments)):\n", FIXED_LOOP)


def test_an_answer_mixing_tabs_and_spaces_counts_a_tab_as_one_level() -> None:
    answer = (
        "@staticmethod\n"
        "def first_index(segments):\n"
        '\t"""The index of the first non-empty segment."""\n'
        "    for i in range(0, len(segments)):\n"
        "\t    if segments[i]:\n"
        "\t\t\treturn i\n"
        "    return -1\n"
    )
    new = _fixed(answer)
    assert FIXED_LOOP + "\t\t\tif segments[i]:\n\t\t\t\treturn i\n\t\treturn -1\n" in new


def test_a_tab_written_answer_goes_into_a_space_indented_module_with_spaces() -> None:
    spaced = "class Box:\n    def grow(self, n):\n        return n - 1\n"
    target = _target(spaced, "Box.grow", "box.py")
    answer = "def grow(self, n):\n\treturn n + 1\n"
    new = splice_candidate({"box.py": spaced}, [target], answer).files["box.py"]
    assert new == "class Box:\n    def grow(self, n):\n        return n + 1\n"


def test_the_lines_of_a_multi_line_string_value_stay_as_written() -> None:
    code = 'def usage():\n    text = """a\n    b\n"""\n    return text\n'
    assert (
        conform_indentation(code, tabs=True)
        == 'def usage():\n\ttext = """a\n    b\n"""\n\treturn text\n'
    )


def test_a_module_indents_with_tabs_when_its_first_block_does() -> None:
    assert indents_with_tabs(TABBED)
    assert not indents_with_tabs("def f():\n    return '\\t'\n")


def test_the_outline_of_a_tab_indented_class_is_tab_indented() -> None:
    context = module_context(TABBED, ast.parse(TABBED), exclude={"Pattern.first_index"})
    assert "\tdef size(self):\n\t\t..." in context
