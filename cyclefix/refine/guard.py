"""Checks a candidate must pass before any test runs: it parses, its names resolve."""

from __future__ import annotations

from pyflakes import messages as flake_messages
from pyflakes.api import check as flakes_check
from pyflakes.reporter import Reporter


class _Collect(Reporter):  # type: ignore[misc]
    def __init__(self) -> None:
        self.found: list[str] = []

    def unexpectedError(self, filename: str, msg: str) -> None:
        self.found.append(msg)

    def syntaxError(self, filename: str, msg: str, lineno: int, offset: int, text: str) -> None:
        self.found.append(f"SyntaxError: {msg} (line {lineno})")

    def flake(self, message: flake_messages.Message) -> None:
        if isinstance(message, flake_messages.UndefinedName | flake_messages.UndefinedLocal):
            self.found.append(f"NameError: {message.message % message.message_args}")


def undefined_names(source: str, filename: str = "<candidate>") -> list[str]:
    """pyflakes' undefined-name reports (and syntax errors) for one module's text."""
    collector = _Collect()
    flakes_check(source, filename, collector)
    return collector.found


def new_undefined_names(before: str, after: str, filename: str) -> list[str]:
    """Reports in `after` that `before` did not already have: the candidate's own mistakes."""
    old = set(undefined_names(before, filename))
    return [m for m in undefined_names(after, filename) if m not in old]
