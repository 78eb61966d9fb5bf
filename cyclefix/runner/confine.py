"""Confine a test process from the inside, before pytest imports anything: Landlock and capabilities.

The runner's launcher calls ``apply_from_environment()`` first thing in the test process, after
``unshare`` has made its namespaces and before the plugin, pytest or any project code is
imported. It reads what to enforce from ``CYCLEFIX_CONFINE`` (a JSON ``ConfinePlan``) and:

1. brings the loopback interface of a fresh network namespace up (needs CAP_NET_ADMIN, so
   before the capabilities go);
2. maps ``sys.path`` entries and setuptools editable-install finders that point into the real
   project onto the scratch copy, so a candidate imports the code under test, not the user's;
3. in its own mount namespace, makes every mount read-only but the writable folders (Landlock
   covers no metadata: chmod, utime, xattrs) and covers ``/run``, where host services'
   unix sockets live, with an empty tmpfs;
4. sets no_new_privs and, for runs on a scratch copy, a Landlock domain: writes only beneath
   the scratch copy, the run's private temp folder and ``/dev/null``; no TCP bind or connect
   (ABI 4+); no signals to, or abstract unix sockets of, processes outside it (ABI 6+). Reads
   and execution stay allowed everywhere (the interpreter and site-packages must load); and a
   seccomp filter: no unix, vsock or packet sockets and no new namespaces (seccomp.py);
5. drops every capability (bounding set, ambient, permitted, effective, inheritable), also as
   root, and checks ``/proc/self/status`` that they are gone.

A step that was asked for and fails ends the process with ``CONFINE_EXIT_CODE`` and one line on
stderr: a run is never quietly less confined than the runner reported. The module is standard
library only and runs on Python 3.9, since it runs in the project's interpreter. The runner
imports it too, to ask the kernel which Landlock ABI it has (``landlock_abi``).
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
import sys
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cyclefix.runner import protocol, seccomp
else:
    try:  # the runner's private copies, in the test process
        import _cyclefix_protocol as protocol
        import _cyclefix_seccomp as seccomp
    except ImportError:
        from cyclefix.runner import protocol, seccomp

# Landlock's system calls (the same numbers on every architecture that has them).
_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

# Filesystem rights (linux/landlock.h); the ABI that introduced each is noted.
_FS_WRITE_FILE = 1 << 1
_FS_REMOVE_DIR = 1 << 4
_FS_REMOVE_FILE = 1 << 5
_FS_MAKE_CHAR = 1 << 6
_FS_MAKE_DIR = 1 << 7
_FS_MAKE_REG = 1 << 8
_FS_MAKE_SOCK = 1 << 9
_FS_MAKE_FIFO = 1 << 10
_FS_MAKE_BLOCK = 1 << 11
_FS_MAKE_SYM = 1 << 12
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_NET_BIND_TCP = 1 << 0  # ABI 4
_NET_CONNECT_TCP = 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1  # ABI 6

_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAPABILITY_VERSION_3 = 0x20080522

# Files outside the writable folders that ordinary programs open for writing.
WRITABLE_DEVICES = ("/dev/null",)


@dataclass(frozen=True)
class ConfinePlan:
    """What the launcher enforces in one test process."""

    # Folders the process may write beneath; empty: no Landlock filesystem rules (a run in place).
    writable: tuple[str, ...] = ()
    # Refuse TCP bind and connect (Landlock ABI 4+).
    deny_tcp: bool = False
    # Bring `lo` up first (a fresh network namespace has it down).
    loopback_up: bool = False
    # (real project, scratch copy): import paths into the first are moved to the second.
    remap: tuple[str, str] | None = None
    # Drop every capability and set no_new_privs.
    drop_capabilities: bool = True
    # Mount a fresh tmpfs on /dev/shm (only ever asked inside a private mount namespace) and
    # let the process write there: multiprocessing's semaphores and shared memory live there.
    private_shm: bool = False
    # Make every mount read-only but the writable folders (only ever asked inside a private
    # mount namespace): Landlock covers no metadata, a read-only mount refuses chmod, utime,
    # chown and xattrs too.
    read_only_elsewhere: bool = False
    # The runner's own mount namespace ("mnt:[4026531841]"): one the process must not be in
    # to touch any mount.
    host_mounts: str = ""
    # Folders kept read-only beneath a writable one (a warm worker's temp folder may hold the
    # user's project).
    kept_read_only: tuple[str, ...] = ()
    # The seccomp filter (seccomp.py): no unix sockets, which Landlock leaves open by path,
    # and no new namespaces.
    syscall_filter: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ConfinePlan:
        data = json.loads(text)
        remap = data.get("remap")
        return cls(
            writable=tuple(str(p) for p in data.get("writable", ())),
            deny_tcp=bool(data.get("deny_tcp")),
            loopback_up=bool(data.get("loopback_up")),
            remap=(str(remap[0]), str(remap[1])) if remap else None,
            drop_capabilities=bool(data.get("drop_capabilities", True)),
            private_shm=bool(data.get("private_shm")),
            read_only_elsewhere=bool(data.get("read_only_elsewhere")),
            host_mounts=str(data.get("host_mounts", "")),
            kept_read_only=tuple(str(p) for p in data.get("kept_read_only", ())),
            syscall_filter=bool(data.get("syscall_filter")),
        )


class ConfinementError(Exception):
    """A layer that was asked for could not be put in place."""


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        raise ConfinementError(f"no Landlock or capabilities on {sys.platform}")
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> int:
    if result < 0:
        error = ctypes.get_errno()
        raise ConfinementError(f"{what}: {os.strerror(error)}")
    return result


def landlock_abi() -> int:
    """The Landlock ABI version of the running kernel; 0 when there is none (or it is off)."""
    try:
        libc = _libc()
    except (ConfinementError, OSError):
        return 0
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(
        ctypes.c_long(_SYS_CREATE_RULESET),
        None,
        ctypes.c_size_t(0),
        ctypes.c_uint32(_CREATE_RULESET_VERSION),
    )
    return int(version) if version > 0 else 0


def apply_from_environment() -> bool:
    """The launcher's entry point: enforce the plan in ``CYCLEFIX_CONFINE``, or exit; whether
    a private /dev/shm was mounted."""
    text = os.environ.pop(protocol.ENV_CONFINE, None)
    if not text:
        return False
    try:
        return apply(ConfinePlan.from_json(text))
    except (ConfinementError, OSError, ValueError) as exc:
        sys.stderr.write(f"cyclefix: cannot confine the test process: {exc}\n")
        sys.stderr.flush()
        os._exit(protocol.CONFINE_EXIT_CODE)


def apply(plan: ConfinePlan) -> bool:
    """Put the plan in place in this (single-threaded) process; raises ConfinementError.
    Whether a private /dev/shm was mounted."""
    if plan.loopback_up:
        _loopback_up()
    if plan.remap is not None:
        remap_imports(plan.remap[0], plan.remap[1])
    if not (plan.writable or plan.drop_capabilities or plan.syscall_filter):
        return False
    libc = _libc()
    writable = plan.writable
    # Both need CAP_SYS_ADMIN: before Landlock and the capabilities go; /dev/shm after, so
    # that its fresh tmpfs is not made read-only.
    if plan.read_only_elsewhere:
        if not plan.host_mounts or mount_namespace() == plan.host_mounts:
            raise ConfinementError("read-only mounts asked outside a private mount namespace")
        read_only_elsewhere(libc, writable, plan.kept_read_only)
        hide_host_sockets(libc)
        if not any(_beneath(folder, DEV_FOLDER) for folder in writable):
            private_dev(libc)
    # Where the mount fails the host's /dev/shm stays read-only: more confined, never less,
    # so the run goes on.
    shm_mounted = plan.private_shm and _mount_private_shm(libc)
    if shm_mounted:
        writable = (*writable, SHM_FOLDER)
    libc.prctl.restype = ctypes.c_int
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    if writable:
        _restrict_writes(libc, writable, plan.deny_tcp)
    if plan.syscall_filter:
        try:
            seccomp.install(libc)
        except seccomp.SeccompError as exc:
            raise ConfinementError(str(exc)) from exc
    if plan.drop_capabilities:
        _drop_capabilities(libc)
    return shm_mounted


# ---------------------------------------------------------------- /dev/shm

SHM_FOLDER = "/dev/shm"
_SHM_SIZE = "size=256m,mode=1777"
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8


def _mount_private_shm(libc: Any) -> bool:
    """A tmpfs of the process's own on /dev/shm (the mount namespace keeps it from the host);
    False where the kernel refuses the mount."""
    libc.mount.restype = ctypes.c_int
    flags = ctypes.c_ulong(_MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    mounted = libc.mount(b"tmpfs", SHM_FOLDER.encode(), b"tmpfs", flags, _SHM_SIZE.encode())
    return bool(mounted == 0)


# ---------------------------------------------------------------- read-only mounts

_SYS_MOUNT_SETATTR = 442  # Linux 5.12+, the same number on every architecture
_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 0x1
_MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def mount_namespace() -> str:
    """This process's mount namespace, as /proc names it ("mnt:[4026531841]")."""
    return os.readlink("/proc/self/ns/mnt")


