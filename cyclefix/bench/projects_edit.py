"""The smallest text edit of a shipped line that makes the same mutant as bench.mutate's.

bench.mutate re-renders the mutated expression with ast.unparse, so the line with the bug can
differ from the shipped one in more than the bug: quotes (`"ts"` -> `'ts'`), a lost raw-string
prefix, added parentheses. A real typo changes one token and nothing else, and a line whose
style differs from its neighbours tells a model where to look. So, before a mutant is kept,
its line is rebuilt from the shipped line by one small edit (an operator or keyword token
replaced or removed, a number changed, a substring replaced as the mutation describes, two
call arguments swapped) and the first edit whose function parses to the very same tree as the
mutant's is used; when none does, the mutant's own line stays.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from collections.abc import Iterator

_OPERATORS = ("<", "<=", ">", ">=", "==", "!=", "+", "-", "*", "/", "//", "%", "**",
              "+=", "-=", "*=", "/=", "//=", "%=", "**=")  # fmt: skip
_KEYWORDS = ("and", "or", "is", "is not", "in", "not in")
_BECAME = re.compile(r"`([^`]+)` became `([^`]+)`")
_RETURNS = re.compile(r"returns `([^`]+)` instead of `([^`]+)`")


def _tokens(line: str) -> list[tokenize.TokenInfo]:
    """The line's tokens, also when it is part of a longer statement (brackets left open)."""
    found: list[tokenize.TokenInfo] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(line.strip("\n") + "\n").readline):
            found.append(token)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return [t for t in found if t.start[0] == 1 and t.end[0] == 1]


def _token_edits(line: str) -> Iterator[str]:
    tokens = _tokens(line)
    for i, token in enumerate(tokens):
        start, end = token.start[1], token.end[1]
        if token.type == tokenize.OP and token.string in _OPERATORS:
            for other in _OPERATORS:
                if other != token.string:
                    yield line[:start] + other + line[end:]
        elif token.type == tokenize.NAME and token.string in ("and", "or", "is", "in", "not"):
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            pair = nxt is not None and f"{token.string} {nxt.string}" in ("is not", "not in")
            stop = nxt.end[1] if pair and nxt is not None else end
            for other in _KEYWORDS:
                yield line[:start] + other + line[stop:]
            if token.string == "not":  # a removed `not`, with the space after it
                yield line[:start] + line[end:].lstrip(" ")
        elif token.type == tokenize.NUMBER:
            try:
                value = int(token.string)
            except ValueError:
                continue
            for near in (value - 1, value + 1):
                yield line[:start] + str(near) + line[end:]


def _described_edits(line: str, description: str) -> Iterator[str]:
    pairs = _BECAME.findall(description)
    pairs += [(f"return {old}", f"return {new}") for new, old in _RETURNS.findall(description)]
    for old, new in pairs:
        for match in re.finditer(re.escape(old), line):
            yield line[: match.start()] + new + line[match.end() :]
    if "returns the negation" in description:
        head, sep, value = line.partition("return ")
        if sep:
            if value.startswith("not "):
                yield head + sep + value[4:]
            yield head + sep + "not " + value
            yield head + sep + "not (" + value + ")"


def _swapped_arguments(function: str, offset: int, line: str) -> Iterator[str]:
    """The line with the two arguments of a call on it swapped, their text kept."""
    dedented = textwrap.dedent(function)
    try:
        tree = ast.parse(dedented)
    except SyntaxError:
        return
    # Columns in the dedented tree, plus the indentation dedent took off this line.
    shift = len(line) - len(dedented.splitlines()[offset - 1])
    raw = line.encode("utf-8")
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and len(node.args) == 2):
            continue
        first, second = node.args
        if not all(a.lineno == offset == a.end_lineno for a in node.args):
            continue
        a0, a1 = first.col_offset + shift, (first.end_col_offset or 0) + shift
        b0, b1 = second.col_offset + shift, (second.end_col_offset or 0) + shift
        if 0 <= a0 <= a1 <= b0 <= b1 <= len(raw):
            swapped = raw[:a0] + raw[b0:b1] + raw[a1:b0] + raw[a0:a1] + raw[b1:]
            yield swapped.decode("utf-8", errors="replace")


def _shape(function: str) -> str | None:
    try:
        return ast.dump(ast.parse(textwrap.dedent(function)))
    except SyntaxError:
        return None


def smallest_edit(function: str, offset: int, mutated: str, description: str) -> str:
    """A line for 1-based line `offset` of `function` making the same tree as `mutated` there.

    `function` is the shipped source of the function (as in the file, indented); the result is
    `mutated` itself when no smaller edit of the shipped line gives the same program.
    """
    lines = function.splitlines(keepends=True)
    original = lines[offset - 1].rstrip("\r\n")
    ending = lines[offset - 1][len(original) :]

    def with_line(text: str) -> str:
        return "".join([*lines[: offset - 1], text + ending, *lines[offset:]])

    wanted = _shape(with_line(mutated))
    if wanted is None:
        return mutated
    tried: set[str] = set()
    edits = [
        *_token_edits(original),
        *_described_edits(original, description),
        *_swapped_arguments(function, offset, original),
    ]
    for candidate in sorted(edits, key=lambda e: abs(len(e) - len(original))):
        if candidate in tried or candidate == original:
            continue
        tried.add(candidate)
        if _shape(with_line(candidate)) == wanted:
            return candidate
    return mutated
