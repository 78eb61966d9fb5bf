"""Long docstrings shown cut, and put back whole in the fix.

A real library's public function may carry hundreds of lines of docstring (tabulate's
`tabulate`: 776 lines, 600 of them docstring, about 8,000 tokens): its prompt fits no small
model's window even when everything else is left out, and the run ends with nothing tried.
Cut to its opening paragraph, the function fits; the intent's gist stays, the examples go.
An answer writes the cut docstring back (its opening is the cut code's), so the fix puts the
whole docstring back in its place before it is spliced: the user's file never loses it.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Sequence

# A docstring of more lines than this is cut ...
LONG_DOCSTRING = 12
# ... to at most this many lines of its opening paragraph, then a line saying what was cut.
KEPT_LINES = 4
# (the cut docstring's lines, the whole docstring's lines) as the code shown has them.
Cut = tuple[str, str]


def cut_docstrings(code: str) -> tuple[str, tuple[Cut, ...]]:
    """`code` with every docstring of over LONG_DOCSTRING lines cut to its opening paragraph,
    and what each cut replaced; `code` as it is when none is that long or it does not parse."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return code, ()
    lines = code.splitlines(keepends=True)
    cuts: list[tuple[int, int, str]] = []  # (first line, last line, cut text), 1-based
    for start, end in _docstring_spans(tree):
        if end - start + 1 > LONG_DOCSTRING:
            cuts.append((start, end, _cut(lines[start - 1 : end])))
    if not cuts:
        return code, ()
    made: list[Cut] = []
    for start, end, text in sorted(cuts, reverse=True):
        made.append((text, "".join(lines[start - 1 : end])))
        lines[start - 1 : end] = [text]
    result = "".join(lines)
    try:  # a docstring of implicitly joined strings in parentheses is no opening and quotes
        ast.parse(textwrap.dedent(result))
    except SyntaxError:
        return code, ()
    return result, tuple(reversed(made))


def _cut(docstring: list[str]) -> str:
    """The docstring statement's opening paragraph (KEPT_LINES at most), a line naming what
    was left out, and its closing quotes, with the statement's own quotes and indentation."""
    opening = docstring[0]
    indent = opening[: len(opening) - len(opening.lstrip())]
    stripped = opening.strip()
    quote = next((q for q in ('"""', "'''") if q in stripped), '"""')
    kept = [opening.rstrip("\n")]
    for line in docstring[1:-1]:
        if not line.strip() or len(kept) >= KEPT_LINES:
            break
        kept.append(line.rstrip("\n"))
    left = len(docstring) - len(kept) - 1  # the closing quotes stay
    note = f"{indent}(... {left} more lines of this docstring not shown ...)"
    return "\n".join([*kept, note, indent + quote]) + "\n"


def with_cuts(code: str, cuts: Sequence[Cut]) -> str:
    """`code` (the code the cuts were made from, or code holding the same docstrings) with
    each whole docstring replaced by its cut."""
    for text, whole in cuts:
        code = code.replace(whole, text)
    return code


def restored(code: str, cuts: Sequence[Cut]) -> str:
    """`code` (an answer, dedented or not) with each docstring that holds a cut's note line, or
    opens as a cut does, replaced by that cut's whole docstring at the answer's indentation:
    the model never read the rest, so no answer may drop it (even one that reworded the
    opening)."""
    if not cuts:
        return code
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return code
    lines = code.splitlines(keepends=True)
    left = list(cuts)
    found: list[tuple[int, int, str]] = []  # (first line, last line, whole text), 1-based
    for start, end in _docstring_spans(tree):
        held = [line.strip() for line in lines[start - 1 : end]]
        cut = next((c for c in left if _note(c) in held), None)
        cut = cut or next((c for c in left if c[0].splitlines()[0].strip() == held[0]), None)
        if cut is None:
            continue
        left.remove(cut)
        text, whole = cut
        shown_indent, answer_indent = _indent(text), _indent(lines[start - 1])
        found.append(
            (
                start,
                end,
                "".join(
                    answer_indent + line.removeprefix(shown_indent) if line.strip() else "\n"
                    for line in whole.splitlines(keepends=True)
                ),
            )
        )
    for start, end, whole in sorted(found, reverse=True):
        lines[start - 1 : end] = [whole]
    return "".join(lines)


def _docstring_spans(tree: ast.Module) -> list[tuple[int, int]]:
    """The first and last lines of every docstring statement of a function or class."""
    spans = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        first = node.body[0] if node.body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
            and first.end_lineno is not None
        ):
            spans.append((first.lineno, first.end_lineno))
    return spans


def _note(cut: Cut) -> str:
    """The line of a cut that says what was left out."""
    return cut[0].splitlines()[-2].strip()


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]