def read_only_elsewhere(libc: Any, writable: tuple[str, ...], kept: tuple[str, ...] = ()) -> None:
    """Every mount of this (private) mount namespace read-only, but the `writable` folders
    (and not the `kept` folders beneath them); raises ConfinementError."""
    libc.mount.restype = ctypes.c_int
    libc.syscall.restype = ctypes.c_long
    # Nothing done here may reach the host's mounts, whatever propagation unshare left.
    _check(libc.mount(None, b"/", None, ctypes.c_ulong(_MS_REC | _MS_PRIVATE), None), "mount")
    folders = [os.path.realpath(p) for p in writable if os.path.isdir(p)]
    # Each its own mount, so that it can stay writable (or read-only beneath one).
    for folder in [*folders, *(os.path.realpath(p) for p in kept if os.path.isdir(p))]:
        path = folder.encode()
        _check(libc.mount(path, path, None, ctypes.c_ulong(_MS_BIND | _MS_REC), None), "bind")
    _check(_mount_setattr(libc, "/", _AT_RECURSIVE, set_flags=_MOUNT_ATTR_RDONLY), "read-only /")
    for folder in folders:
        # Only the folder's own mount: one mounted inside it stays read-only (more confined),
        # and one the kernel locked read-only cannot fail the run.
        _mount_setattr(libc, folder, 0, clear_flags=_MOUNT_ATTR_RDONLY)
    # The working folder was entered before its bind mount: enter it again, through the mount.
    os.chdir(os.getcwd())


