"""A verified fix as changes to the user's files: the diff, and the functions it rewrites."""

from __future__ import annotations

import ast
import difflib
import re
from pathlib import Path

from cyclefix.refine.source import function_spans, project_file, span_text, target_for_span
from cyclefix.refine.types import FileChange, Target


def file_change(root: Path, rel: str, original: str, fixed: str) -> FileChange:
    """The change of one file, with the functions it rewrites as they stand in `original`."""
    diff = unified_diff(rel, original, fixed)
    path = project_file(root, rel)
    return FileChange(path, original, fixed, diff, rewritten_functions(rel, original, fixed))


def rewritten_functions(rel: str, original: str, fixed: str) -> tuple[Target, ...]:
    """The functions of `original` whose text `fixed` changes, in file order, with their lines
    in `original` (the user's file); functions the fix adds or removes have none there."""
    try:
        before, after = ast.parse(original), ast.parse(fixed)
    except SyntaxError:
        return ()
    new_text = {s.qualname: span_text(fixed, s) for s in function_spans(after)}
    return tuple(
        target_for_span(rel, original, span)
        for span in function_spans(before)
        if span.qualname in new_text and new_text[span.qualname] != span_text(original, span)
    )


# A line as `patch` and `git apply` read one: up to "\n" only (str.splitlines also breaks at a
# form feed, a lone carriage return or U+2028, which would run lines of the diff together).
_LINE = re.compile(r"[^\n]*\n|[^\n]+$")


def unified_diff(rel: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(
        _LINE.findall(before), _LINE.findall(after), f"a/{rel}", f"b/{rel}"
    )
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
