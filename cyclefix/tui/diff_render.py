"""Renderings of a verified fix: the unified diff, highlighted, or old and new side by side.

Both show control and bidirectional-text characters as escapes (`visible`), as the CLI does:
Rich and Textual pass ESC and the rest to the terminal, where they could redraw the diff.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from itertools import zip_longest

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from cyclefix.refine import FileChange
from cyclefix.refine.console import visible

REMOVED_STYLE = "on #4b1c1c"
ADDED_STYLE = "on #1c3b1f"
CONTEXT_LINES = 3


def unified(diff: str) -> RenderableType:
    return Syntax(visible(diff), "diff", theme="monokai", background_color="default")


def side_by_side(changes: Sequence[FileChange], names: Sequence[str]) -> RenderableType:
    """For each changed file, the changed hunks with the old lines left and the new right."""
    parts: list[RenderableType] = []
    for change, name in zip(changes, names, strict=True):
        parts.append(Text(visible(name), style="bold"))
        parts.append(_file_table(_lines(change.original), _lines(change.fixed)))
    return Group(*parts)


def _lines(text: str) -> list[str]:
    """The lines split at `\n` (and `\r\n`) alone, each shown with `visible`: a lone carriage
    return, a form feed or a line separator stays in its line as an escape to be seen, rather
    than breaking it where `str.splitlines` would."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [visible(line.removesuffix("\r")) for line in lines]


def _file_table(old: list[str], new: list[str]) -> Table:
    table = Table(box=None, show_header=True, expand=True, padding=(0, 1, 0, 0))
    table.add_column("", justify="right", style="dim", no_wrap=True)
    table.add_column("before", ratio=1, overflow="fold")
    table.add_column("", justify="right", style="dim", no_wrap=True)
    table.add_column("after", ratio=1, overflow="fold")
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for index, group in enumerate(matcher.get_grouped_opcodes(CONTEXT_LINES)):
        if index:
            table.add_row(Text(""), Text("⋯", style="dim"), Text(""), Text("⋯", style="dim"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for offset in range(i2 - i1):
                    table.add_row(
                        Text(str(i1 + offset + 1)),
                        Text(old[i1 + offset]),
                        Text(str(j1 + offset + 1)),
                        Text(new[j1 + offset]),
                    )
                continue
            left = list(range(i1, i2))
            right = list(range(j1, j2))
            for i, j in zip_longest(left, right):
                table.add_row(
                    Text("" if i is None else str(i + 1)),
                    Text("") if i is None else Text(old[i], style=REMOVED_STYLE),
                    Text("" if j is None else str(j + 1)),
                    Text("") if j is None else Text(new[j], style=ADDED_STYLE),
                )
    return table
