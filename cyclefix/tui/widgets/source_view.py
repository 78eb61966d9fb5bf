"""The selected file's source, highlighted, with failing lines and suspect functions marked."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import ScrollableContainer
from textual.widgets import Static

FAILING_LINE_STYLE = "on #4b1c1c"
THEME = "monokai"
MAX_BYTES = 400_000


def render_source(code: str, failing_lines: Iterable[int], suspect_lines: Iterable[int]) -> Group:
    """Numbered, highlighted lines; a red ✗ and background on failing lines, ▍ on suspects."""
    failing = frozenset(failing_lines)
    suspect = frozenset(suspect_lines)
    highlighted = Syntax(code, "python", theme=THEME, background_color="default").highlight(code)
    lines = list(highlighted.split("\n", allow_blank=True))
    if lines and not lines[-1].plain and code.endswith("\n"):
        lines.pop()
    width = len(str(len(lines)))
    rendered: list[Text] = []
    for number, line in enumerate(lines, start=1):
        if number in failing:
            gutter = Text.assemble(("✗", "bold red"), (f"{number:>{width}} ", "red"))
        elif number in suspect:
            gutter = Text.assemble(("▍", "dark_orange"), (f"{number:>{width}} ", "dim"))
        else:
            gutter = Text(f" {number:>{width}} ", style="dim")
        row = Text.assemble(gutter, line)
        row.no_wrap = True
        if number in failing:
            row.stylize(FAILING_LINE_STYLE, len(gutter))
        rendered.append(row)
    return Group(*rendered)


class SourceView(ScrollableContainer):
    """Shows one project file; `show` reloads it from disk."""

    DEFAULT_CSS = """
    SourceView { border: round $primary 50%; height: 1fr; }
    SourceView:focus { border: round $primary; }
    SourceView > Static { width: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Source"
        self.path: Path | None = None
        self.rel: str | None = None
        self._body = Static(Text("Select a file or a failing test.", style="dim"))

    def compose(self) -> ComposeResult:
        yield self._body

    def show(
        self,
        path: Path,
        rel: str,
        failing_lines: Iterable[int] = (),
        suspect_lines: Iterable[int] = (),
        subtitle: str = "",
    ) -> None:
        failing = sorted(set(failing_lines))
        self.path = path
        self.rel = rel
        self.border_title = rel
        self.border_subtitle = subtitle
        try:
            data = path.read_bytes()[:MAX_BYTES]
            code = data.decode("utf-8", errors="replace")
        except OSError as exc:
            self._body.update(Text(f"cannot read {rel}: {exc.strerror}", style="red"))
            return
        self._body.update(render_source(code, failing, suspect_lines))
        target = failing[0] if failing else 1
        self.call_after_refresh(self.scroll_to, 0, max(0, target - 4), animate=False)

    def reload(self, failing_lines: Iterable[int] = (), suspect_lines: Iterable[int] = ()) -> None:
        if self.path is not None and self.rel is not None:
            subtitle = str(self.border_subtitle or "")
            self.show(self.path, self.rel, failing_lines, suspect_lines, subtitle)
