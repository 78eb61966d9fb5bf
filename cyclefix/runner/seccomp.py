"""A seccomp filter for candidates' test processes: no way out through the kernel's side doors.

Landlock (up to ABI 7) does not cover reaching a unix socket by its path, so a host service
listening on one outside `/run` (a desktop agent, a database, syslog's datagram socket) stays
reachable from any code that gets past the answer screen and guard, for instance from a thread
or a finalizer the answer left behind. This filter, in the process and its children, whatever
runs the call:
- refuses sockets of any family but IPv4, IPv6 and netlink (no unix, vsock or packet socket),
  and unix socket pairs but connected ones (`socketpair(AF_UNIX, SOCK_DGRAM)` could `sendto`
  any path): multiprocessing's pipes and asyncio's wake-up pair still work;
- refuses new namespaces (`unshare`, `setns`, `clone` with a namespace flag): a user namespace
  would give the process every capability over the kernel's less travelled code;
- refuses io_uring, which opens sockets without the socket syscall, answers `clone3` with
  ENOSYS (the C library falls back to `clone`, whose flags the filter can read), and refuses
  another architecture's syscalls (x86's 32-bit entry on x86_64);
- refuses the kernel's keyrings (`add_key`, `keyctl`, `request_key`), which are shared with
  the host, and the ioctls of loop devices and KVM: a device node opened for reading (no
  capability needed, only its file mode) would attach files to the host's loop devices or
  swap the file under one (red-team pass 9).

Standard library only; runs on Python 3.9 in the project's interpreter (shipped as a private
copy next to the plugin).
"""

from __future__ import annotations

import ctypes
import functools
import platform
import struct
from typing import Any, NamedTuple

_PR_GET_SECCOMP = 21
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

# Classic BPF, as seccomp reads it (linux/filter.h, linux/seccomp.h).
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_EPERM, _EACCES, _ENOSYS = 1, 13, 38
_AF_UNIX, _AF_INET, _AF_INET6, _AF_NETLINK = 1, 2, 10, 16
_SOCK_STREAM, _SOCK_SEQPACKET, _SOCK_TYPE_MASK = 1, 5, 0xF
# An ioctl request's type byte (linux/ioctl.h): "L" is the loop driver's, 0xAE KVM's.
_IOCTL_TYPE_MASK, _IOCTL_LOOP, _IOCTL_KVM = 0xFF00, 0x4C00, 0xAE00
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (NEWTIME shares its bit
# with clone's exit signal, and a time namespace grants nothing).
_CLONE_NAMESPACES = 0x7E020000
# Offsets in struct seccomp_data: the syscall number, the architecture, the first and second
# arguments' low 32 bits (little-endian machines only: both architectures below are).
_NR, _ARCH, _ARG0_LOW, _ARG1_LOW = 0, 4, 16, 24
# x32 syscalls on x86_64 carry this bit in their number: cleared, they are checked as the rest.
_X32_BIT = 0x40000000


class _Machine(NamedTuple):
    arch: int  # its audit architecture
    socket: int
    socketpair: int
    clone: int
    clone3: int
    unshare: int
    setns: int
    io_uring_setup: int
    ioctl: int
    add_key: int
    request_key: int
    keyctl: int


_MACHINES = {
    "x86_64": _Machine(0xC000003E, 41, 53, 56, 435, 272, 308, 425, 16, 248, 249, 250),
    "aarch64": _Machine(0xC00000B7, 198, 199, 220, 435, 97, 268, 425, 29, 217, 218, 219),
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


# An instruction with its jumps named by label (resolved by _assemble), or a label.
_Op = tuple[int, str, str, int]


def program() -> list[tuple[int, int, int, int]]:
    """The filter's instructions (code, jump if true, jump if false, constant)."""
    m = _MACHINES[platform.machine()]
    ops: list[_Op | str] = [
        (_LD_W_ABS, "", "", _ARCH),
        (_JEQ_K, "", "foreign", m.arch),
        (_LD_W_ABS, "", "", _NR),
        (_AND_K, "", "", 0xFFFFFFFF & ~_X32_BIT),
        (_JEQ_K, "refuse", "", m.io_uring_setup),
        (_JEQ_K, "forbid", "", m.unshare),
        (_JEQ_K, "forbid", "", m.setns),
        (_JEQ_K, "forbid", "", m.add_key),
        (_JEQ_K, "forbid", "", m.request_key),
        (_JEQ_K, "forbid", "", m.keyctl),
        (_JEQ_K, "ioctl", "", m.ioctl),
        (_JEQ_K, "foreign", "", m.clone3),
        (_JEQ_K, "clone", "", m.clone),
        (_JEQ_K, "socket", "", m.socket),
        (_JEQ_K, "socketpair", "allow", m.socketpair),
        "clone",
        (_LD_W_ABS, "", "", _ARG0_LOW),
        (_AND_K, "", "", _CLONE_NAMESPACES),
        (_JEQ_K, "allow", "forbid", 0),
        "ioctl",
        (_LD_W_ABS, "", "", _ARG1_LOW),
        (_AND_K, "", "", _IOCTL_TYPE_MASK),
        (_JEQ_K, "forbid", "", _IOCTL_LOOP),
        (_JEQ_K, "forbid", "allow", _IOCTL_KVM),
        "socket",
        (_LD_W_ABS, "", "", _ARG0_LOW),
        (_JEQ_K, "allow", "", _AF_INET),
        (_JEQ_K, "allow", "", _AF_INET6),
        (_JEQ_K, "allow", "refuse", _AF_NETLINK),
        "socketpair",
        (_LD_W_ABS, "", "", _ARG1_LOW),
        (_AND_K, "", "", _SOCK_TYPE_MASK),
        (_JEQ_K, "allow", "", _SOCK_STREAM),
        (_JEQ_K, "allow", "refuse", _SOCK_SEQPACKET),
        "allow",
        (_RET_K, "", "", _RET_ALLOW),
        "refuse",
        (_RET_K, "", "", _RET_ERRNO | _EACCES),
        "forbid",
        (_RET_K, "", "", _RET_ERRNO | _EPERM),
        "foreign",
        (_RET_K, "", "", _RET_ERRNO | _ENOSYS),
    ]
    return _assemble(ops)


def _assemble(ops: list[_Op | str]) -> list[tuple[int, int, int, int]]:
    """Labels resolved to the forward jumps classic BPF takes ("": the next instruction)."""
    at: dict[str, int] = {}
    instructions: list[_Op] = []
    for op in ops:
        if isinstance(op, str):
            at[op] = len(instructions)
        else:
            instructions.append(op)

    def offset(label: str, pc: int) -> int:
        return at[label] - pc - 1 if label else 0

    return [
        (code, offset(true, pc), offset(false, pc), k)
        for pc, (code, true, false, k) in enumerate(instructions)
    ]


def install(libc: Any) -> None:
    """Install the filter in this process (no_new_privs must be set); raises SeccompError."""
    if platform.machine() not in _MACHINES:
        raise SeccompError(f"no syscall filter for {platform.machine()}")
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
