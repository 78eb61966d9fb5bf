"""Which namespaces this machine lets a sandboxed process have, found once by trying."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
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


_PRIVATE_PROC = ("--mount", "--mount-proc")
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
        try:
            probe = subprocess.run(
                [unshare, *flags, "--", "true"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return Isolation((unshare, *flags, "--"), pid_ns, net, "--mount-proc" in flags)
    return Isolation((), False, False)
