"""What a confined test process adds to the disks it may write, and a limit on the total.

A candidate may write only in its scratch copy and its private temp folder, each file at most
the file-size limit (sandbox.py); nothing per process bounds how many such files it writes,
so one could fill the disk until its run ends. The free space of each filesystem holding a
writable folder is read at the process's start and every CHECK_SECONDS while it runs; the
process is stopped once it has taken more than the limit. Other programs writing to the same
disk at that moment count too: the limit is set far above what a test suite writes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

# Seconds between two reads of the free space: one statvfs per filesystem, microseconds.
CHECK_SECONDS = 0.1


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged process may still write on `folder`'s filesystem."""
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


@dataclass
class DiskUse:
    """The disk space a process has taken since `start`, checked against `limit_bytes`."""

    limit_bytes: int
    # The filesystems watched: one folder on each, and its free bytes at the start.
    free_at_start: dict[Path, int] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    measure: Callable[[Path], int] = free_bytes
    _next_check: float = 0.0

    @classmethod
    def start(
        cls,
        folders: Iterable[Path],
        limit_mb: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        measure: Callable[[Path], int] = free_bytes,
    ) -> DiskUse:
        """Watch the filesystems of `folders` (each once, however many folders share it)."""
        watch = cls(limit_bytes=limit_mb << 20, clock=clock, measure=measure)
        devices: set[int] = set()
        for folder in folders:
            try:
                device = os.stat(folder).st_dev
                if device not in devices:
                    watch.free_at_start[folder] = measure(folder)
                    devices.add(device)
            except OSError:
                continue  # a folder that is gone holds nothing to watch
        watch._next_check = clock() + CHECK_SECONDS
        return watch

    def taken(self) -> int:
        """Bytes taken since the start on the watched filesystem that lost the most."""
        lost = 0
        for folder, free in self.free_at_start.items():
            try:
                lost = max(lost, free - self.measure(folder))
            except OSError:
                continue
        return lost

    def exceeded(self, *, now: bool = False) -> str:
        """Why the process must stop ("" while under the limit, or between two checks unless
        `now`: a process that filled the disk and exited between two checks is caught too)."""
        if not self.limit_bytes or not self.free_at_start:
            return ""
        if not now and self.clock() < self._next_check:
            return ""
        self._next_check = self.clock() + CHECK_SECONDS
        taken = self.taken()
        if taken <= self.limit_bytes:
            return ""
        return (
            f"the test process wrote over {self.limit_bytes >> 20} MiB to disk ({taken >> 20} MiB)"
        )
