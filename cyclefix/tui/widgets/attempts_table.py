"""Every attempt of the current refinement, one row each, verdict in words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from rich.text import Text
from textual.widgets import DataTable

from cyclefix.refine import Attempt
from cyclefix.tui.formatting import attempt_tests_text, first_line, verdict_text
from cyclefix.tui.widgets.fitted_columns import fit_columns


class AttemptsTable(DataTable[Text]):
    """One row per attempt of the current refinement, verdict in words."""

    DEFAULT_CSS = """
    AttemptsTable { height: 9; border: round $primary 50%; }
    AttemptsTable:focus { border: round $primary; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self.border_title = "Attempts"
        self._rows: list[tuple[Text, ...]] = []

    def on_mount(self) -> None:
        for column in ("round", "temp", "tests", "verdict", "detail"):
            self.add_column(column, key=column)

    def add_attempt(self, attempt: Attempt) -> None:
        cells = (
            Text(str(attempt.round)),
            Text(f"{attempt.temperature:.1f}"),
            Text(attempt_tests_text(attempt)),
            verdict_text(attempt),
            Text(first_line(attempt.detail or attempt.feedback, 60)),
        )
        self._rows.append(cells)
        fit_columns(self, self._rows)
        self.add_row(*cells)
        self.move_cursor(row=self.row_count - 1, animate=False)

    def show_attempts(self, attempts: Sequence[Attempt]) -> None:
        self.clear()
        for attempt in attempts:
            self.add_attempt(attempt)

    def clear(self, columns: bool = False) -> Self:
        self._rows = []
        return super().clear(columns)
