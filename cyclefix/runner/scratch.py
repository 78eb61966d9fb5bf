"""The throwaway copy of a project that a candidate's tests run in (see launch.Confinement).

A candidate's run may write anywhere in the copy; what it leaves must not reach the next run
(a planted `conftest.py` or `.pyc`, a test file rewritten to pass, would decide that run's
verdict, and the diff the user sees would not hold it). `snapshot_scratch` before a run and
`restore_scratch` after it put every file back: new ones removed; changed or removed Python
files written again as the snapshot read them (the copy holds cyclefix's own text of some:
a candidate, adopted progress), other files copied again from the user's project, which the
runs cannot write.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
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
            # chmod follows links: a link a run left in the copy may point anywhere.
            for folder in (os.path.dirname(name), name):
                if not os.path.islink(folder):
                    os.chmod(folder, stat.S_IRWXU)
            function(name)

    shutil.rmtree(path, onerror=make_writable_and_retry)


# A file's identity: a rewrite, a chmod or a utime changes its ctime, which no call can set.
_Identity = tuple[int, int, int, int, int]  # inode, size, mtime_ns, ctime_ns, mode


@dataclass(frozen=True)
class ScratchSnapshot:
    """Every path of a scratch copy and what it was, to put the copy back after a candidate."""

    root: Path
    files: Mapping[str, _Identity]  # files and symlinks, relative to the root
    folders: Mapping[str, int]  # folder -> mode
    sources: Mapping[str, bytes]  # the Python files' bytes


def _identity(info: os.stat_result) -> _Identity:
    return info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_mode


def _walk(root: Path) -> tuple[dict[str, _Identity], dict[str, int]]:
    files: dict[str, _Identity] = {}
    folders: dict[str, int] = {}
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(folder)
        for name in dirnames:
            path = base / name
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                files[rel] = _identity(info)  # a link to a folder is not walked into
            else:
                folders[rel] = info.st_mode
        for name in filenames:
            path = base / name
            files[path.relative_to(root).as_posix()] = _identity(path.lstat())
    return files, folders


def snapshot_scratch(scratch: Path) -> ScratchSnapshot:
    """What the scratch copy holds now, path by path (the Python files' bytes too)."""
    files, folders = _walk(scratch)
    sources = {
        rel: (scratch / rel).read_bytes()
        for rel, identity in files.items()
        if rel.endswith(".py") and stat.S_ISREG(identity[4])
    }
    return ScratchSnapshot(scratch, files, folders, sources)


def restore_scratch(snapshot: ScratchSnapshot, source: Path) -> tuple[str, ...]:
    """Put the scratch copy back as `snapshot` found it: files and folders created since are
    removed; Python files changed or removed since are written again from the snapshot, other
    files copied again from `source` (the user's project). Returns the relative paths it
    removed or put back."""
    root = snapshot.root
    for rel, mode in snapshot.folders.items():
        with contextlib.suppress(OSError):
            now = (root / rel).lstat().st_mode
            # Only a folder itself: chmod follows a link a run may have put in its place.
            if stat.S_ISDIR(now) and stat.S_IMODE(now) != stat.S_IMODE(mode):
                os.chmod(root / rel, stat.S_IMODE(mode))
    files, folders = _walk(root)
    touched: list[str] = []
    for rel in sorted(set(folders) - set(snapshot.folders), key=len):
        if (root / rel).exists():
            _remove_tree(root / rel)
    for rel in files:
        if rel not in snapshot.files and (root / rel).parent.exists():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(root / rel)
            touched.append(rel)
    for rel, identity in snapshot.files.items():
        if files.get(rel) != identity:
            _put_back(root / rel, source / rel, source, snapshot.sources.get(rel))
            touched.append(rel)
    return tuple(touched)


def _put_back(path: Path, original: Path, source: Path, data: bytes | None) -> None:
    """`path` holding `data`, else as the user's project (`source`) has it, copied as
    `scratch_copy` copies it (absent where the project has no such file)."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            _remove_tree(path)
        else:
            os.unlink(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    unlimited = _CopyBudget(max_total=2**62)
    if data is not None:
        path.write_bytes(data)
    elif original.is_symlink():
        _copy_link(original, path, source.resolve(), unlimited)
    elif original.is_file():
        _copy_file(original, path, original.stat().st_size, unlimited)
