"""The project as the TUI sees it: its Python files, which are tests, what to re-run on a save."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cyclefix.runner.testfiles import SKIP_DIRS, is_test_file

# Folders that never hold the user's own code: the runner's list, and snapshot test reports.
IGNORED_DIRS = SKIP_DIRS | frozenset({"snapshot_report"})
MAX_FILES = 2000
# The refinement loop verifies candidates in temporary folders named like this.
SCRATCH_PREFIX = "cyclefix-scratch-"


def is_ignored_part(part: str) -> bool:
    """Hidden folders (.git, .venv), caches, build output and the loop's scratch copies."""
    return (
        part.startswith(".")
        or part in IGNORED_DIRS
        or part.endswith(".egg-info")
        or part.startswith(SCRATCH_PREFIX)
    )


def is_project_python_file(root: Path, path: Path) -> bool:
    """A .py file inside `root` that is not in an ignored folder."""
    if path.suffix != ".py":
        return False
    try:
        relative = path.relative_to(root)
    except ValueError:
        return False
    return not any(is_ignored_part(part) for part in relative.parts[:-1]) and not (
        relative.name.startswith(".")
    )


def python_files(root: Path, limit: int = MAX_FILES) -> tuple[str, ...]:
    """Project-relative POSIX paths of the project's .py files, sorted, at most `limit`."""
    found: list[str] = []
    stack = [root]
    while stack and len(found) < limit:
        folder = stack.pop()
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.name)
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                if not is_ignored_part(entry.name):
                    stack.append(entry)
            elif entry.is_file() and is_project_python_file(root, entry):
                found.append(entry.relative_to(root).as_posix())
    return tuple(sorted(found)[:limit])


@dataclass(frozen=True)
class RunSelection:
    """What to run: a file or folder for `check`, and optional explicit tests."""

    path: Path
    tests: tuple[str, ...] | None
    full: bool  # the whole configured selection, so results replace rather than merge


def selection_for_changes(
    root: Path, changed: Iterable[Path], configured_tests: Sequence[str] | None
) -> RunSelection | None:
    """The tests to re-run after `changed` files were saved, or None when none matter.

    Changed test files run themselves; one changed source file runs the tests importing it;
    anything more, or a file that appeared or vanished, runs the whole selection.
    """
    relevant = sorted({p for p in changed if is_project_python_file(root, p)})
    if not relevant:
        return None
    if configured_tests:
        return RunSelection(root, tuple(configured_tests), full=True)
    if any(not p.exists() for p in relevant):
        return RunSelection(root, None, full=True)
    tests = [p for p in relevant if is_test_file(p)]
    sources = [p for p in relevant if not is_test_file(p)]
    if not sources:
        return RunSelection(root, tuple(p.relative_to(root).as_posix() for p in tests), False)
    if len(sources) == 1 and not tests:
        return RunSelection(sources[0], None, full=False)
    return RunSelection(root, None, full=True)


def content_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class OwnWrites:
    """Files the TUI wrote itself (accepted fixes), so the watcher does not react to them."""

    def __init__(self) -> None:
        self._digests: dict[Path, str] = {}

    def record(self, paths: Iterable[Path]) -> None:
        for path in paths:
            digest = content_digest(path)
            if digest is not None:
                self._digests[path.resolve()] = digest

    def is_own(self, path: Path) -> bool:
        """True while `path` holds exactly what we wrote; a later edit forgets the record."""
        key = path.resolve()
        expected = self._digests.get(key)
        if expected is None:
            return False
        if content_digest(key) == expected:
            return True
        del self._digests[key]
        return False