def _mount_setattr(libc: Any, path: str, at: int, set_flags: int = 0, clear_flags: int = 0) -> int:
    attr = _MountAttr(set_flags, clear_flags, 0, 0)
    return int(
        libc.syscall(
            ctypes.c_long(_SYS_MOUNT_SETATTR),
            ctypes.c_int(_AT_FDCWD),
            path.encode(),
            ctypes.c_uint(at),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        )
    )


# Where the host's services listen (docker, dbus, systemd): no Landlock right covers a connect
# to a pathname unix socket, so the folder is covered by an empty one.
HOST_SOCKETS = "/run"


def hide_host_sockets(libc: Any) -> None:
    """An empty read-only tmpfs over HOST_SOCKETS (in a private mount namespace)."""
    if not os.path.isdir(HOST_SOCKETS) or os.path.islink(HOST_SOCKETS):
        return
    flags = ctypes.c_ulong(_MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    mounted = libc.mount(b"tmpfs", HOST_SOCKETS.encode(), b"tmpfs", flags, b"size=4k,mode=755")
    _check(mounted, f"mount over {HOST_SOCKETS}")


# The host's device nodes a test may use, bound into a /dev of the process's own: the rest
# (loop devices, disks, KVM, the host's terminals) is out of reach even to a root without
# capabilities, whom the nodes' file modes would let in (red-team pass 9).
DEV_FOLDER = "/dev"
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
)


