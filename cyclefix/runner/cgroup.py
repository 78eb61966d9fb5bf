"""Cgroups for one sandboxed run: a process limit (pids.max) and a memory limit for the run.

Each run gets a cgroup of its own under ours in each hierarchy we may write to (v1 or v2); the
child joins it between fork and exec, so everything it starts is counted and can be killed at
once (``cgroup.kill`` on v2). Cgroups left by a cyclefix process that died are removed.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import signal
import time
from pathlib import Path


class RunCgroup:
    """A cgroup of one run under one controller, with its limit written before anything joins."""

    _counter = itertools.count()

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version

    @classmethod
    def create(cls, controller: str, limits: dict[int, tuple[str, str]]) -> RunCgroup | None:
        """Make one under our own cgroup of `controller`, writing `limits[version]`
        (file, value); None when there is none we may write to."""
        base = _cgroup_base(controller)
        if base is None:
            return None
        directory, version = base
        if directory not in _STALE_CHECKED:
            _STALE_CHECKED.add(directory)
            _remove_stale_cgroups(directory)
        path = directory / f"cyclefix-{os.getpid()}-{next(cls._counter)}"
        try:
            path.mkdir()
        except OSError:
            return None
        name, value = limits[version]
        try:
            (path / name).write_text(value)
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return cls(path, version)

    def join_path(self) -> bytes:
        """Where the child writes its pid (computed before fork: the child only writes)."""
        return os.fsencode(self.path / "cgroup.procs")

    def pids(self) -> list[int]:
        try:
            text = (self.path / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def kill_all(self, spare: int | None = None) -> None:
        """SIGKILL every process in the cgroup, but `spare` (the unshare that reaps the rest)."""
        if spare is None and self.version == 2 and (self.path / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (self.path / "cgroup.kill").write_text("1")
                return
        for _ in range(50):  # a bomb may still be forking: repeat until empty
            pids = [pid for pid in self.pids() if pid != spare]
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def remove(self, wait: float = 5.0) -> bool:
        """Kill what is left and remove the cgroup; retries while dying processes linger."""
        deadline = time.monotonic() + wait
        while True:
            self.kill_all()
            # A sandboxed cyclefix (cyclefix testing itself) makes cgroups inside ours.
            with contextlib.suppress(OSError):
                for nested in self.path.iterdir():
                    if nested.is_dir():
                        RunCgroup(nested, self.version).remove(wait=0.0)
            try:
                self.path.rmdir()
                return True
            except FileNotFoundError:
                return True
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    return False
            time.sleep(0.02)


def pids_cgroup(max_processes: int) -> RunCgroup | None:
    """pids.max for one run: a fork bomb stops at the limit, not at the machine's."""
    value = str(max_processes)
    return RunCgroup.create("pids", {1: ("pids.max", value), 2: ("pids.max", value)})


def memory_cgroup(megabytes: int) -> RunCgroup | None:
    """A memory limit for all of a run's processes together (they may each be under
    RLIMIT_AS, and still add up to the machine's memory)."""
    value = str(megabytes * 2**20)
    return RunCgroup.create(
        "memory", {1: ("memory.limit_in_bytes", value), 2: ("memory.max", value)}
    )


def _cgroup_base(controller: str) -> tuple[Path, int] | None:
    """Our own cgroup in the hierarchy with `controller`, if we may create children there."""
    if os.environ.get("CYCLEFIX_NO_CGROUP") == "1":
        return None
    try:
        membership = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    v1_path = v2_path = None
    for line in membership:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if controller in parts[1].split(","):
            v1_path = parts[2]
        elif parts[0] == "0" and parts[1] == "":
            v2_path = parts[2]
    for line in mounts:
        fields = line.split()
        if " - " not in line:
            continue
        after = line.split(" - ", 1)[1].split()
        fstype, options = after[0], after[2] if len(after) > 2 else ""
        mount_point = Path(fields[4])
        if fstype == "cgroup" and v1_path is not None and controller in options.split(","):
            directory = mount_point / v1_path.lstrip("/")
            if os.access(directory, os.W_OK):
                return directory, 1
        if fstype == "cgroup2" and v2_path is not None:
            directory = mount_point / v2_path.lstrip("/")
            if _v2_enabled(directory, controller):
                return directory, 2
    return None


def _v2_enabled(directory: Path, controller: str) -> bool:
    try:
        if controller not in (directory / "cgroup.controllers").read_text().split():
            return False
        control = directory / "cgroup.subtree_control"
        if controller not in control.read_text().split():
            control.write_text(
                f"+{controller}"
            )  # refused (EBUSY) in a non-root cgroup with processes
        return os.access(directory, os.W_OK)
    except OSError:
        return False


_STALE_CHECKED: set[Path] = set()


def _remove_stale_cgroups(directory: Path) -> None:
    """Cgroups left by a cyclefix process that died before cleaning up (one try, no waiting:
    one still holding an unreaped zombie stays until its reaper acts)."""
    try:
        names = [p for p in directory.iterdir() if p.name.startswith("cyclefix-")]
    except OSError:
        return
    for path in names:
        owner = path.name.split("-")[1] if path.name.count("-") >= 2 else ""
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            RunCgroup(path, 1).remove(wait=0.0)
