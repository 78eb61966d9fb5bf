"""Column widths a DataTable takes from its rows at once, not when it is next idle."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable


def fit_columns(table: DataTable[Text], rows: Sequence[Sequence[Text]]) -> None:
    """Size every column of `table` to its label and the cells of `rows` (all its rows).

    Textual measures new rows on its next idle message; on a loaded machine a screen was
    drawn, and stayed, with every column at its label's width. Fixed widths set here hold
    from the first frame, and a column shrinks when its longest cell goes away."""
    for index, column in enumerate(table.ordered_columns):
        widths = [_width(row[index]) for row in rows if index < len(row)]
        column.width = max([_width(column.label), *widths])
        column.auto_width = False
    table.refresh()


def _width(text: Text) -> int:
    return max((cell_len(line) for line in text.plain.splitlines()), default=0)
