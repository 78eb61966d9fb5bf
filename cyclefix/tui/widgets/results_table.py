"""The latest result of every test: name, outcome, duration and one line of feedback."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from cyclefix.refine import CollectionError, TestCaseResult
from cyclefix.tui.formatting import first_line, nodeid_test, outcome_text, short_feedback
from cyclefix.tui.widgets.fitted_columns import fit_columns

COLLECTION_KEY_PREFIX = "collection-error:"
EMPTY_KEY = "empty"  # the row that says why there is nothing to show

Cells = tuple[Text, Text, Text, Text]
_BLANK_CELLS = (Text(""), Text(""), Text(""))


class ResultsTable(DataTable[Text]):
    """Failures first; the row key is the test's node id."""

    DEFAULT_CSS = """
    ResultsTable { height: 12; border: round $primary 50%; }
    ResultsTable:focus { border: round $primary; }
    """

    def __init__(self, *, show_timings: bool = True, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.border_title = "Tests"
        self.show_timings = show_timings
        self._order: list[str] = []

    def on_mount(self) -> None:
        self.add_column("test", key="test")
        self.add_column("outcome", key="outcome")
        self.add_column("time", key="time")
        self.add_column("feedback", key="feedback")

    @property
    def nodeids(self) -> tuple[str, ...]:
        return tuple(self._order)

    def show_results(
        self,
        cases: Sequence[TestCaseResult],
        collection_errors: Sequence[CollectionError] = (),
        empty_message: str = "",
    ) -> None:
        """Replace the rows, keeping the cursor on the same test when it is still there."""
        selected = self.selected_nodeid
        ordered = [c for c in cases if not c.ok] + [c for c in cases if c.ok]
        rows = [(COLLECTION_KEY_PREFIX + e.path, _error_cells(e)) for e in collection_errors]
        rows += [(case.nodeid, self._case_cells(case)) for case in ordered]
        self._order = [key for key, _ in rows]
        if not rows and empty_message:
            rows.append((EMPTY_KEY, (Text(empty_message, style="yellow"), *_BLANK_CELLS)))
        self.clear()
        fit_columns(self, [cells for _, cells in rows])
        for key, cells in rows:
            self.add_row(*cells, key=key)
        if selected in self._order:
            self.move_cursor(row=self._order.index(selected), animate=False)
        elif self._order:
            self.move_cursor(row=0, animate=False)

    def _case_cells(self, case: TestCaseResult) -> Cells:
        return (
            Text(nodeid_test(case.nodeid), style="" if case.ok else "bold"),
            outcome_text(case.outcome),
            Text(f"{case.duration:.2f}s" if self.show_timings else ""),
            Text(short_feedback(case)),
        )

    @property
    def selected_nodeid(self) -> str | None:
        """The node id under the cursor (or a collection-error key), None when empty."""
        if not self._order or self.cursor_row < 0 or self.cursor_row >= len(self._order):
            return None
        return self._order[self.cursor_row]


def _error_cells(error: CollectionError) -> Cells:
    return (
        Text(error.path, style="red"),
        Text("collect", style="bold red"),
        Text(""),
        Text(first_line(error.message), style="red"),
    )
