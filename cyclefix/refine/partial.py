"""Parts of a failed answer, tried alone: the model often makes the right change and breaks
something beside it.

An answer that changed the code in several places (hunks of a line diff against the round's
code) and failed the tests may hold the fix in one of them: on toolz, an answer wrote the
shipped `signatures[func]` back in place of the injected `signatures[func + 1]` and also
rewrote the function's last line, and the tests refused the whole. Each hunk applied alone is
an answer of its own (the function holding it, with only that change, and the imports the
answer added), guarded and tested like any other but without generating: a test run costs a
second or two where an answer costs several.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher

from cyclefix.refine.source import normalized_code

# More hunks than this is a rewrite, not an edit with a change too many.
MAX_HUNKS = 6
# Parts of one answer tried, smallest change first.
MAX_PARTS = 4
# An old and a new line at least this alike (difflib's ratio) are one line changed.
ALIKE = 0.75
# A replaced block of more line pairs than this is not split further.
MAX_PAIRS = 400


@dataclass(frozen=True)
class _Hunk:
    path: str
    old: list[str]  # the file's lines before
    new: list[str]  # the candidate's lines
    i1: int
    i2: int
    j1: int
    j2: int

    def applied(self) -> list[str]:
        """The file's lines with only this hunk changed."""
        return [*self.old[: self.i1], *self.new[self.j1 : self.j2], *self.old[self.i2 :]]

    @property
    def size(self) -> int:
        return max(self.i2 - self.i1, self.j2 - self.j1)


def _split(
    old: list[str], new: list[str], i1: int, i2: int, j1: int, j2: int
) -> list[tuple[int, int, int, int]]:
    """A replaced block of lines as separate changes: the most alike pair of an old and a
    new line is a one-line change of its own, and the lines around it are split the same way
    (a fixed line next to a rewritten one are two changes, not one)."""
    if i1 == i2 and j1 == j2:
        return []
    if i1 == i2 or j1 == j2 or (i2 - i1) * (j2 - j1) > MAX_PAIRS:
        return [(i1, i2, j1, j2)]
    best, pair = ALIKE, (-1, -1)
    for i in range(i1, i2):
        for j in range(j1, j2):
            ratio = SequenceMatcher(None, old[i], new[j], autojunk=False).ratio()
            if ratio > best:
                best, pair = ratio, (i, j)
    i, j = pair
    if i < 0:
        return [(i1, i2, j1, j2)]
    middle = [(i, i + 1, j, j + 1)] if old[i] != new[j] else []
    return [*_split(old, new, i1, i, j1, j), *middle, *_split(old, new, i + 1, i2, j + 1, j2)]


def _is_comment(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


def _is_import(line: str) -> bool:
    return line.lstrip().startswith(("import ", "from ")) and not line.startswith((" ", "\t"))


def _enclosing_function(lines: list[str], first: int, last: int) -> str | None:
    """The dedented source of the function or method holding lines `first`..`last` (1-based)
    of the module `lines`, decorators included; None outside any, or when it does not parse."""
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        return None
    nodes: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            nodes.extend(node.body)
        else:
            nodes.append(node)
    for node in nodes:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        end = node.end_lineno or node.lineno
        if start <= first and last <= end:
            return textwrap.dedent("".join(lines[start - 1 : end]))
    return None


def _span(start: int, count: int) -> tuple[int, int]:
    """1-based first and last line of `count` lines from 0-based `start`; no lines count as
    the line above them."""
    if count == 0:
        return max(1, start), max(1, start)
    return start + 1, start + count


def _same_behaviour(a: str, b: str) -> bool:
    """Equal once comments, docstrings, layout and annotations are left out."""
    return _unannotated(a) == _unannotated(b)


def _unannotated(code: str) -> str:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return normalized_code(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.returns = None
        elif isinstance(node, ast.arg):
            node.annotation = None
    return normalized_code(ast.unparse(tree))


def partial_answers(base: Mapping[str, str], files: Mapping[str, str]) -> list[str]:
    """Answers holding one hunk each of the change from `base` to `files` (path -> module
    text), smallest first; none when the change is one hunk or a rewrite of many."""
    hunks: list[_Hunk] = []
    imports: list[str] = []
    for path in sorted(files):
        if path not in base:
            continue
        old = base[path].splitlines(keepends=True)
        new = files[path].splitlines(keepends=True)
        for tag, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
            if tag == "equal":
                continue
            added = new[j1:j2]
            if tag == "insert" and all(_is_import(line) or not line.strip() for line in added):
                imports.extend(line for line in added if line.strip())
                continue
            for a1, a2, b1, b2 in _split(old, new, i1, i2, j1, j2):
                # Comments and blank lines change nothing the tests can see.
                if not all(_is_comment(line) for line in (*old[a1:a2], *new[b1:b2])):
                    hunks.append(_Hunk(path, old, new, a1, a2, b1, b2))
    # Each hunk's function with only that hunk; a hunk that leaves it behaving as it did
    # (annotations, a docstring) is no change the tests can see.
    if len(hunks) > 2 * MAX_HUNKS:
        return []
    changes: list[tuple[_Hunk, str | None]] = []
    for hunk in hunks:
        part = _enclosing_function(hunk.applied(), *_span(hunk.i1, hunk.j2 - hunk.j1))
        before = _enclosing_function(hunk.old, *_span(hunk.i1, hunk.i2 - hunk.i1))
        if part is None or before is None or not _same_behaviour(part, before):
            changes.append((hunk, part))
    if not 2 <= len(changes) <= MAX_HUNKS:
        return []
    answers: list[str] = []
    # Only a change inside a function is an answer; one outside (a constant) is not offered.
    for _, part in sorted(changes, key=lambda c: c[0].size):
        if part is None or part in answers:
            continue
        answers.append(part)
        if len(answers) == MAX_PARTS:
            break
    prefix = "".join(dict.fromkeys(imports))
    return [prefix + answer if prefix else answer for answer in answers]
