"""Which namespaces this machine lets a sandboxed process have, found once by trying."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass


@dataclass(frozen=True)
class Isolation:
    """How processes are wrapped on this machine, found once by trying."""

    prefix: tuple[str, ...]  # e.g. ("/usr/bin/unshare", "--pid", "--fork", ..., "--")
    pid_namespace: bool
    network_isolated: bool
    # A mount namespace with /proc mounted for the pid namespace: no host process is visible
    # there, so no host namespace can be opened through /proc/<pid>/ns.
    private_proc: bool = False
    # Its own IPC namespace: no host SysV shared memory, semaphore or message queue is
    # reachable, and none it makes outlives it.
    ipc_isolated: bool = False


_PRIVATE_PROC = ("--mount", "--mount-proc")
# Strongest first; each is tried with an IPC namespace, then without one.
_UNSHARE_CANDIDATES: tuple[tuple[tuple[str, ...], bool, bool], ...] = (
    (("--pid", "--fork", "--kill-child", "--net", *_PRIVATE_PROC), True, True),
    (
        ("--user", "--map-root-user", "--pid", "--fork", "--kill-child", "--net", *_PRIVATE_PROC),
        True,
        True,
    ),
    (("--pid", "--fork", "--kill-child", "--net"), True, True),
    (("--user", "--map-root-user", "--pid", "--fork", "--kill-child", "--net"), True, True),
    (("--net",), False, True),
    (("--user", "--map-root-user", "--net"), False, True),
    (("--pid", "--fork", "--kill-child"), True, False),
    (("--user", "--map-root-user", "--pid", "--fork", "--kill-child"), True, False),
)


@functools.lru_cache(maxsize=1)
def detect_isolation() -> Isolation:
    """The strongest namespace wrapping `unshare` manages here (tried once per process)."""
    unshare = shutil.which("unshare")
    if unshare is None or os.environ.get("CYCLEFIX_NO_NAMESPACES") == "1":
        return Isolation((), False, False)
    for flags, pid_ns, net in _UNSHARE_CANDIDATES:
        if os.geteuid() == 0 and "--user" in flags:
            continue  # root needs no user namespace, and it would hide our cgroup rights
        for ipc in (("--ipc",), ()):
            argv = (unshare, *flags, *ipc)
            if _succeeds([*argv, "--", "true"], timeout=5):
                private_proc = "--mount-proc" in flags
                return Isolation((*argv, "--"), pid_ns, net, private_proc, bool(ipc))
    return Isolation((), False, False)


@functools.lru_cache(maxsize=4)
def read_only_mounts(isolation: Isolation) -> bool:
    """Whether a process wrapped by `isolation` can have its mounts made read-only around the
    folders it may write (confine.read_only_elsewhere: its own mount namespace, Linux 5.12+),
    tried once."""
    if not isolation.private_proc:
        return False
    host = os.readlink("/proc/self/ns/mnt")
    with tempfile.TemporaryDirectory(prefix="cyclefix-ro-") as folder:
        code = (
            "from cyclefix.runner.confine import read_only_probe; "
            f"read_only_probe({folder!r}, {host!r})"
        )
        return _succeeds([*isolation.prefix, sys.executable, "-c", code], timeout=20)


def _succeeds(argv: list[str], timeout: float) -> bool:
    """Whether `argv` runs and exits 0 within `timeout` seconds (its output dropped)."""
    try:
        probe = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0
