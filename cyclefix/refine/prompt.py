"""Refinement prompts in the CYCLE shape: intent, faulty code, execution feedback.

Stable parts (instructions, the test's source, module context) come first and the parts that
change each round (faulty code, feedback) last, so llama.cpp can reuse the cached prefix.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from cyclefix.models.backend import ChatMessage
from cyclefix.refine.types import EditLine, Target

SYSTEM_PROMPT = (
    "You are an expert Python developer fixing a bug. The tests are correct and must not be "
    "changed. Fix the general logic of the code, never special-case the test inputs. Reply with "
    "one ```python code block that holds the complete corrected function(s), and nothing else."
)

COPY_NOTE = (
    "Your previous answer was identical to the faulty code, so the test still fails. Find the "
    "actual mistake and change the code."
)


@dataclass(frozen=True)
class RefinePrompt:
    """What one refinement round shows the model."""

    names: tuple[str, ...]  # the functions to rewrite, e.g. ("Inventory.remove",)
    faulty_code: str  # the latest attempt (or the user's code in round 1)
    feedback: str  # CYCLE feedback of one failing test
    test_source: str = ""  # intent: the failing test's source
    # Intent when the function has no docstring: the module's description of what it does.
    description: str = ""
    context: str = ""  # read-only module context: imports, constants, other signatures
    path: str = ""  # file holding the faulty code, for the model's orientation
    other_failures: tuple[str, ...] = ()
    note: str = ""  # e.g. the copy note when resampling
    # Show only the signature and docstring: after copies, a fresh implementation from the
    # intent is the way out (copy detection still compares with the faulty code).
    from_scratch: bool = False
    # Other project functions on the failing path (callees, callers, in any file), shown in
    # full: the answer may rewrite any of them too.
    related: tuple[Target, ...] = ()
    # The targets' code as the round found it (faulty_code may show the latest attempt): what
    # the prompt's opening is chosen by, so that rounds share the model's read of it.
    code_under_test: str = ""
    # The lines the traced run singles out in the code under test, the less suspicious with a
    # penalty (not part of the messages: where token edits are tried, refine.token_edits).
    suspicious_lines: tuple[EditLine, ...] = ()
    # Long docstrings shown cut to fit the window: (cut, whole) as the code shown had them; an
    # answer's cut docstrings are put back whole before it is spliced (refine.docstrings).
    cut_docstrings: tuple[tuple[str, str], ...] = ()


def _fence(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


def build_refine_messages(prompt: RefinePrompt) -> list[ChatMessage]:
    names = ", ".join(f"`{n}`" for n in prompt.names) or "the code"
    parts = [f"Fix the bug in {names} so that the failing test passes."]
    if prompt.description.strip():
        parts.append(
            "## What the code should do (from the module's docstring)\n" + prompt.description
        )
    if prompt.test_source.strip():
        parts.append("## Failing test (correct, do not change)\n" + _fence(prompt.test_source))
    if prompt.context.strip():
        where = f" of {prompt.path}" if prompt.path else ""
        parts.append(
            f"## Rest of the module{where} (for reference; if the bug is in a function shown "
            "in full here, rewrite that function too)\n" + _fence(prompt.context)
        )
    if prompt.related:
        shown = "\n\n".join(
            f"# {t.path}\n{textwrap.dedent(t.source).rstrip()}" for t in prompt.related
        )
        parts.append(
            "## Other functions on the failing path (the bug may be in one of them: if so, "
            "rewrite that function in full in your answer)\n" + _fence(shown)
        )
    if prompt.from_scratch:
        outline = answer_prefix(prompt.faulty_code).removeprefix("```python\n")
        parts.append(
            "## Function to write\nThe current implementation is wrong and was already "
            "rewritten unchanged several times. Write a new implementation from the docstring "
            "and the test, not based on the old one.\n" + _fence(outline + "    ...")
        )
    else:
        parts.append("## Faulty code\n" + _fence(prompt.faulty_code))
    feedback = "## Execution feedback\n" + prompt.feedback.strip()
    if prompt.other_failures:
        feedback += "\nAlso failing: " + ", ".join(prompt.other_failures)
    parts.append(feedback)
    if prompt.note:
        parts.append(prompt.note)
    parts.append(
        f"Rewrite {names} so that every test passes. Keep the names and signatures. Reply with "
        "only one ```python block holding the complete corrected function(s)."
    )
    return [
        ChatMessage("system", SYSTEM_PROMPT),
        ChatMessage("user", "\n\n".join(parts)),
    ]


def answer_prefix(faulty_code: str) -> str:
    """The start of the answer: the fence, then the first function's header and docstring.

    Continuing from the signature keeps a small model on the function (no tests, no stubs of
    the module context) and spares it re-typing the docstring.
    """
    fence = "```python\n"
    code = textwrap.dedent(faulty_code)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return fence
    first = tree.body[0] if tree.body else None
    if not isinstance(first, ast.FunctionDef | ast.AsyncFunctionDef) or not first.body:
        return fence
    body = first.body
    if ast.get_docstring(first, clean=False) is not None and len(body) > 1:
        end = body[0].end_lineno or body[0].lineno  # keep the docstring
    else:
        end = body[0].lineno - 1  # the header only
    if end < first.lineno:  # one-line function: `def f(x): return x`
        return fence
    lines = code.splitlines(keepends=True)
    return fence + "".join(lines[:end])


def copy_continuation(faulty_code: str) -> str:
    """What follows `answer_prefix(faulty_code)` in an answer that copies the code unchanged."""
    code = textwrap.dedent(faulty_code).rstrip() + "\n"
    start = answer_prefix(faulty_code).removeprefix("```python\n")
    return code.removeprefix(start) + "```"


def _comment(text: str) -> str:
    return "\n".join("# " + line if line else "#" for line in text.rstrip().splitlines())


# The SEEDS/CYCLE markers for base models; the faulty code and feedback are comment lines.
BAD_SOLUTION_MARKER = "### Bad Solution:\n"
FAILURE_MARKER = "### Execution Failure:\n"
GOOD_SOLUTION_MARKER = "### Good solution:\n"


@dataclass(frozen=True)
class MarkerPrompt:
    text: str
    # Character spans [start, end) of the faulty code and the feedback: what the Past Generation
    # Mask may hide. Never the description (docstrings, description lines) nor a marker line.
    past_generation_spans: tuple[tuple[int, int], ...]


def build_marker_prompt(description: str, faulty_code: str, feedback: str) -> MarkerPrompt:
    """The CYCLE base-model layout: description, bad solution and failure as comments, then the ask."""
    head = description.rstrip() + "\n" + BAD_SOLUTION_MARKER
    code = _comment(faulty_code)
    failure = FAILURE_MARKER + _comment(feedback)
    text = head + code + "\n" + failure + "\n" + GOOD_SOLUTION_MARKER
    docstrings = docstring_lines(faulty_code)
    spans: list[tuple[int, int]] = []
    at = len(head)
    for number, line in enumerate(code.split("\n")):
        if number not in docstrings and line:
            spans.append((at, at + len(line)))
        at += len(line) + 1
    feedback_at = len(head) + len(code) + 1 + len(FAILURE_MARKER)
    spans.append((feedback_at, len(head) + len(code) + 1 + len(failure)))
    spans = merged_spans(text, spans, "\n")
    spans = spans_without(spans, description_holes(text, spans, description))
    return MarkerPrompt(text, tuple(spans))


Spans = list[tuple[int, int]]


def docstring_lines(code: str) -> frozenset[int]:
    """0-based numbers of the lines of `code` that hold a module, class or function docstring."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return frozenset()
    numbers: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and ast.get_docstring(node, clean=False) is not None
        ):
            first = node.body[0]
            numbers.update(range(first.lineno - 1, first.end_lineno or first.lineno))
    return frozenset(numbers)


