"""What a confined test process adds to the disks it may write, and a limit on the total.

A candidate may write only in its scratch copy and its private temp folder, each file at most
the file-size limit (sandbox.py); nothing per process bounds how many such files it writes,
so one could fill the disk, or its inode table, until its run ends. The free space and free
inodes of each filesystem holding a writable folder are read at the process's start and
every CHECK_SECONDS while it runs (microseconds). When more than a limit is gone, the folders
themselves are counted (what was made or changed there since the start): another program
filling the same disk meanwhile (a download, a copied model) is not the process's doing, and
what it took is set aside; the process is stopped only for what it wrote itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

# Seconds between two reads of the free space: one statvfs per filesystem, microseconds.
CHECK_SECONDS = 0.1
# Entries a count of the writable folders reads at most: past it, the process made them.
MAX_COUNTED = 1_000_000
# What the disk may lose while the tests run, in limits, whoever took it: a file the process
# deleted but holds open is in no folder to count.
SET_ASIDE_AT_MOST = 8


class Free(NamedTuple):
    """What an unprivileged process may still take on a filesystem."""

    bytes: int
    files: int


def free_space(folder: Path) -> Free:
    stats = os.statvfs(folder)
    return Free(stats.f_bavail * stats.f_frsize, stats.f_favail)


def written_since(folders: Iterable[Path], since: float) -> Free | None:
    """Bytes and entries beneath `folders` made or changed since `since` (a wall-clock time),
    links not followed; at most MAX_COUNTED entries are read. None: a folder there cannot be
    read (made so to hide what it holds)."""
    pending = [str(f) for f in folders]
    bytes_written = files = seen = 0
    while pending and seen < MAX_COUNTED:
        try:
            entries = os.scandir(pending.pop())
        except PermissionError:
            return None
        except OSError:
            continue
        with entries:
            for entry in entries:
                seen += 1
                try:
                    stat = entry.stat(follow_symlinks=False)
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                except OSError:
                    continue
                if stat.st_ctime >= since:
                    bytes_written += stat.st_blocks * 512
                    files += 1
    if seen >= MAX_COUNTED:
        return Free(bytes_written, max(files, MAX_COUNTED))
    return Free(bytes_written, files)


@dataclass
class DiskUse:
    """The disk space and inodes a process has taken since `start`, against its limits."""

    limit_bytes: int
    limit_files: int = 0
    # The filesystems watched: one folder on each, and what was free there at the start.
    free_at_start: dict[Path, Free] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    measure: Callable[[Path], Free] = free_space
    # What the process itself wrote since its start, counted in its folders (None: hidden).
    count_own: Callable[[], Free | None] = lambda: Free(0, 0)
    # What was free at the start, never set aside (SET_ASIDE_AT_MOST).
    free_at_first: dict[Path, Free] = field(default_factory=dict)
    _next_check: float = 0.0

    @classmethod
    def start(
        cls,
        folders: Iterable[Path],
        limit_mb: int,
        limit_files: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        measure: Callable[[Path], Free] = free_space,
        count_own: Callable[[], Free | None] | None = None,
    ) -> DiskUse:
        """Watch the filesystems of `folders` (each once, however many folders share it);
        with no limit, nothing is read."""
        folders = list(folders)
        if not (limit_mb or limit_files):
            return cls(0, 0)
        # A second early: ctime's granularity is the filesystem's, not the clock's.
        since = time.time() - 1.0
        count = count_own or (lambda: written_since(folders, since))
        watch = cls(limit_mb << 20, limit_files, clock=clock, measure=measure, count_own=count)
        devices: set[int] = set()
        for folder in folders:
            try:
                device = os.stat(folder).st_dev
                if device not in devices:
                    watch.free_at_start[folder] = measure(folder)
                    devices.add(device)
            except OSError:
                continue  # a folder that is gone holds nothing to watch
        watch.free_at_first = dict(watch.free_at_start)
        watch._next_check = clock() + CHECK_SECONDS
        return watch

    def taken(self, first: bool = False) -> Free:
        """Bytes and inodes taken since the start (the first one: `first`, else since what was
        last set aside), on the watched filesystem that lost most."""
        lost_bytes = lost_files = 0
        for folder, free in (self.free_at_first if first else self.free_at_start).items():
            try:
                now = self.measure(folder)
            except OSError:
                continue
            lost_bytes = max(lost_bytes, free.bytes - now.bytes)
            lost_files = max(lost_files, free.files - now.files)
        return Free(lost_bytes, lost_files)

    def exceeded(self, *, now: bool = False) -> str:
        """Why the process must stop ("" while under the limits, or between two checks unless
        `now`: a process that filled the disk and exited between two checks is caught too)."""
        if not (self.limit_bytes or self.limit_files) or not self.free_at_start:
            return ""
        if not now and self.clock() < self._next_check:
            return ""
        self._next_check = self.clock() + CHECK_SECONDS
        if not self._over(self.taken()):
            return ""
        own = self.count_own()
        if own is None:
            return "the test process made a folder the disk count cannot read"
        if self._over(self.taken(first=True), SET_ASIDE_AT_MOST):
            lost = self.taken(first=True)
            return (
                f"the disk lost over {SET_ASIDE_AT_MOST} times the limit while the tests ran "
                f"({lost.bytes >> 20} MiB, {lost.files} files)"
            )
        if self.limit_bytes and own.bytes > self.limit_bytes:
            return (
                f"the test process wrote over {self.limit_bytes >> 20} MiB to disk "
                f"({own.bytes >> 20} MiB)"
            )
        if self.limit_files and own.files > self.limit_files:
            return f"the test process made over {self.limit_files} files on disk ({own.files})"
        self._set_aside(own)
        return ""

    def _over(self, taken: Free, times: int = 1) -> bool:
        return bool(
            (self.limit_bytes and taken.bytes > times * self.limit_bytes)
            or (self.limit_files and taken.files > times * self.limit_files)
        )

    def _set_aside(self, own: Free) -> None:
        """Another program took the rest: from now on only more than that counts."""
        for folder in self.free_at_start:
            try:
                now = self.measure(folder)
            except OSError:
                continue
            self.free_at_start[folder] = Free(now.bytes + own.bytes, now.files + own.files)
