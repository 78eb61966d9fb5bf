"""Branching a copied answer where the model was least sure of it.

A small model asked to fix code it is shown often writes the same code back. Its token choices
while copying tell where it hesitated: there the feedback pulled it away from the copy. Taking
the runner-up token at the least sure points gives new candidates that cost only the rest of
the answer to generate (the prompt and the shared start stay in llama.cpp's cache).

The same forks, scored on the faulty code itself before anything is sampled (one batch, at
prompt speed), tell how likely the model is to copy; a likely copy is then never generated.
Scored with every token the sampler could take there, they also let an attempt that must be a
new implementation be drawn as sampling would draw it, given that it writes no copy back.

A fork is only worth taking where it can lead to code not written yet: not inside a comment,
not onto the same text in other tokens, spacing, quotes or brackets, not onto an answer
already seen.
"""

from __future__ import annotations

import ast
import keyword
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cyclefix.models.backend import Fork, sampling_chances

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


_INNER_SPACE = re.compile(r"(?<=\S)[ \t]+")


def _spelled_alike(line: str) -> str:
    """A line without its spacing after the indentation, with one kind of quote."""
    return _INNER_SPACE.sub("", line).replace('"', "'")


def _brackets_the_rest(tail: str, line: str) -> bool:
    """Whether `tail` opens a bracket where `line` has none and, closed at the line's end, the
    line means the same (`return (a, b)` for `return a, b`)."""
    head = tail.removesuffix("(").rstrip(" \t")
    if head == tail or not line.startswith(head):
        return False
    rest = line[len(head) :].lstrip(" \t")
    # The bracket closes before a trailing comment; a `#` inside a string is tried and fails.
    ends = [len(rest)] + [i for i, char in enumerate(rest) if char == "#"]
    return any(
        rest[:end].strip() and _same_statement(f"{head} ({rest[:end].rstrip()})", line)
        for end in ends
    )


def _same_statement(a: str, b: str) -> bool:
    def tree(line: str) -> str:
        code = line.strip()
        return ast.dump(ast.parse(code + " pass" if code.endswith(":") else code))

    try:
        return tree(a) == tree(b)
    except SyntaxError:
        return False


