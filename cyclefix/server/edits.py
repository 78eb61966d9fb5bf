"""Text positions in the client's encoding, and minimal TextEdits from old text to new.

LSP lines end at \\n, \\r\\n or \\r only (not at the other breaks str.splitlines knows), and
characters are counted in the negotiated encoding's code units (UTF-16 unless agreed
otherwise).
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Sequence

from lsprotocol import types

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_ENDING = re.compile(r"(?:\r\n|\r|\n)\Z")


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split only where LSP splits."""
    return _LINE.findall(text)


def code_units(text: str, encoding: str) -> int:
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def dominant_newline(text: str) -> str:
    """The line ending most lines of `text` use; \\n for text with none."""
    crlf = text.count("\r\n")
    cr = text.count("\r") - crlf
    lf = text.count("\n") - crlf
    best = max((lf, "\n"), (crlf, "\r\n"), (cr, "\r"), key=lambda pair: pair[0])
    return best[1] if best[0] > 0 else "\n"


class LineIndex:
    """Offsets in a text <-> LSP positions."""

    def __init__(self, text: str, encoding: str = types.PositionEncodingKind.Utf16) -> None:
        self.text = text
        self.encoding = encoding
        self.starts = [0]
        for line in split_lines(text):
            if _ENDING.search(line):
                self.starts.append(self.starts[-1] + len(line))

    def position(self, offset: int) -> types.Position:
        line = bisect.bisect_right(self.starts, offset) - 1
        start = self.starts[line]
        return types.Position(
            line=line, character=code_units(self.text[start:offset], self.encoding)
        )

    def line_text(self, line: int) -> str:
        """Line `line` (0-based) without its ending; empty past the end."""
        if line < 0 or line >= len(self.starts):
            return ""
        end = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        return _ENDING.sub("", self.text[self.starts[line] : end])

    def line_range(self, line: int) -> types.Range:
        """The range of line `line` (0-based) from its first non-blank character to its end."""
        line = max(0, min(line, len(self.starts) - 1))
        text = self.line_text(line)
        indent = len(text) - len(text.lstrip())
        return types.Range(
            start=types.Position(line=line, character=code_units(text[:indent], self.encoding)),
            end=types.Position(line=line, character=code_units(text, self.encoding)),
        )


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _common_suffix(a: str, b: str, limit: int) -> int:
    n = min(len(a), len(b)) - limit
    i = 0
    while i < n and a[-1 - i] == b[-1 - i]:
        i += 1
    return i


def _normalized(lines: Sequence[str]) -> list[str]:
    return [_ENDING.sub("\n", line) for line in lines]


def minimal_edits(
    old: str, new: str, encoding: str = types.PositionEncodingKind.Utf16
) -> list[types.TextEdit]:
    """Non-overlapping edits that turn `old` into `new`, each as small as it can be.

    Line endings are compared ignoring their style; lines the edit writes take the old
    text's dominant ending and untouched lines keep theirs, so a CRLF file stays CRLF.
    """
    newline = dominant_newline(old)
    old_lines = split_lines(old)
    new_lines = [_ENDING.sub(newline, line) for line in split_lines(new)]
    index = LineIndex(old, encoding)
    offsets = [0]
    for line in old_lines:
        offsets.append(offsets[-1] + len(line))
    old_norm, new_norm = _normalized(old_lines), _normalized(new_lines)
    # Lines shared at both ends are left out of difflib, quadratic on long repetitive files:
    # a fix of one function then diffs only that function's lines.
    head = 0
    while head < min(len(old_norm), len(new_norm)) and old_norm[head] == new_norm[head]:
        head += 1
    tail = 0
    while (
        tail < min(len(old_norm), len(new_norm)) - head
        and old_norm[-1 - tail] == new_norm[-1 - tail]
    ):
        tail += 1
    matcher = difflib.SequenceMatcher(
        None,
        old_norm[head : len(old_norm) - tail],
        new_norm[head : len(new_norm) - tail],
        autojunk=False,
    )
    edits: list[types.TextEdit] = []
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        i1, i2, j1, j2 = a1 + head, a2 + head, b1 + head, b2 + head
        old_chunk = old[offsets[i1] : offsets[i2]]
        new_chunk = "".join(new_lines[j1:j2])
        prefix = _common_prefix(old_chunk, new_chunk)
        suffix = _common_suffix(old_chunk, new_chunk, prefix)
        start = offsets[i1] + prefix
        end = offsets[i2] - suffix
        replacement = new_chunk[prefix : len(new_chunk) - suffix]
        edits.append(
            types.TextEdit(
                range=types.Range(start=index.position(start), end=index.position(end)),
                new_text=replacement,
            )
        )
    return edits
