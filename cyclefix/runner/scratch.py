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
import itertools
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
        remove_tree(parent)


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


def remove_tree(path: Path) -> None:
    """Remove `path` and everything under it, never following a link, however deep.

    A candidate's run may leave folders nested past Python's recursion limit (shutil.rmtree
    recurses on 3.11), past PATH_MAX, or without permissions: each folder met is moved up
    into `path` under a fresh name and emptied there, so neither the recursion, the paths nor
    the open folders grow with the depth. Errors are skipped: what cannot go stays.
    """
    try:
        info = path.lstat()
    except OSError:
        return
    if not stat.S_ISDIR(info.st_mode):
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    with contextlib.suppress(OSError):
        os.chmod(path, stat.S_IRWXU)
    try:
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        fresh = itertools.count()
        pending: list[str | None] = [None]  # None: `path` itself
        while pending:
            name = pending.pop()
            _empty_folder(top, name, lambda: f".cyclefix-removing-{next(fresh)}", pending)
            if name is not None:
                with contextlib.suppress(OSError):
                    os.rmdir(name, dir_fd=top)
    finally:
        os.close(top)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _empty_folder(
    top: int, name: str | None, fresh_name: Callable[[], str], pending: list[str | None]
) -> None:
    """Unlink the files and links of folder `name` in `top` (None: `top` itself) and move its
    folders up into `top`, each added to `pending`."""
    try:
        if name is not None:
            if not stat.S_ISDIR(os.stat(name, dir_fd=top, follow_symlinks=False).st_mode):
                os.unlink(name, dir_fd=top)
                return
            os.chmod(name, stat.S_IRWXU, dir_fd=top)  # checked above: a folder, not a link
            folder = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
        else:
            folder = os.dup(top)
    except OSError:
        return
    try:
        with os.scandir(folder) as entries:
            children = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        for child, is_folder in children:
            with contextlib.suppress(OSError):
                if not is_folder:
                    os.unlink(child, dir_fd=folder)
                elif name is None:
                    pending.append(child)  # already in `top`
                else:
                    pending.append(_move_up(folder, child, top, fresh_name))
    except OSError:
        pass
    finally:
        os.close(folder)


def _move_up(folder: int, child: str, top: int, fresh_name: Callable[[], str]) -> str:
    """Move folder `child` of `folder` into `top` under a fresh name (a run may have taken
    one: the next is tried); that name."""
    for _ in range(8):
        moved = fresh_name()
        try:
            os.rename(child, moved, src_dir_fd=folder, dst_dir_fd=top)
            return moved
        except OSError:
            continue
    raise OSError(f"cannot move {child} out of the way")


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
    """Every file, link and folder under `root`, without following links or recursing (a run
    may nest folders past the recursion limit); what cannot be read is left out."""
    files: dict[str, _Identity] = {}
    folders: dict[str, int] = {}
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as scan:
                entries = list(scan)
        except OSError:
            continue
        for entry in entries:
            path = Path(entry.path)
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            rel = path.relative_to(root).as_posix()
            if stat.S_ISDIR(info.st_mode):
                folders[rel] = info.st_mode
                pending.append(path)
            else:
                files[rel] = _identity(info)  # a link to a folder is not walked into
    return files, folders


def _real_path(root: Path, rel: str) -> bool:
    """Whether no folder on the way from `root` to `rel` is something else now, such as a link
    a run put in its place (chmod and writes through it would reach outside the copy); one
    that is gone is made again, as a folder."""
    path = root
    for part in Path(rel).parts[:-1]:
        path = path / part
        try:
            if not stat.S_ISDIR(path.lstat().st_mode):
                return False
        except FileNotFoundError:
            return True
        except OSError:
            return False
    return True


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
    files, folders = _walk(root)
    touched: list[str] = []
    for rel in sorted(set(folders) - set(snapshot.folders), key=len):
        remove_tree(root / rel)
    for rel in files:  # new files, and links put where a file or folder was
        if rel not in snapshot.files:
            with contextlib.suppress(OSError):
                os.unlink(root / rel)
            touched.append(rel)
    for rel in sorted(set(snapshot.folders) - set(folders), key=len):
        if _real_path(root, rel):
            with contextlib.suppress(OSError):
                (root / rel).mkdir(parents=True, exist_ok=True)
    for rel, identity in snapshot.files.items():
        if files.get(rel) != identity and _real_path(root, rel):
            _put_back(root / rel, source / rel, source, snapshot.sources.get(rel))
            touched.append(rel)
    for rel, mode in snapshot.folders.items():
        with contextlib.suppress(OSError):
            now = (root / rel).lstat().st_mode
            # The folder itself, reached through folders only: chmod follows links.
            changed = stat.S_ISDIR(now) and stat.S_IMODE(now) != stat.S_IMODE(mode)
            if changed and _real_path(root, rel):
                os.chmod(root / rel, stat.S_IMODE(mode))
    return tuple(touched)


def _put_back(path: Path, original: Path, source: Path, data: bytes | None) -> None:
    """`path` holding `data`, else as the user's project (`source`) has it, copied as
    `scratch_copy` copies it (absent where the project has no such file)."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            remove_tree(path)
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
