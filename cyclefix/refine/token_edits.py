"""Token edits: the model's own alternatives at the suspicious lines, tried without generating.

A one-token bug (`split("%")[1]` for `[0]`, `>` for `>=`, `is not None` for `is None`) sits
on a line the traced run singles out (refine.suspicious_lines), and the model, scoring the
faulty code as its answer under the failing test's feedback (refine.copies), often rates the
right token among its alternatives there, yet seldom writes it: sampling keeps to the copy, and
a fork continues from the least sure token of the whole function, elsewhere. Replacing one
token of a suspicious line by one of the model's alternatives (or putting it in front, or in
place of two tokens) gives a whole candidate at no generation cost; the tests judge it like any
other. The likeliest alternatives go first (AlphaRepair's idea, on the model at hand).
"""

from __future__ import annotations

import ast
import builtins
import textwrap
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cyclefix.models.backend import Fork
from cyclefix.refine.guard import IMPORTED_CALLABLES
from cyclefix.refine.source import normalized_code
from cyclefix.refine.types import EditLine

# Candidates a round tries at the least (a test run each: 1-4 s on a real library's failing
# tests, well under one answer's prompt read) ...
EDITS_PER_ROUND = 4
# ... and at the most, while the fix's edits have taken under EDIT_SHARE of its time budget:
# the fix may be ten or more edits down (webcolors' `[0]`, 6 logits under `[1]`).
MAX_EDITS_PER_ROUND = 16
EDIT_SHARE = 1 / 3
# Logits below the chosen token's, added to an edit's gap by how many tokens of the copy it
# replaces: one in its place is most often the fix; one in front of it (0), or in place of two,
# less; three or four only where the choice is the last of them (it deletes the ones before:
# `[n + 1]` to `[n]`).
REACH_PENALTY = {1: 0.0, 0: 1.0, 2: 1.0, 3: 2.0, 4: 2.5}
FENCE = "```python\n"
# Operators no function, class or module supports (`|` joins types, `%` formats strings).
_ARITHMETIC = (
    ast.Add, ast.Sub, ast.Mult, ast.MatMult, ast.Div, ast.FloorDiv, ast.Pow,
    ast.LShift, ast.RShift, ast.BitAnd, ast.BitXor,
)  # fmt: skip
_SIGNS = (ast.USub, ast.UAdd, ast.Invert)


@dataclass(frozen=True)
class TokenEdit:
    code: str  # the whole code of the answer with the edit made
    gap: float  # logits below the token the copy chose there, reach and line penalties included
    line: str  # the edited line, as the copy had it


def line_spans(text: str, lines: Iterable[str]) -> list[tuple[int, int]]:
    """Where in `text` the lines whose stripped text is in `lines` lie (start, end of text)."""
    wanted = {line.strip() for line in lines} - {""}
    spans: list[tuple[int, int]] = []
    at = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped in wanted:
            start = at + len(line) - len(line.lstrip())
            spans.append((start, start + len(stripped)))
        at += len(line)
    return spans


def scored_until(text: str, lines: Iterable[str]) -> int:
    """Characters of `text` that scoring must cover to reach the end of every one of `lines`."""
    return max((end for _, end in line_spans(text, lines)), default=0)


def token_edits(
    text: str,
    forks: Sequence[Fork],
    lines: Sequence[EditLine],
    seen: Iterable[str] = (),
    limit: int | None = None,
) -> list[TokenEdit]:
    """The edits of `text` (a fenced answer that copies the code, scored token by token into
    `forks`: one per token, in order) at the tokens of `lines`, likeliest first, `limit` at
    most: each of the model's choices at such a token in its place, in front of it, in place
    of it and the next, or in place of three or four when it is the last. Only edits inside
    one line that parse, change the code, and are not among `seen` codes."""
    spans = line_spans(text, [line.text for line in lines])
    if not spans or not text.startswith(FENCE):
        return []
    original = fenced_code(text)
    if original is None:
        return []
    refused = {normalized_code(original), *(normalized_code(code) for code in seen)}
    offsets = [fork.offset for fork in forks]
    penalty_of = {line.text.strip(): line.penalty for line in lines}
    # Every edit with its gap first (cheap), then parsed likeliest first until `limit` hold:
    # thousands of them (40 choices a token) would each parse the whole function.
    ranked: list[tuple[float, int, int, str]] = []  # (gap, token, tokens replaced, choice)
    for i, fork in enumerate(forks[:-1]):
        span = next(((s, e) for s, e in spans if s <= fork.offset < e), None)
        if span is None:
            continue
        line_penalty = penalty_of.get(text[span[0] : span[1]], 0.0)
        for choice in fork.known_choices:
            # A comment would only cut the line short; a fence or a line break is no token edit.
            if not choice.text.strip() or choice.text.lstrip().startswith("#"):
                continue
            if "\n" in choice.text or "`" in choice.text:
                continue
            for reach, penalty in REACH_PENALTY.items():
                if i + reach >= len(offsets):
                    continue
                if "\n" in text[fork.offset : offsets[i + reach]]:
                    continue  # an edit stays inside its line
                if reach >= 3 and text[offsets[i + reach - 1] : offsets[i + reach]] != choice.text:
                    continue
                ranked.append((choice.gap - penalty - line_penalty, i, reach, choice.text))
    found: dict[str, TokenEdit] = {}
    misused = callables_as_operands(original)
    for gap, i, reach, choice_text in sorted(ranked, key=lambda edit: -edit[0]):
        if limit is not None and len(found) >= limit:
            break
        at = offsets[i]
        code = fenced_code(text[:at] + choice_text + text[offsets[i + reach] :])
        key = normalized_code(code) if code is not None else None
        if code is None or key is None or key in refused or key in found:
            continue
        if not callables_as_operands(code) <= misused:
            continue  # `round * percent`: the model meant `round(`, the tests would only say so
        line = next(text[start:end] for start, end in spans if start <= at < end)
        found[key] = TokenEdit(code, gap, line)
    return list(found.values())


def callables_as_operands(code: str) -> set[str]:
    """Names of builtin functions and classes, or of the standard-library names the guard
    imports, that `code` uses as an operand of arithmetic (a TypeError wherever it runs),
    unless `code` binds them itself."""
    tree = ast.parse(textwrap.dedent(code))
    bound: set[str] = set()
    operands: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add(node.asname or node.name.partition(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, _ARITHMETIC):
            operands += (node.left, node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, _SIGNS):
            operands.append(node.operand)
    return {
        n.id
        for n in operands
        if isinstance(n, ast.Name)
        and n.id not in bound
        and (n.id in IMPORTED_CALLABLES or callable(getattr(builtins, n.id, None)))
    }


def fenced_code(answer: str) -> str | None:
    """The code of a fenced answer when it parses; None otherwise."""
    body = answer.removeprefix(FENCE)
    end = body.rfind("```")
    code = body[:end] if end >= 0 else body
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # `"\("`: an edit's string escapes are its own
            ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return None
    return code
