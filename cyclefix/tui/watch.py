"""Watching the project for saves: which paths count, and the blocking watch loop for a worker."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import watchfiles

from cyclefix.tui.project import is_project_python_file

# Milliseconds to wait for a burst of writes (an editor's save, a git checkout) to settle.
DEBOUNCE_MS = 300


class ProjectFilter(watchfiles.PythonFilter):
    """The project's own .py files: not hidden folders, caches, virtual envs or scratch copies."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        return bool(super().__call__(change, path)) and is_project_python_file(
            self.root, Path(path)
        )


def watch_project(
    root: Path, on_change: Callable[[tuple[Path, ...]], None], stop: threading.Event
) -> None:
    """Call `on_change` with the changed files after each burst of saves, until `stop` is set."""
    changes: set[tuple[watchfiles.Change, str]]
    for changes in watchfiles.watch(
        root,
        watch_filter=ProjectFilter(root),
        debounce=DEBOUNCE_MS,
        stop_event=stop,
        raise_interrupt=False,
        rust_timeout=500,
    ):
        paths = tuple(sorted({Path(path) for _change, path in changes}))
        if paths and not stop.is_set():
            on_change(paths)