def _beneath(path: str, folder: str) -> bool:
    real = os.path.realpath(path)
    return real == folder or real.startswith(folder + "/")


def private_dev(libc: Any) -> None:
    """A tmpfs over /dev holding only DEV_NODES, DEV_LINKS and an empty `shm` (in a private
    mount namespace, before the capabilities go); raises ConfinementError."""
    kept: dict[str, int] = {}
    for name in DEV_NODES:
        try:
            kept[name] = os.open(f"{DEV_FOLDER}/{name}", os.O_PATH)
        except OSError:
            continue  # not on this host: not in the sandbox either
    try:
        flags = ctypes.c_ulong(_MS_NOSUID | _MS_NOEXEC)
        mounted = libc.mount(b"tmpfs", DEV_FOLDER.encode(), b"tmpfs", flags, b"size=64k,mode=755")
        _check(mounted, f"mount over {DEV_FOLDER}")
        for name, fd in kept.items():
            node = f"{DEV_FOLDER}/{name}"
            os.close(os.open(node, os.O_CREAT | os.O_WRONLY, 0o666))
            source = f"/proc/self/fd/{fd}".encode()
            _check(libc.mount(source, node.encode(), None, ctypes.c_ulong(_MS_BIND), None), node)
        for name, target in DEV_LINKS:
            os.symlink(target, f"{DEV_FOLDER}/{name}")
        os.mkdir(f"{DEV_FOLDER}/shm", 0o1777)
        # Read-only from now on: nothing is added beside the nodes.
        remount = ctypes.c_ulong(_MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NOEXEC)
        _check(libc.mount(None, DEV_FOLDER.encode(), None, remount, None), "read-only /dev")
    finally:
        for fd in kept.values():
            os.close(fd)


def read_only_probe(folder: str, host_mounts: str) -> None:
    """Exit 0 when, in this fresh private mount namespace (not `host_mounts`), the mounts can
    be made read-only around `folder` and it stays writable (the runner asks once, in a child
    of `unshare`)."""
    try:
        if mount_namespace() == host_mounts:
            raise ConfinementError("not in a private mount namespace")
        libc = _libc()
        read_only_elsewhere(libc, (folder,))
        hide_host_sockets(libc)
        with open(os.path.join(folder, "written"), "w") as handle:
            handle.write("x")
    except (ConfinementError, OSError) as exc:
        sys.stderr.write(f"{exc}\n")
        os._exit(1)
    os._exit(0)


# ---------------------------------------------------------------- Landlock


def _restrict_writes(libc: Any, writable: tuple[str, ...], deny_tcp: bool) -> None:
    abi = landlock_abi()
    if abi < 1:
        raise ConfinementError("the kernel has no Landlock")
    folder_rights = (
        _FS_WRITE_FILE
        | _FS_REMOVE_DIR
        | _FS_REMOVE_FILE
        | _FS_MAKE_CHAR
        | _FS_MAKE_DIR
        | _FS_MAKE_REG
        | _FS_MAKE_SOCK
        | _FS_MAKE_FIFO
        | _FS_MAKE_BLOCK
        | _FS_MAKE_SYM
    )
    file_rights = _FS_WRITE_FILE
    if abi >= 2:
        folder_rights |= _FS_REFER
    if abi >= 3:
        folder_rights |= _FS_TRUNCATE
        file_rights |= _FS_TRUNCATE
    net_rights = _NET_BIND_TCP | _NET_CONNECT_TCP if deny_tcp and abi >= 4 else 0
    if deny_tcp and abi < 4:
        raise ConfinementError(f"Landlock ABI {abi} cannot refuse TCP (needs 4)")
    scopes = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    # struct landlock_ruleset_attr grew with the ABI: pass only the fields this kernel knows.
    attr_fields = (
        [folder_rights] + ([net_rights] if abi >= 4 else []) + ([scopes] if abi >= 6 else [])
    )
    attr = ctypes.create_string_buffer(struct.pack(f"={len(attr_fields)}Q", *attr_fields))
    libc.syscall.restype = ctypes.c_long
    ruleset = _check(
        libc.syscall(
            ctypes.c_long(_SYS_CREATE_RULESET),
            attr,
            ctypes.c_size_t(len(attr.raw)),
            ctypes.c_uint32(0),
        ),
        "landlock_create_ruleset",
    )
    try:
        for path in writable:
            _allow_beneath(libc, ruleset, path, folder_rights)
        for device in WRITABLE_DEVICES:
            if os.path.exists(device):
                _allow_beneath(libc, ruleset, device, file_rights)
        _check(
            libc.syscall(
                ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)
            ),
            "landlock_restrict_self",
        )
    finally:
        os.close(ruleset)


