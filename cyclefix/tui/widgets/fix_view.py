"""The verified fix as a diff (unified or side by side) and the history of every attempt."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import ScrollableContainer, Vertical
from textual.widgets import DataTable, Static

from cyclefix.refine import Attempt, FixResult
from cyclefix.tui.diff_render import side_by_side, unified
from cyclefix.tui.formatting import attempt_tests_text, first_line, verdict_text

DiffMode = Literal["unified", "side-by-side"]


class AttemptsTable(DataTable[Text]):
    """One row per attempt of the current refinement, verdict in words."""

    DEFAULT_CSS = """
    AttemptsTable { height: 9; border: round $primary 50%; }
    AttemptsTable:focus { border: round $primary; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self.border_title = "Attempts"

    def on_mount(self) -> None:
        for column in ("round", "temp", "tests", "verdict", "detail"):
            self.add_column(column, key=column)

    def add_attempt(self, attempt: Attempt) -> None:
        self.add_row(
            Text(str(attempt.round)),
            Text(f"{attempt.temperature:.1f}"),
            Text(attempt_tests_text(attempt)),
            verdict_text(attempt),
            Text(first_line(attempt.detail or attempt.feedback, 60)),
        )
        self.move_cursor(row=self.row_count - 1, animate=False)

    def show_attempts(self, attempts: Sequence[Attempt]) -> None:
        self.clear()
        for attempt in attempts:
            self.add_attempt(attempt)


class FixView(Vertical):
    """Diff of the verified fix above the attempts table."""

    DEFAULT_CSS = """
    FixView #diff { height: 1fr; border: round $primary 50%; }
    FixView #diff:focus { border: round $primary; }
    FixView #diff > Static { width: 100%; }
    FixView #diff.-unified > Static { width: auto; min-width: 100%; }
    """

    NO_FIX = Text("No fix yet. Select a failing test and press f to refine it.", style="dim")

    def __init__(self, root: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.root = root
        self.mode: DiffMode = "unified"
        self.result: FixResult | None = None
        self._note: Text | None = None
        # Unified diffs scroll sideways rather than wrap, so every line keeps its +/- column.
        self._scroll = ScrollableContainer(id="diff", classes="-unified")
        self._scroll.border_title = "Diff"
        self._body = Static(self.NO_FIX)
        self.attempts = AttemptsTable(id="attempts")

    def compose(self) -> ComposeResult:
        with self._scroll:
            yield self._body
        yield self.attempts

    def show_fix(self, result: FixResult | None, note: Text | None = None) -> None:
        """Show `result`'s diff (None clears it); `note` explains what happened instead."""
        self.result = result
        self._note = note
        self._render_body()

    def toggle_mode(self) -> DiffMode:
        self.mode = "side-by-side" if self.mode == "unified" else "unified"
        self._render_body()
        return self.mode

    def _render_body(self) -> None:
        self._scroll.border_subtitle = self.mode
        self._scroll.set_class(self.mode == "unified", "-unified")
        result = self.result
        if result is None or not result.changes:
            self._scroll.border_title = "Diff"
            self._body.update(self._note or self.NO_FIX)
            return
        names = [self._relative(change.path) for change in result.changes]
        self._scroll.border_title = "Verified fix: " + ", ".join(names)
        body: RenderableType
        if self.mode == "unified":
            body = unified(result.diff)
        else:
            body = side_by_side(result.changes, names)
        self._body.update(body if self._note is None else Group(self._note, Text(""), body))
        self._scroll.scroll_home(animate=False)

    def _relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)
