"""A seccomp filter for candidates' test processes: no new unix-domain sockets.

Landlock (up to ABI 7) does not cover connecting to a unix socket by its path, so a host
service listening on one outside `/run` (a desktop agent, a database, a socket in /tmp) stays
reachable from any code that gets past the answer screen and guard, for instance from a thread
or a finalizer the answer left behind. This filter makes `socket(AF_UNIX, ...)` fail with
EACCES in the process and its children, whatever runs it. `socketpair` stays allowed
(multiprocessing's pipes, asyncio's wake-up pair), as do sockets already open. Syscalls of
another architecture (x86's 32-bit entry on x86_64) and io_uring, which can open sockets
without the socket syscall, are refused too.

Standard library only; runs on Python 3.9 in the project's interpreter (shipped as a private
copy next to the plugin).
"""

from __future__ import annotations

import ctypes
import functools
import platform
import struct
from typing import Any

_PR_GET_SECCOMP = 21
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

# Classic BPF, as seccomp reads it (linux/filter.h, linux/seccomp.h).
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_EACCES = 13
_ENOSYS = 38
_AF_UNIX = 1
# Offsets in struct seccomp_data: the syscall number, the architecture, the first argument's
# low 32 bits (little-endian machines only: both architectures below are).
_NR, _ARCH, _ARG0_LOW = 0, 4, 16
# x32 syscalls on x86_64 carry this bit in their number.
_X32_BIT = 0x40000000

# Per machine: its audit architecture, and the numbers of socket and io_uring_setup there.
_MACHINES = {
    "x86_64": (0xC000003E, 41, 425),
    "aarch64": (0xC00000B7, 198, 425),
}


class SeccompError(Exception):
    """The filter could not be installed."""


@functools.cache
def supported() -> bool:
    """Whether this machine can take the filter: a known architecture, seccomp in the kernel."""
    if platform.machine() not in _MACHINES:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    return bool(libc.prctl(_PR_GET_SECCOMP, 0, 0, 0, 0) == 0)


def program() -> list[tuple[int, int, int, int]]:
    """The filter's instructions (code, jump if true, jump if false, constant)."""
    arch, socket_nr, io_uring_setup_nr = _MACHINES[platform.machine()]
    return [
        (_LD_W_ABS, 0, 0, _ARCH),
        (_JEQ_K, 1, 0, arch),
        (_RET_K, 0, 0, _RET_ERRNO | _ENOSYS),  # another architecture's entry
        (_LD_W_ABS, 0, 0, _NR),
        (_JEQ_K, 5, 0, io_uring_setup_nr),
        (_JEQ_K, 1, 0, socket_nr),
        (_JEQ_K, 0, 2, socket_nr | _X32_BIT),
        (_LD_W_ABS, 0, 0, _ARG0_LOW),
        (_JEQ_K, 1, 0, _AF_UNIX),
        (_RET_K, 0, 0, _RET_ALLOW),
        (_RET_K, 0, 0, _RET_ERRNO | _EACCES),
    ]


def deny_unix_sockets(libc: Any) -> None:
    """Install the filter in this process (no_new_privs must be set); raises SeccompError."""
    if platform.machine() not in _MACHINES:
        raise SeccompError(f"no unix-socket filter for {platform.machine()}")
    instructions = program()
    code = b"".join(struct.pack("=HBBI", *i) for i in instructions)
    filters = ctypes.create_string_buffer(code, len(code))
    # struct sock_fprog: unsigned short len, then (aligned) struct sock_filter *filter.
    fprog = struct.pack("@HP", len(instructions), ctypes.addressof(filters))
    fprog_buffer = ctypes.create_string_buffer(fprog, len(fprog))
    libc.prctl.argtypes = None
    result = libc.prctl(
        _PR_SET_SECCOMP,
        ctypes.c_ulong(_SECCOMP_MODE_FILTER),
        ctypes.c_void_p(ctypes.addressof(fprog_buffer)),
        ctypes.c_ulong(0),
        ctypes.c_ulong(0),
    )
    if result != 0:
        raise SeccompError(f"seccomp filter refused (errno {ctypes.get_errno()})")
