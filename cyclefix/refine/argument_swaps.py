"""Argument swaps: two neighbouring arguments of a call on a suspicious line, in swapped order.

`isinstance(types, value)` for `isinstance(value, types)`, `"{}{}".format(b, a)`: no one-token
edit undoes a swap (refine.token_edits), and a small model, shown the faulty call, writes it
back as it reads. Each swap is a whole candidate at no generation cost, ranked among the token
edits by what the model thought of the second argument where the first one starts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from itertools import pairwise

from cyclefix.models.backend import Fork
from cyclefix.refine.copied_code import CopiedCode, model_gap
from cyclefix.refine.token_edits import TokenEdit
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
    copied = CopiedCode.read(text, lines, seen)
    if copied is None:
        return []
    found: dict[str, TokenEdit] = {}
    for node in ast.walk(copied.tree):
        if not isinstance(node, ast.Call):
            continue
        for first, second in pairwise(node.args):
            if isinstance(first, ast.Starred) or isinstance(second, ast.Starred):
                continue
            a_start, a_end = copied.where(first)
            b_start, b_end = copied.where(second)
            span = copied.span_around(a_start, b_end)
            if span is None:
                continue
            swapped = (
                text[:a_start]
                + text[b_start:b_end]
                + text[a_end:b_start]
                + text[a_start:a_end]
                + text[b_end:]
            )
            gap = model_gap(text, forks, a_start, text[b_start:b_end], SWAP_GAP)
            copied.add_edit(swapped, span, gap, found)
    return sorted(found.values(), key=lambda edit: -edit.gap)
