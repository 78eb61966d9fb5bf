"""A modal asking whether to trust a setting the project's pyproject.toml chose (cyclefix.trust)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from cyclefix.trust import TrustRequest


class TrustDialog(ModalScreen[bool]):
    """Dismisses with True for Trust, False for Don't trust (also escape)."""

    DEFAULT_CSS = """
    TrustDialog { align: center middle; }
    TrustDialog > Vertical {
        width: 80; height: auto; max-height: 80%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    TrustDialog Horizontal { height: auto; margin-top: 1; }
    TrustDialog Button { margin-right: 2; }
    TrustDialog .hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "answer(True)", "Trust"),
        Binding("n,escape", "answer(False)", "Don't trust"),
    ]

    def __init__(self, request: TrustRequest) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("Trust this project's setting?", style="bold"))
            yield Label(Text(self.request.question()))
            yield Label(
                Text(
                    "Until you trust it, the default is used. Trust is remembered for this "
                    "project and this exact value.",
                    style="dim",
                ),
                classes="hint",
            )
            with Horizontal():
                yield Button("Trust (t)", id="trust", variant="warning")
                yield Button("Don't trust (n)", id="dont-trust", variant="primary")

    def on_mount(self) -> None:
        # The safe answer has the focus: Enter does not trust by accident.
        self.query_one("#dont-trust", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "trust")

    def action_answer(self, trusted: bool) -> None:
        self.dismiss(trusted)
