"""Verified fixes: a fix that passed the tests holds only for the text it was computed from."""

from __future__ import annotations

import io
import itertools
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cyclefix.refine import FixResult

_fix_ids = itertools.count(1)

# The text a file holds now for the session (an editor's buffer, else the disk); None: unreadable.
ReadText = Callable[[Path], str | None]
# The editor's version of an open file; None when it is not open.
VersionOf = Callable[[Path], int | None]


def new_fix_id() -> str:
    return f"fix-{next(_fix_ids)}"


def read_disk(path: Path) -> str | None:
    """A Python file's text as Python reads it (PEP 263 coding line, BOM), endings kept."""
    try:
        data = path.read_bytes()
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (OSError, SyntaxError, UnicodeDecodeError, LookupError):
        return None


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


@dataclass(frozen=True)
class VerifiedFix:
    """A fix that passed the tests, for the file contents it was computed from."""

    result: FixResult
    fix_id: str = field(default_factory=new_fix_id)
    # Editor version of each changed file that was open when the run began.
    versions: dict[Path, int] = field(default_factory=dict)
    # (absolute path, 1-based line) where each rewritten function is shown.
    locations: tuple[tuple[Path, int], ...] = ()

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(change.path.resolve() for change in self.result.changes)

    @property
    def passed(self) -> int:
        run = self.result.final_run
        return len(run.passed) if run is not None else 0

    def is_stale(
        self, read_text: ReadText = read_disk, version_of: VersionOf | None = None
    ) -> bool:
        """Whether any file the fix changes differs from what the fix was computed on."""
        for change in self.result.changes:
            path = change.path.resolve()
            version = version_of(path) if version_of is not None else None
            recorded = self.versions.get(path)
            if version is not None and recorded is not None and version != recorded:
                return True
            current = read_text(path)
            if current is None or normalize_newlines(current) != normalize_newlines(
                change.original
            ):
                return True
        return False

    def touches(self, paths: list[Path]) -> bool:
        """Whether any of `paths` is a file the fix changes."""
        mine = set(self.paths)
        return any(path.resolve() in mine for path in paths)
