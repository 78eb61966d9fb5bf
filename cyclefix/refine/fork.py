"""Branching a copied answer where the model was least sure of it.

A small model asked to fix code it is shown often writes the same code back. Its token choices
while copying tell where it hesitated: there the feedback pulled it away from the copy. Taking
the runner-up token at the least sure points gives new candidates that cost only the rest of
the answer to generate (the prompt and the shared start stay in llama.cpp's cache).

The same forks, scored on the faulty code itself before anything is sampled (one batch, at
prompt speed), tell how likely the model is to copy; a likely copy is then never generated.

A fork is only worth taking where it can lead to code not written yet: not inside a comment,
not onto the same text in other tokens or spacing, not onto an answer already seen.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Sequence

from cyclefix.models.backend import Fork

_FENCE = "\n```"
_LINE = re.compile(r"[^\n]*\n|[^\n]+")


class _CodeLines:
    """An answer from its opening fence on, without its comment lines (they change no code),
    and where each line of the answer starts in that text."""

    def __init__(self, text: str) -> None:
        offset = max(text.find("```"), 0)  # the words before the code may differ
        kept: list[str] = []
        length = 0
        self.line_at: dict[int, int] = {}
        for line in _LINE.findall(text, offset):
            self.line_at[offset] = length
            if not _is_comment_line(line):
                kept.append(line)
                length += len(line)
            offset += len(line)
        self.line_at[offset] = length
        self.text = "".join(kept)


def _is_comment_line(line: str) -> bool:
    return line.lstrip().startswith("#")


def _without_comment_lines(text: str) -> str:
    return "".join(line for line in _LINE.findall(text) if not _is_comment_line(line))


def _in_comment(line: str) -> bool:
    """Whether the end of `line` (a line's start) lies inside a `#` comment."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            if char == quote and line[i - 1] != "\\":
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#":
            return True
    return False


def _ends_inside_a_name(text: str) -> bool:
    # `x` may still become `x_sorted` and `10` become `100`; a keyword is whole (`if`, not `iffy`).
    match = re.search(r"\w+$", text)
    return match is not None and not keyword.iskeyword(match.group())


def _rejoins_at(known: str, at: int, tail: str) -> bool:
    """Whether an answer that reads `known` up to `at` (a line's start), then `tail`, most
    likely goes on as `known` does (both without comment lines)."""
    tail = _without_comment_lines(tail)
    if known.startswith(tail, at):
        return not _ends_inside_a_name(tail)
    code = tail.rstrip(" \t\n")
    if not tail.endswith("\n") or not known.startswith(code, at):
        return False
    if not code:
        return True  # blank lines only
    end = at + len(code)
    line_end = known.find("\n", end)
    rest_of_line = known[end : line_end if line_end >= 0 else len(known)].strip()
    return not rest_of_line or rest_of_line.startswith("#")


def rejoins(branch: str, known: str) -> bool:
    """Whether an answer that continues `branch` most likely writes `known` again.

    So it does when `branch` is `known` up to a point outside a name (`sum(` of `sum(int(d)`;
    ` heap` of ` heappush` may still become ` heapify`), or `known` up to a line's code, its
    trailing comment dropped, then a line break (the same code with other spacing). Comment
    lines do not count.
    """
    return bool(branch) and _rejoins_at(_without_comment_lines(known), 0, branch)


def _leads_back_to_copy(code: _CodeLines, text: str, fork: Fork) -> bool:
    # A comment or a docstring in front of the same code is still a copy; so is other spacing
    # inside a line (at a line's start, spacing is indentation: another block), another word
    # inside a comment, or the same text in other tokens; a closing fence cuts the function short.
    alternative = fork.alternative
    line_start = text.rfind("\n", 0, fork.offset) + 1
    if not alternative.strip():
        if fork.offset > line_start:
            return True
    else:
        start = alternative.lstrip(" \t")
        if start.startswith(("#", '"""', "'''")) or "```" in alternative:
            return True
    if _in_comment(text[line_start : fork.offset]):
        return True
    at = code.line_at.get(line_start)
    tail = text[line_start : fork.offset] + alternative
    return at is not None and _rejoins_at(code.text, at, tail)


def _forks_in_code(
    text: str, code: _CodeLines, forks: Sequence[Fork], code_start: int
) -> list[Fork]:
    """The forks inside the answer's code (after `code_start`, before the closing fence) that
    lead to other code."""
    code_end = text.find(_FENCE, code_start)
    if code_end < 0:
        code_end = len(text)
    return [
        f
        for f in forks
        if code_start <= f.offset < code_end and not _leads_back_to_copy(code, text, f)
    ]


def _shared_length(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def branch_prefixes(
    text: str,
    forks: Sequence[Fork],
    code_start: int,
    limit: int,
    seen: Sequence[str] = (),
) -> tuple[str, ...]:
    """Up to `limit` answer prefixes, least sure first: the answer up to a fork inside its code,
    then the token the model nearly chose. None heads back to a `seen` answer."""
    code = _CodeLines(text)
    known = [_CodeLines(answer).text for answer in seen]
    # How far each seen answer reads as this one: a fork before that point may rejoin it.
    shared = [_shared_length(code.text, k) for k in known]
    prefixes: list[str] = []
    for fork in sorted(_forks_in_code(text, code, forks, code_start), key=lambda f: f.margin):
        prefix = text[: fork.offset] + fork.alternative
        line_start = text.rfind("\n", 0, fork.offset) + 1
        at = code.line_at.get(line_start, -1)
        tail = prefix[line_start:]
        if prefix not in prefixes and not any(
            0 <= at <= n and _rejoins_at(k, at, tail) for k, n in zip(known, shared, strict=True)
        ):
            prefixes.append(prefix)
        if len(prefixes) == limit:
            break
    return tuple(prefixes)


def copy_probability(
    text: str, forks: Sequence[Fork], code_start: int, temperature: float, top_p: float
) -> float:
    """The chance that sampling writes the code of `text` (an answer scored with its forks)
    token for token: at each fork in the code, the chosen token against the runner-up."""
    probability = 1.0
    for fork in _forks_in_code(text, _CodeLines(text), forks, code_start):
        if temperature <= 0:
            chosen = 1.0 if fork.margin > 0 else 0.0
        else:
            z = max(-50.0, min(50.0, fork.margin / temperature))
            chosen = 1.0 / (1.0 + math.exp(-z))
        # Top-p sampling drops the runner-up when the chosen token alone holds top_p.
        probability *= 1.0 if chosen >= top_p else chosen
    return probability
