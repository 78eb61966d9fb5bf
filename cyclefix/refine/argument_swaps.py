"""Argument swaps: two neighbouring arguments of a call on a suspicious line, in swapped order.

`isinstance(types, value)` for `isinstance(value, types)`, `"{}{}".format(b, a)`: no one-token
edit undoes a swap (refine.token_edits), and a small model, shown the faulty call, writes it
back as it reads. Each swap is a whole candidate at no generation cost, ranked among the token
edits by what the model thought of the second argument where the first one starts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence

from cyclefix.models.backend import Fork
from cyclefix.refine.source import normalized_code
from cyclefix.refine.token_edits import FENCE, TokenEdit, fenced_code, line_spans
from cyclefix.refine.types import EditLine

# A swap's gap (logits below the copy's token) when the model offers nothing better for the
# second argument where the first starts: after the likeliest token edits, before the far ones.
SWAP_GAP = -3.0


def argument_swaps(
    text: str, forks: Sequence[Fork], lines: Sequence[EditLine], seen: Iterable[str] = ()
) -> list[TokenEdit]:
    """The swaps of two neighbouring positional arguments of the calls on `lines` in `text`
    (a fenced answer that copies the code, scored token by token into `forks`), likeliest
    first: only swaps inside one line that change the code and are not among `seen` codes."""
    code = fenced_code(text)
    if code is None or not text.startswith(FENCE):
        return []
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []  # indented code: the copy of a method is dedented, so not an answer copy
    spans = line_spans(text, [line.text for line in lines])
    penalty_of = {line.text.strip(): line.penalty for line in lines}
    refused = {normalized_code(code), *(normalized_code(c) for c in seen)}
    lines_of_code = code.splitlines(keepends=True)
    starts = line_starts(lines_of_code, len(FENCE))
    found: dict[str, TokenEdit] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for first, second in zip(node.args, node.args[1:], strict=False):
            if isinstance(first, ast.Starred) or isinstance(second, ast.Starred):
                continue
            a_start, a_end = node_offsets(first, lines_of_code, starts)
            b_start, b_end = node_offsets(second, lines_of_code, starts)
            span = next(((s, e) for s, e in spans if s <= a_start and b_end <= e), None)
            if span is None:
                continue
            swapped = (
                text[:a_start]
                + text[b_start:b_end]
                + text[a_end:b_start]
                + text[a_start:a_end]
                + text[b_end:]
            )
            new_code = fenced_code(swapped)
            key = normalized_code(new_code) if new_code is not None else None
            if new_code is None or key is None or key in refused or key in found:
                continue
            line = text[span[0] : span[1]]
            gap = model_gap(text, forks, a_start, text[b_start:b_end]) - penalty_of.get(line, 0.0)
            found[key] = TokenEdit(new_code, gap, line)
    return sorted(found.values(), key=lambda edit: -edit.gap)


def model_gap(
    text: str, forks: Sequence[Fork], at: int, written: str, floor: float = SWAP_GAP
) -> float:
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


def line_starts(lines: Sequence[str], base: int) -> list[int]:
    """Offsets in the answer of each of the code's `lines` (it starts `base` characters in)."""
    starts = [base]
    for line in lines:
        starts.append(starts[-1] + len(line))
    return starts


def node_offsets(node: ast.expr, lines: Sequence[str], starts: Sequence[int]) -> tuple[int, int]:
    """Where `node` starts and ends in the answer (ast columns count UTF-8 bytes)."""

    def at(line: int, column: int) -> int:
        return starts[line - 1] + len(lines[line - 1].encode()[:column].decode(errors="replace"))

    end_line = node.end_lineno if node.end_lineno is not None else node.lineno
    end_column = node.end_col_offset if node.end_col_offset is not None else node.col_offset
    return at(node.lineno, node.col_offset), at(end_line, end_column)
