"""A folder of task projects as a suite: each a buggy module with pytest tests.

A task may hold `hidden_tests/`: scored, but never part of what the refine loop runs or shows.
`examples/` is such a folder; so is the output of `cyclefix bench bugs`.
"""

from __future__ import annotations

from pathlib import Path

from cyclefix.bench.tasks import BenchTask
from cyclefix.errors import CyclefixError
from cyclefix.runner.testfiles import SKIP_DIRS, is_test_file

HIDDEN_DIR = "hidden_tests"


def has_tests(folder: Path) -> bool:
    for path in folder.rglob("*.py"):
        rel = path.relative_to(folder).parts
        if rel[0] == HIDDEN_DIR or any(p in SKIP_DIRS or p.startswith(".") for p in rel[:-1]):
            continue
        if is_test_file(path):
            return True
    return False


def _hidden_files(task_dir: Path) -> dict[str, str]:
    hidden = task_dir / HIDDEN_DIR
    files: dict[str, str] = {}
    if hidden.is_dir():
        for path in sorted(hidden.rglob("*")):
            if path.is_file() and not any(p in SKIP_DIRS for p in path.relative_to(hidden).parts):
                try:
                    files[path.relative_to(task_dir).as_posix()] = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise CyclefixError(f"cannot read hidden test file {path}: {exc}") from exc
    return files


def load_folder(folder: Path, per_test_timeout: float = 3.0) -> list[BenchTask]:
    """Each sub-folder with tests is a task; a folder that is itself a project is one task."""
    if not folder.is_dir():
        raise CyclefixError(f"{folder} is not a folder of task projects")
    subdirs = [
        d
        for d in sorted(folder.iterdir())
        if d.is_dir()
        and d.name not in SKIP_DIRS
        and not d.name.startswith(".")
        and d.name != HIDDEN_DIR
        and has_tests(d)
    ]
    if not subdirs and has_tests(folder):
        subdirs = [folder]
    if not subdirs:
        raise CyclefixError(f"{folder} holds no task projects (folders with test_*.py files)")
    tasks: list[BenchTask] = []
    for task_dir in subdirs:
        tasks.append(
            BenchTask(
                task_id=task_dir.name,
                kind="folder",
                source_dir=task_dir.resolve(),
                hidden_files=_hidden_files(task_dir),
                # Empty: the scoring copy's whole suite, visible and hidden tests together.
                hidden_tests=(),
                hidden_timeout=per_test_timeout,
            )
        )
    return tasks
