"""The model's answer as it streams in, between one-line notes on what the loop is doing."""

from __future__ import annotations

import textwrap

from textual.widgets import Log

from cyclefix.refine.console import visible


class ModelOutput(Log):
    """A log that keeps streamed pieces on their lines and starts every note on a fresh one."""

    DEFAULT_CSS = """
    ModelOutput { border: round $primary 50%; height: 1fr; }
    ModelOutput:focus { border: round $primary; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(highlight=False, id=id)
        self._line_open = False

    def stream(self, text: str) -> None:
        """Append generated text as it came, control characters shown as escapes."""
        if text:
            self.write(visible(text))
            self._line_open = not text.endswith("\n")

    def note(self, line: str) -> None:
        """Write `line` on lines of its own (wrapped to the panel), after any open streamed line."""
        width = self.scrollable_content_region.width
        line = visible(line)
        lines = textwrap.wrap(line, width=width - 1) if width > 20 and line else [line]
        self.write(("\n" if self._line_open else "") + "\n".join(lines) + "\n")
        self._line_open = False

    def reset(self) -> None:
        self.clear()
        self._line_open = False

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
