"""One line under the panels: what is happening, the model, round k/N, tokens/s, elapsed time."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from cyclefix.tui.formatting import format_elapsed


@dataclass(frozen=True)
class StatusInfo:
    state: str  # e.g. "2 of 6 tests failing"
    state_style: str
    model: str
    round_index: int | None = None
    round_total: int | None = None
    tokens_per_second: float | None = None
    elapsed: float | None = None
    notice: Text | None = None  # the outcome of the last action, or an error


def status_text(info: StatusInfo) -> Text:
    parts: list[Text] = [Text(f" {info.state} ", style=info.state_style)]
    parts.append(Text.assemble(("model ", "dim"), info.model))
    if info.round_index is not None and info.round_total is not None:
        parts.append(Text.assemble(("round ", "dim"), f"{info.round_index}/{info.round_total}"))
    if info.tokens_per_second is not None:
        parts.append(Text(f"{info.tokens_per_second:.1f} tok/s"))
    if info.elapsed is not None:
        parts.append(Text.assemble(("elapsed ", "dim"), format_elapsed(info.elapsed)))
    if info.notice is not None and info.notice.plain:
        parts.append(info.notice)
    return Text(" │ ", style="dim").join(parts)


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; }
    """

    def show(self, info: StatusInfo) -> None:
        self.update(status_text(info))
