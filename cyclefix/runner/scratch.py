"""The throwaway copy of a project that a candidate's tests run in (see launch.Confinement)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cyclefix.errors import CyclefixError
from cyclefix.runner.testfiles import is_skipped_dir


@contextlib.contextmanager
def scratch_copy(root: Path, *, max_total_mb: float = 512.0) -> Iterator[Path]:
    """A throwaway copy of the project at `root`, removed on exit whatever happens.

    The copy is the project as its tests see it: every file byte for byte, large ones too (a
    test may read a data file; a hard link would let a candidate write through to the user's
    file). Skips environments, caches and build output; symlinks inside the project stay links
    (into the copy); links to files outside are copied as files; links to folders outside (a
    symlinked venv) are left out. Raises CyclefixError when the project is missing or larger
    than `max_total_mb`, naming its largest files.
    """
    source = Path(root).resolve()
    if not source.is_dir():
        raise CyclefixError(f"cannot copy the project: {root} is not a folder")
    parent = Path(tempfile.mkdtemp(prefix="cyclefix-scratch-"))
    target = parent / (source.name or "project")
    try:
        budget = _CopyBudget(int(max_total_mb * 2**20))
        _copy_tree(source, target, source, budget)
        yield target
    finally:
        _remove_tree(parent)


@dataclass
class _CopyBudget:
    max_total: int
    total: int = 0
    # (size, path) of the largest files seen, for the error when the project is too large.
    largest: list[tuple[int, str]] = field(default_factory=list)


def _copy_tree(folder: Path, target: Path, root: Path, budget: _CopyBudget) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            source = Path(entry.path)
            destination = target / name
            if entry.is_symlink():
                _copy_link(source, destination, root, budget)
            elif entry.is_dir(follow_symlinks=False):
                # *.egg-info is kept: importlib.metadata reads it (a package's __version__).
                if is_skipped_dir(name) and not name.endswith(".egg-info"):
                    continue
                if (source / "pyvenv.cfg").exists():  # a virtual environment under any name
                    continue
                _copy_tree(source, destination, root, budget)
            elif entry.is_file(follow_symlinks=False):
                _copy_file(source, destination, entry.stat(follow_symlinks=False).st_size, budget)


def _copy_file(source: Path, destination: Path, size: int, budget: _CopyBudget) -> None:
    budget.total += size
    budget.largest = sorted([*budget.largest, (size, str(source))], reverse=True)[:3]
    if budget.total > budget.max_total:
        limit = budget.max_total // 2**20
        biggest = ", ".join(f"{path} ({size / 2**20:.0f} MiB)" for size, path in budget.largest)
        raise CyclefixError(
            f"the project is over {limit} MiB; too large for a scratch copy (largest: {biggest})"
        )
    shutil.copy2(source, destination, follow_symlinks=False)


def _copy_link(source: Path, destination: Path, root: Path, budget: _CopyBudget) -> None:
    try:
        resolved = source.resolve(strict=True)
    except (OSError, RuntimeError):
        return  # dangling or looping link: nothing to copy
    if resolved.is_relative_to(root):
        relative = os.path.relpath(resolved, source.parent.resolve())
        os.symlink(relative, destination)
    elif resolved.is_file():
        _copy_file(resolved, destination, resolved.stat().st_size, budget)
    # A link to a folder outside the project (a shared venv, a data dir) is left out.


def _remove_tree(path: Path) -> None:
    def make_writable_and_retry(function: Callable[..., object], name: str, _: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(name), stat.S_IRWXU)
            os.chmod(name, stat.S_IRWXU)
            function(name)

    shutil.rmtree(path, onerror=make_writable_and_retry)