def _rejoins_at(known: str, at: int, tail: str) -> bool:
    """Whether an answer that reads `known` up to `at` (a line's start), then `tail`, most
    likely goes on as `known` does (both without comment lines)."""
    tail = _without_comment_lines(tail)
    if known.startswith(tail, at):
        return True  # even inside a name: ` heap` of ` heappush` goes on as `push`
    if "\n" not in tail:
        line_end = known.find("\n", at)
        line = known[at : line_end if line_end >= 0 else len(known)]
        # Other spacing or quotes inside the line (`x+1` for `x + 1`): the same program.
        if not _ends_inside_a_name(tail) and _spelled_alike(line).startswith(_spelled_alike(tail)):
            return True
        if _brackets_the_rest(tail, line):
            return True
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

    So it does when `branch` is `known` up to any point (`sum(` of `sum(int(d)`; ` heap` of
    ` heappush`: measured on MBPP, such branches mostly came back as copies), the same line
    with other spacing or quotes, or with brackets around the rest of it, or `known` up to a
    line's code, its trailing comment dropped, then a line break. Comment lines do not count.
    """
    return bool(branch) and _rejoins_at(_without_comment_lines(known), 0, branch)


def _leads_back(code: _CodeLines, text: str, offset: int, alternative: str) -> bool:
    # A comment or a docstring in front of the same code is still a copy; so is other spacing
    # inside a line (at a line's start, spacing is indentation: another block), another word
    # inside a comment, or the same text in other tokens; a closing fence cuts the function short.
    line_start = text.rfind("\n", 0, offset) + 1
    if not alternative.strip():
        if offset > line_start:
            return True
    else:
        start = alternative.lstrip(" \t")
        if start.startswith(("#", '"""', "'''")) or "```" in alternative:
            return True
    if _in_comment(text[line_start:offset]):
        return True
    at = code.line_at.get(line_start)
    tail = text[line_start:offset] + alternative
    return at is not None and _rejoins_at(code.text, at, tail)


class _SeenAnswers:
    """Answers already written, against which a branch of `text` is checked."""

    def __init__(self, code: _CodeLines, seen: Sequence[str]) -> None:
        self.code = code
        self.known = [_CodeLines(answer).text for answer in seen]
        # How far each seen answer reads as this one: a fork before that point may rejoin it.
        self.shared = [_shared_length(code.text, k) for k in self.known]

    def rejoined(self, text: str, offset: int, alternative: str) -> bool:
        """Whether `text` up to `offset`, then `alternative`, most likely goes on as one of the
        seen answers does."""
        line_start = text.rfind("\n", 0, offset) + 1
        at = self.code.line_at.get(line_start, -1)
        tail = text[line_start:offset] + alternative
        return any(
            0 <= at <= n and _rejoins_at(k, at, tail)
            for k, n in zip(self.known, self.shared, strict=True)
        )


class _Branching:
    """What each token at a fork of a copied answer does: keeps to the copy or leads back to
    it ("back"), heads to an answer already seen ("seen"), or leaves for new code ("out")."""

    def __init__(self, text: str, code_start: int, seen: Sequence[str]) -> None:
        self.text = text
        self.code = _CodeLines(text)
        self.answers = _SeenAnswers(self.code, seen)
        end = text.find(_FENCE, code_start)
        self.code_span = (code_start, end if end >= 0 else len(text))

    def in_code(self, forks: Sequence[Fork]) -> list[Fork]:
        """The forks inside the answer's code (after its start, before the closing fence)."""
        start, end = self.code_span
        return [f for f in forks if start <= f.offset < end]

    def way(self, fork: Fork, token: str) -> Literal["back", "seen", "out"]:
        if _leads_back(self.code, self.text, fork.offset, token):
            return "back"
        if self.answers.rejoined(self.text, fork.offset, token):
            return "seen"
        return "out"


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
    then a token the model nearly chose there (any of its choices when they were all scored)
    that neither leads back to the copy nor heads to a `seen` answer."""
    branching = _Branching(text, code_start, seen)
    departures = [  # (the choice's gap below the chosen token, prefix)
        (-choice.gap, text[: fork.offset] + choice.text)
        for fork in branching.in_code(forks)
        for choice in fork.known_choices
        if choice.text and branching.way(fork, choice.text) == "out"
    ]
    prefixes: list[str] = []
    for _, prefix in sorted(departures, key=lambda d: d[0]):
        if prefix not in prefixes:
            prefixes.append(prefix)
            if len(prefixes) == limit:
                break
    return tuple(prefixes)


@dataclass(frozen=True)
class _Departure:
    """One token of a copy's code as sampling sees it."""

    offset: int
    stay: float  # the chance of a token that keeps to the copy (or leads back to it)
    # Tokens that leave it for code not seen yet, with their chances.
    ways: tuple[str, ...]
    chances: tuple[float, ...]


def _departures(
    text: str,
    forks: Sequence[Fork],
    code_start: int,
    temperature: float,
    top_p: float,
    seen: Sequence[str] = (),
) -> list[_Departure]:
    """Per fork inside the answer's code, the sampler's chances of keeping to the copy there
    and of leaving it; a token back to a `seen` answer, or one with no text, does neither."""
    branching = _Branching(text, code_start, seen)
    departures: list[_Departure] = []
    for fork in branching.in_code(forks):
        stay, chances = sampling_chances(fork, temperature, top_p)
        ways: list[str] = []
        way_chances: list[float] = []
        for choice, chance in zip(fork.known_choices, chances, strict=True):
            if chance <= 0 or not choice.text:
                continue
            way = branching.way(fork, choice.text)
            if way == "back":
                stay += chance
            elif way == "out":
                ways.append(choice.text)
                way_chances.append(chance)
        departures.append(_Departure(fork.offset, stay, tuple(ways), tuple(way_chances)))
    return departures


def copy_probability(
    text: str, forks: Sequence[Fork], code_start: int, temperature: float, top_p: float
) -> float:
    """The chance that sampling writes the code of `text` (an answer scored with its forks)
    again: at each token of its code, a token that keeps to it or leads back to it."""
    return math.prod(d.stay for d in _departures(text, forks, code_start, temperature, top_p))


def sampled_branches(
    text: str,
    forks: Sequence[Fork],
    code_start: int,
    temperature: float,
    top_p: float,
    limit: int,
    rng: random.Random,
    seen: Sequence[str] = (),
) -> tuple[str, ...]:
    """Up to `limit` answer prefixes, each the copy `text` up to where a sample leaves it, then
    the token it leaves by, drawn as sampling would given that it does not write `text` (or a
    `seen` answer) back: a token's weight is the chance of reaching it on the copy times the
    chance of leaving there. The answer continued from one is a sample that is not a copy."""
    departures = _departures(text, forks, code_start, temperature, top_p, seen)
    weights: list[float] = []
    reach = 1.0
    for d in departures:
        weights.append(reach * sum(d.chances))
        reach *= d.stay
    prefixes: list[str] = []
    if sum(weights) <= 0:
        return ()
    for _ in range(4 * limit):  # draws may repeat; a few more give distinct ones
        d = rng.choices(departures, weights)[0]
        prefix = text[: d.offset] + rng.choices(d.ways, d.chances)[0]
        if prefix not in prefixes:
            prefixes.append(prefix)
            if len(prefixes) == limit:
                break
    return tuple(prefixes)


# Characters a branch may run past the copy it left: the token taken at the fork.
_BRANCH_TOKEN_CHARS = 32
# Of the two lines that show a continued branch back on its copy, one has at least these
# many characters that are not spaces: `else:` then `)` could be any code's.
_RESUMED_LINE_CHARS = 8


def branched_from(branch: str, copies: Sequence[str]) -> str | None:
    """The copy among `copies` that `branch` (a copy up to a fork, then the token taken
    there) left; None when none of them reads as `branch` up to its last token."""
    if not copies:
        return None
    known = max(copies, key=lambda copy: _shared_length(branch, copy))
    return known if len(branch) - _shared_length(branch, known) <= _BRANCH_TOKEN_CHARS else None


class CopyResumed:
    """Watches an answer continued from `branch`, a branch of the copied answer `known`:
    once its last two lines are two lines in a row of `known` after the line the branch left
    it on, the edit is done and the model would most likely copy the rest. `completed` is
    then the answer with the rest of `known` after them, where the model's own would be.

    A fork is a local edit of the copy, so its answer is mostly the copy again: the rest of
    a long function costs seconds to generate and adds nothing."""

    def __init__(self, branch: str, known: str) -> None:
        self.branch = branch
        self.line_start = known.rfind("\n", 0, _shared_length(branch, known)) + 1
        # The copy's lines from the one the branch left it on.
        self.known_lines = known[self.line_start :].split("\n")
        self.completed: str | None = None
        self._lines_checked = 0

    def __call__(self, text: str) -> bool:
        """Whether `text` (the answer so far) has come back to the copy; sets `completed`.
        An answer that does not continue the branch (a backend that answers from scratch)
        never has."""
        if not text.startswith(self.branch):
            return False
        lines = text[self.line_start :].split("\n")[:-1]  # complete lines, the fork's first
        if len(lines) == self._lines_checked:
            return False
        self._lines_checked = len(lines)
        # The fork's line, then at least two more: the last two may be the copy's again.
        if len(lines) < 3:
            return False
        last_two = [line.rstrip() for line in lines[-2:]]
        if max(len(line.replace(" ", "")) for line in last_two) < _RESUMED_LINE_CHARS:
            return False
        known = [line.rstrip() for line in self.known_lines]
        matches = [j for j in range(1, len(known)) if known[j - 1 : j + 1] == last_two]
        if not matches:
            return False
        # Lines in place of lines (the fork's own line changed) unless inserted or dropped.
        j = min(matches, key=lambda j: abs(j - (len(lines) - 1)))
        rest = "\n".join(self.known_lines[j + 1 :])
        self.completed = text[: self.line_start] + "\n".join(lines) + "\n" + rest
        return True
