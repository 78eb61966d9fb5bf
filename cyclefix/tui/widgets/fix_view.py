"""The verified fix as a diff (unified or side by side) above the table of every attempt."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import ScrollableContainer, Vertical
from textual.widgets import Static

from cyclefix.refine import FixResult
from cyclefix.tui.diff_render import side_by_side, unified
from cyclefix.tui.widgets.attempts_table import AttemptsTable

DiffMode = Literal["unified", "side-by-side"]


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