def merged_spans(text: str, spans: Sequence[tuple[int, int]], joiners: str) -> Spans:
    """Sorted spans, non-empty, joined where only characters of `joiners` lie between them."""
    result: Spans = []
    for start, end in sorted(span for span in spans if span[1] > span[0]):
        if result and all(c in joiners for c in text[result[-1][1] : start]):
            result[-1] = (result[-1][0], max(result[-1][1], end))
        else:
            result.append((start, end))
    return result


def description_holes(text: str, spans: Sequence[tuple[int, int]], description: str) -> Spans:
    """Where a line of the description occurs inside `spans` (e.g. inside a docstring)."""
    holes: Spans = []
    for intent in {line.strip() for line in description.splitlines()} - {""}:
        for start, end in spans:
            at = text.find(intent, start, end)
            while at >= 0:
                holes.append((at, at + len(intent)))
                at = text.find(intent, at + len(intent), end)
    return holes


def spans_without(spans: Sequence[tuple[int, int]], holes: Sequence[tuple[int, int]]) -> Spans:
    """The parts of `spans` outside every hole, in order; empty parts dropped."""
    result: Spans = []
    for start, end in spans:
        cursor = start
        for hole_start, hole_end in sorted(holes):
            if hole_end <= cursor or hole_start >= end:
                continue
            if hole_start > cursor:
                result.append((cursor, hole_start))
            cursor = max(cursor, hole_end)
        if cursor < end:
            result.append((cursor, end))
    return result


def other_failure_names(
    nodeids: Sequence[str], primary: str | None, limit: int = 5
) -> tuple[str, ...]:
    names = [n.split("::")[-1] for n in nodeids if n != primary]
    return tuple(names[:limit])
