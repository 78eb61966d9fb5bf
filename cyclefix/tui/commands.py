"""The app's entries in the command palette (ctrl+p), each naming its key."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from textual.app import SystemCommand


class Actions(Protocol):
    def action_run_tests(self) -> None: ...
    def action_refine(self) -> None: ...
    def action_accept(self) -> None: ...
    def action_reject(self) -> None: ...
    def action_cancel(self) -> None: ...
    def action_toggle_diff(self) -> None: ...
    def action_choose_model(self) -> None: ...
    def action_zoom(self) -> None: ...
    def action_help(self) -> None: ...


def palette_commands(app: Actions) -> Iterable[SystemCommand]:
    entries: tuple[tuple[str, str, Callable[[], object]], ...] = (
        ("Run tests", "Run the project's tests (r)", app.action_run_tests),
        ("Refine failure", "Ask the model to fix the selected failing test (f)", app.action_refine),
        ("Accept fix", "Write the verified fix to disk (a)", app.action_accept),
        ("Reject fix", "Discard the verified fix (x)", app.action_reject),
        ("Cancel", "Stop the test run or refinement in progress (c)", app.action_cancel),
        ("Toggle diff view", "Unified or side-by-side diff (d)", app.action_toggle_diff),
        ("Choose model", "Pick the model for refinement (m)", app.action_choose_model),
        ("Zoom panel", "Model output and fix panel full screen, or back (z)", app.action_zoom),
        ("Help", "Keys and panels (?)", app.action_help),
    )
    for title, help_text, callback in entries:
        yield SystemCommand(title, help_text, callback)
