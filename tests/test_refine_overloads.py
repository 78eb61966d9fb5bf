"""`@overload` signatures are for type checkers: the function to rewrite is the implementation."""

from __future__ import annotations

import ast

from cyclefix.refine.source import function_node, function_spans, target_for_span
from cyclefix.refine.splice import splice_candidate

MODULE = (
    "from typing import overload\n"
    "\n"
    "class Spec:\n"
    "    @overload\n"
    "    @classmethod\n"
    "    def from_lines(cls, lines: list[str]) -> 'Spec':\n"
    "        ...\n"
    "\n"
    "    @overload\n"
    "    @classmethod\n"
    "    def from_lines(cls, lines: str) -> 'Spec':\n"
    "        ...\n"
    "\n"
    "    @classmethod\n"
    "    def from_lines(cls, lines):\n"
    "        spec = cls()\n"
    "        return lines\n"
)


def test_the_span_of_an_overloaded_method_is_its_implementation() -> None:
    spans = [s for s in function_spans(ast.parse(MODULE)) if s.qualname == "Spec.from_lines"]
    assert [(s.start_line, s.end_line) for s in spans] == [(14, 17)]


def test_the_node_of_an_overloaded_method_is_its_implementation() -> None:
    node = function_node(ast.parse(MODULE), "Spec.from_lines")
    assert node is not None and node.lineno == 15


def test_an_answer_echoing_the_overloads_replaces_only_the_implementation() -> None:
    span = next(s for s in function_spans(ast.parse(MODULE)) if s.qualname == "Spec.from_lines")
    target = target_for_span("spec.py", MODULE, span)
    answer = MODULE.replace("        return lines\n", "        return spec\n")  # overloads too
    new = splice_candidate({"spec.py": MODULE}, [target], answer).files["spec.py"]
    assert new == MODULE.replace("        return lines\n", "        return spec\n")
