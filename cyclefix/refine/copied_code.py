"""The copy of the code an answer would be, read as syntax: where rule-made edits go.

Argument swaps (refine.argument_swaps) and operator edits (refine.operator_edits) change the
text of the scored copy (a fenced answer that writes the code back) at nodes of its syntax
tree on the suspicious lines; the copy's tokens, scored by the model, rank each change.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cyclefix.models.backend import Fork
from cyclefix.refine.source import normalized_code
from cyclefix.refine.token_edits import FENCE, TokenEdit, fenced_code, line_spans
from cyclefix.refine.types import EditLine


@dataclass(frozen=True)
class CopiedCode:
    """A fenced answer copying the code, parsed, and the spans of its suspicious lines."""

    text: str
    tree: ast.Module
    spans: list[tuple[int, int]]  # of the suspicious lines in `text`
    penalty_of: dict[str, float]  # by a suspicious line's stripped text
    refused: set[str]  # normalized codes: the copy's own and those seen
    lines: list[str]  # of the code, with their ends
    starts: list[int]  # of each line of the code in `text`

    @classmethod
    def read(cls, text: str, lines: Sequence[EditLine], seen: Iterable[str]) -> CopiedCode | None:
        """`text` read, or None when it is no fenced answer whose code parses unindented."""
        code = fenced_code(text)
        if code is None or not text.startswith(FENCE):
            return None
        try:
            tree = ast.parse(code)
        except SyntaxError:
            return None  # indented code: the copy of a method is dedented, so not an answer copy
        code_lines = code.splitlines(keepends=True)
        starts = [len(FENCE)]
        for line in code_lines:
            starts.append(starts[-1] + len(line))
        return cls(
            text,
            tree,
            line_spans(text, [line.text for line in lines]),
            {line.text.strip(): line.penalty for line in lines},
            {normalized_code(code), *(normalized_code(c) for c in seen)},
            code_lines,
            starts,
        )

    def where(self, node: ast.expr) -> tuple[int, int]:
        """Where `node` starts and ends in the text (ast columns count UTF-8 bytes)."""

        def at(line: int, column: int) -> int:
            text = self.lines[line - 1].encode()[:column].decode(errors="replace")
            return self.starts[line - 1] + len(text)

        end_line = node.end_lineno if node.end_lineno is not None else node.lineno
        end_column = node.end_col_offset if node.end_col_offset is not None else node.col_offset
        return at(node.lineno, node.col_offset), at(end_line, end_column)

    def span_around(self, start: int, end: int) -> tuple[int, int] | None:
        """The suspicious line holding all of `start`..`end`, if one does."""
        return next(((s, e) for s, e in self.spans if s <= start and end <= e), None)

    def add_edit(
        self, edited: str, span: tuple[int, int], gap: float, found: dict[str, TokenEdit]
    ) -> None:
        """`edited` (the text with one change inside `span`) into `found` by its normalized
        code, when it parses, changes the code and is new; its gap less the line's penalty."""
        code = fenced_code(edited)
        key = normalized_code(code) if code is not None else None
        if code is None or key is None or key in self.refused or key in found:
            return
        line = self.text[span[0] : span[1]]
        found[key] = TokenEdit(code, gap - self.penalty_of.get(line, 0.0), line)


def model_gap(text: str, forks: Sequence[Fork], at: int, written: str, floor: float) -> float:
    """The model's gap for writing `written` where the copy has `text` from `at` on (`floor`
    at the least): its best choice there that begins `written`, when the copy's own token
    does not begin it too (then the scores tell the two apart nowhere)."""
    index = next((i for i in range(len(forks) - 1, -1, -1) if forks[i].offset <= at), None)
    if index is None or index + 1 >= len(forks):
        return floor
    start, end = forks[index].offset, forks[index + 1].offset
    wanted = text[start:at] + written
    if wanted.startswith(text[start:end]):
        return floor
    gaps = [
        choice.gap
        for choice in forks[index].known_choices
        if len(choice.text) > at - start and wanted.startswith(choice.text)
    ]
    return max([floor, *gaps])
