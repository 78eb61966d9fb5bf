"""The `?` screen: what each panel shows and what each key does."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = (
    "Edit your code in any editor. cyclefix watches the project, re-runs the tests a save "
    "affects and, when you ask, has a local model propose a fix. A fix is offered only after "
    "it passed the tests in a scratch copy; your files change only when you accept it."
)

KEYS: tuple[tuple[str, str], ...] = (
    ("r", "run the tests"),
    ("f", "refine: ask the model to fix the selected failing test"),
    ("a", "accept the verified fix (atomic write; refused if the file changed since)"),
    ("x", "reject the fix; your files stay as they are"),
    ("c", "cancel the test run or the refinement in progress"),
    ("d", "show the diff unified or side by side"),
    ("z", "zoom: the model output / fix panel full screen, and back"),
    ("m", "choose the model"),
    ("ctrl+p", "command palette: every action by name"),
    ("?", "this help"),
    ("q", "quit"),
)

PANELS: tuple[tuple[str, str], ...] = (
    ("Project", "test files: ✓ passing, ✗ failing, ◌ running; ⚑ files the failures point at"),
    ("Source", "the selected file: ✗ failing lines, ▍ the functions suspected of the bug"),
    ("Tests", "each test's outcome and why it failed; select one to see its code"),
    ("Model", "the model's answer as it is generated, round by round"),
    ("Fix", "the verified diff, and every attempt with why it was rejected"),
)


def help_renderable() -> Group:
    keys = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    keys.add_column(style="bold cyan", no_wrap=True)
    keys.add_column()
    for key, action in KEYS:
        keys.add_row(Text(key), Text(action))
    panels = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    panels.add_column(style="bold", no_wrap=True)
    panels.add_column()
    for name, what in PANELS:
        panels.add_row(Text(name), Text(what))
    return Group(
        Text("cyclefix", style="bold"),
        Text(""),
        Text(INTRO),
        Text(""),
        Text("Keys", style="bold underline"),
        keys,
        Text(""),
        Text("Panels", style="bold underline"),
        panels,
        Text(""),
        Text("esc or ? closes this help.", style="dim"),
    )


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 96; max-width: 95%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    HelpScreen Static { width: 100%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(help_renderable())

    def action_close(self) -> None:
        self.dismiss(None)
