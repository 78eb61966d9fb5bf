"""A modal to pick the model: a registry name from the list, or any spec typed in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option


class ModelChooser(ModalScreen[str | None]):
    """Dismisses with the chosen spec, or None when cancelled."""

    DEFAULT_CSS = """
    ModelChooser { align: center middle; }
    ModelChooser > Vertical {
        width: 72; height: auto; max-height: 80%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    ModelChooser OptionList { height: auto; max-height: 12; margin-bottom: 1; }
    ModelChooser .hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, names: Sequence[str], current: str) -> None:
        super().__init__()
        self.names = tuple(names)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text.assemble(("Choose the model", "bold"), f"   (now: {self.current})"))
            options = [
                Option(Text(name, style="bold" if name == self.current else ""), id=name)
                for name in self.names
            ]
            yield OptionList(*options, id="model-names")
            yield Label("or type a GGUF path, a registry name or openai:URL#MODEL:", classes="hint")
            yield Input(placeholder="model spec", id="model-spec")
            yield Label("enter: use it   esc: keep the current model", classes="hint")

    def on_mount(self) -> None:
        names = self.query_one("#model-names", OptionList)
        if self.names:
            names.highlighted = self.names.index(self.current) if self.current in self.names else 0
            names.focus()
        else:
            names.display = False
            self.query_one("#model-spec", Input).focus()

    @on(OptionList.OptionSelected, "#model-names")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    @on(Input.Submitted, "#model-spec")
    def _typed(self, event: Input.Submitted) -> None:
        spec = event.value.strip()
        if spec:
            self.dismiss(spec)
        else:
            self.notify("Type a model spec, or press esc.", severity="warning")

    def action_cancel(self) -> None:
        self.dismiss(None)
