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
# Then, in a function the answer changed in three places or more, its changes but one (a
# variable one change adds and another uses), dropping the largest first.
MAX_ALL_BUT_ONE = 2
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


def _applied_together(hunks: list[_Hunk]) -> str | None:
    """The function holding `hunks` (one file's, one function's) with all of them applied."""
    old, new = hunks[0].old, hunks[0].new
    lines: list[str] = []
    first = last = 0
    at = 0
    for n, hunk in enumerate(sorted(hunks, key=lambda h: h.i1)):
        lines.extend(old[at : hunk.i1])
        start = len(lines)
        lines.extend(new[hunk.j1 : hunk.j2])
        at = hunk.i2
        span = _span(start, hunk.j2 - hunk.j1)
        first = span[0] if n == 0 else first
        last = span[1]
    lines.extend(old[at:])
    return _enclosing_function(lines, first, last)


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
    text), smallest first, then a function's hunks but one where it has three or more; none
    when the change is one hunk or a rewrite of many."""
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
    # The hunks of each function, keyed by its path and text before the answer.
    functions: dict[tuple[str, str], list[_Hunk]] = {}
    for hunk in hunks:
        part = _enclosing_function(hunk.applied(), *_span(hunk.i1, hunk.j2 - hunk.j1))
        before = _enclosing_function(hunk.old, *_span(hunk.i1, hunk.i2 - hunk.i1))
        if part is None or before is None or not _same_behaviour(part, before):
            changes.append((hunk, part))
            if part is not None and before is not None:
                functions.setdefault((hunk.path, before), []).append(hunk)
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
    all_but_one: list[str] = []
    for together in functions.values():
        if len(together) < 3:
            continue
        for dropped in sorted(together, key=lambda h: -h.size):
            rest = _applied_together([h for h in together if h is not dropped])
            if rest is not None and rest not in answers and rest not in all_but_one:
                all_but_one.append(rest)
    answers.extend(all_but_one[:MAX_ALL_BUT_ONE])
    prefix = "".join(dict.fromkeys(imports))
    return [prefix + answer if prefix else answer for answer in answers]
