"""Indentation: the model's answer put in the style of the user's file.

A tab-indented module (pathspec is one) shown to a small model comes back with tabs, spaces or
both; spliced as written, a method indented otherwise than its class does not parse.
"""

from __future__ import annotations

import io
import tokenize

# Columns one tab stands for in an answer: the model writes a tab for a level of four spaces.
TAB_COLUMNS = 4


def leading_whitespace(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def indents_with_tabs(source: str) -> bool:
    """Whether the module indents its code with tabs (its first indented block does)."""
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.INDENT:
                return token.string.startswith("\t")
    except (tokenize.TokenError, SyntaxError):
        pass
    return False


def conform_indentation(code: str, tabs: bool) -> str:
    """`code` indented with spaces (a tab counting TAB_COLUMNS), or with a tab for each
    TAB_COLUMNS spaces where `tabs`; lines inside multi-line strings stay as written."""
    lines = code.splitlines(keepends=True)
    spaced = [leading_whitespace(ln).expandtabs(TAB_COLUMNS) + ln.lstrip(" \t") for ln in lines]
    inside_strings = _string_interior_lines("".join(spaced))
    out: list[str] = []
    for number, (line, wide) in enumerate(zip(lines, spaced, strict=True), start=1):
        if number in inside_strings or not line.strip():
            out.append(line)
        elif tabs:
            columns = len(leading_whitespace(wide))
            levels, rest = divmod(columns, TAB_COLUMNS)
            out.append("\t" * levels + " " * rest + wide.lstrip(" "))
        else:
            out.append(wide)
    return "".join(out)


def has_tab_indentation(code: str) -> bool:
    return any("\t" in leading_whitespace(line) for line in code.splitlines())


def _string_interior_lines(code: str) -> set[int]:
    """Line numbers (1-based) after the first line of each multi-line string that is a value;
    a string standing alone as a statement (a docstring) is indented with the code."""
    interior: set[int] = set()
    # Python 3.12+ splits an f-string into start, middle and end tokens.
    fstring_start = getattr(tokenize, "FSTRING_START", -1)
    fstring_end = getattr(tokenize, "FSTRING_END", -1)
    statement_start = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT}
    opened: list[int] = []
    try:
        tokens = [
            t
            for t in tokenize.generate_tokens(io.StringIO(code).readline)
            if t.type != tokenize.COMMENT
        ]
    except (tokenize.TokenError, SyntaxError):
        return interior
    for at, token in enumerate(tokens):
        if token.type == fstring_start:
            opened.append(token.start[0])
        elif token.type == fstring_end and opened:
            interior.update(range(opened.pop() + 1, token.end[0] + 1))
        elif token.type == tokenize.STRING and token.end[0] > token.start[0]:
            alone = (at == 0 or tokens[at - 1].type in statement_start) and (
                at + 1 < len(tokens) and tokens[at + 1].type == tokenize.NEWLINE
            )
            if not alone:
                interior.update(range(token.start[0] + 1, token.end[0] + 1))
    return interior