def _allow_beneath(libc: Any, ruleset: int, path: str, rights: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        # struct landlock_path_beneath_attr is packed: u64 allowed_access, s32 parent_fd.
        rule = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd))
        _check(
            libc.syscall(
                ctypes.c_long(_SYS_ADD_RULE),
                ctypes.c_int(ruleset),
                ctypes.c_int(_RULE_PATH_BENEATH),
                rule,
                ctypes.c_uint32(0),
            ),
            f"landlock_add_rule {path}",
        )
    finally:
        os.close(fd)


# ---------------------------------------------------------------- capabilities


def _drop_capabilities(libc: Any) -> None:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            last_cap = int(handle.read())
    except (OSError, ValueError):
        last_cap = 63
    bounding_dropped = True
    for cap in range(last_cap + 1):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            bounding_dropped = False  # no CAP_SETPCAP: then we hold no capability to drop
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = ctypes.create_string_buffer(struct.pack("=Ii", _CAPABILITY_VERSION_3, 0))
    data = ctypes.create_string_buffer(bytes(24))  # two zeroed {effective, permitted, inheritable}
    _check(libc.capset(header, data), "capset")
    left = _capabilities_held(bounding=bounding_dropped)
    if left:
        raise ConfinementError(f"capabilities still held: {', '.join(left)}")


def _capabilities_held(*, bounding: bool) -> list[str]:
    names = ["CapInh", "CapPrm", "CapEff", "CapAmb"] + (["CapBnd"] if bounding else [])
    held = []
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in names and int(value.strip(), 16) != 0:
                held.append(key)
    return held


# ---------------------------------------------------------------- network and imports


def _loopback_up() -> None:
    """A fresh network namespace has its loopback down; bring it up so localhost works."""
    import fcntl
    import socket

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack("16sh", b"lo", 0)
            flags = struct.unpack("16sh", fcntl.ioctl(sock, siocgifflags, request))[1]
            fcntl.ioctl(sock, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))
    except OSError:
        pass  # not allowed here: tests that need localhost will say so themselves


def _moved(path: str, original: str, copy: str) -> str | None:
    """`path` inside `original`, as the same place inside `copy`; None when outside, or when
    the copy has no such place (a virtual environment in the project is not copied)."""
    if path == original:
        return copy
    if path.startswith(original.rstrip(os.sep) + os.sep):
        moved = copy + path[len(original.rstrip(os.sep)) :]
        return moved if os.path.exists(moved) else None
    return None


def remap_imports(original: str, copy: str) -> list[str]:
    """Point sys.path entries and editable-install finders from the real project to the copy.

    Returns what was moved. An absolute PYTHONPATH entry, a ``.pth`` line or a setuptools
    ``__editable__`` finder's MAPPING that names the project would otherwise make a candidate
    import the user's files instead of the scratch copy it was written into.
    """
    original = os.path.realpath(original)
    moved: list[str] = []
    for index, entry in enumerate(list(sys.path)):
        target = _moved(os.path.realpath(entry) if entry else entry, original, copy)
        if target is not None:
            sys.path[index] = target
            moved.append(entry)
    for name, module in list(sys.modules.items()):
        mapping = getattr(module, "MAPPING", None)
        if not name.startswith("__editable__") or not isinstance(mapping, dict):
            continue
        for package, location in list(mapping.items()):
            target = _moved(os.path.realpath(str(location)), original, copy)
            if target is not None:
                mapping[package] = target
                moved.append(f"{package} -> {location}")
    return moved
