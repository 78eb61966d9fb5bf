"""Run untrusted code (the user's tests, a model's candidate) so that it cannot hurt cyclefix.

What a sandboxed process gets, each part falling back cleanly where the OS refuses it (which
namespaces this machine allows is isolation.py's):
- its own session and process group, and where possible its own pid namespace
  (``unshare --pid --fork --kill-child``): when the test process dies, the kernel kills every
  process it left behind, even ones that called setsid();
- its own network namespace (``unshare --net``): no network; ``network_isolated`` says whether
  this worked;
- a process limit: a cgroup ``pids.max`` when a pids cgroup (v1 or v2) is writable, else
  RLIMIT_NPROC when not running as root (root ignores it), else a watcher that kills the run
  when the machine's task count jumps;
- rlimits: address space, CPU seconds, file size, no core files;
- output read into a bounded head-and-tail buffer (a 1 GB print costs no memory), by the
  waiting thread itself: no reader threads, and an exit is noticed at once through a pidfd;
- a wall-clock cap and a cancel event, both killing the whole process tree at once.

The throwaway copy of a project that candidate code runs in is scratch.py's.
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cyclefix.errors import CyclefixError
from cyclefix.runner.cgroup import memory_cgroup, pids_cgroup
from cyclefix.runner.isolation import detect_isolation

ProcessLimitKind = Literal["cgroup", "rlimit", "watch", "none"]


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for one run; 0 turns a limit off."""

    # Seconds one test may take (setup + call); a hang becomes outcome "timeout".
    per_test_timeout: float = 3.0
    # Seconds the whole run may take before every process of it is killed.
    run_timeout: float = 120.0
    # Timed-out tests after which the run stops (the rest are not run); 0: run them all.
    max_hangs: int = 0
    # Address space of each process, MiB.
    memory_mb: int = 2048
    # Memory of all the run's processes together, MiB, where a memory cgroup is writable.
    run_memory_mb: int = 4096
    # Open files of each process.
    open_files: int = 1024
    # CPU seconds of each process.
    cpu_seconds: int = 300
    # Largest file a process may write, MiB.
    file_size_mb: int = 64
    # What a confined run's process may add to the disk of its scratch copy and temp folder
    # in all, MiB (runner.disk_use).
    disk_mb: int = 1024
    # Files (inodes) it may add there in all.
    disk_files: int = 100_000
    # Processes (and threads) the run may have at once.
    max_processes: int = 64
    # Characters of the run's own output kept (head and tail).
    output_limit: int = 200_000


# ---------------------------------------------------------------- bounded output


class HeadTailBuffer:
    """Keeps the first and last `limit / 2` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self._head_limit = max(limit // 2, 1)
        self._tail_limit = max(limit - self._head_limit, 1)
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0
        self._lock = threading.Lock()

    def feed(self, data: bytes) -> None:
        with self._lock:
            self.total += len(data)
            room = self._head_limit - len(self._head)
            if room > 0:
                self._head += data[:room]
                data = data[room:]
            if data:
                self._tail += data
                if len(self._tail) > 2 * self._tail_limit:
                    del self._tail[: len(self._tail) - self._tail_limit]

    def read_from(self, fd: int) -> bool:
        """Take what the (non-blocking) pipe holds now; False at end of file."""
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            self.feed(chunk)

    def text(self) -> str:
        with self._lock:
            tail = bytes(self._tail[-self._tail_limit :])
            cut = self.total - len(self._head) - len(tail)
            head = bytes(self._head)
        if cut <= 0:
            return (head + tail).decode("utf-8", "replace")
        return (
            head.decode("utf-8", "replace")
            + f"\n... [{cut} bytes cut] ...\n"
            + tail.decode("utf-8", "replace")
        )


# ---------------------------------------------------------------- /proc probes


def _children_of(pid: int) -> list[int]:
    """Direct children of a process, from /proc."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        pass
    children = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    stat_line = Path(entry.path, "stat").read_text()
                except OSError:
                    continue
                fields = stat_line.rsplit(")", 1)[-1].split()
                if len(fields) > 1 and fields[1] == str(pid):
                    children.append(int(entry.name))
    return children


def count_user_tasks(uid: int) -> int:
    """Processes and threads of `uid`, the count RLIMIT_NPROC compares against (0: unknown)."""
    count = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count


def machine_task_count() -> int:
    """Tasks that exist on the machine right now (the 4th field of /proc/loadavg)."""
    try:
        return int(Path("/proc/loadavg").read_text().split()[3].split("/")[1])
    except (OSError, IndexError, ValueError):
        return 0


# ---------------------------------------------------------------- the sandboxed process


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed command ended."""

    returncode: int | None
    output: str
    duration: float
    timed_out: bool
    cancelled: bool
    network_isolated: bool
    process_limit: ProcessLimitKind
    killed_reason: str = ""
    notes: tuple[str, ...] = ()


class SandboxedProcess:
    """One command under the sandbox.

    No threads: wait() reads the output, notices the exit (a pidfd, where the kernel has
    them) and enforces the wall clock and the cancel event, so an exit is seen at once and
    nothing else needs waking. Call wait() regularly (run_sandboxed does): output is only
    read there, and a full pipe pauses the child. Use as a context manager, or call close():
    that kills whatever is left of the process tree and removes the cgroup.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        limits: SandboxLimits = SandboxLimits(),
        cancel: threading.Event | None = None,
        pass_fds: Sequence[int] = (),
    ) -> None:
        if not argv or shutil.which(argv[0], path=(env or os.environ).get("PATH")) is None:
            raise CyclefixError(f"cannot start {argv[0] if argv else '(nothing)'}: no such program")
        self.limits = limits
        self.cancel = cancel
        self.timed_out = False
        self.cancelled = False
        self.killed_reason = ""
        self.notes: list[str] = []
        self.returncode: int | None = None
        self._closed = False
        self._kill_started: float | None = None
        self._output = HeadTailBuffer(limits.output_limit)
        isolation = detect_isolation()
        self.network_isolated = isolation.network_isolated
        self.pid_namespace = isolation.pid_namespace
        if isolation.pid_namespace and not isolation.private_proc:
            self.notes.append("host processes visible in /proc: no mount namespace allowed here")
        if not isolation.network_isolated:
            self.notes.append("network not isolated: no network namespace allowed here")
        if isolation.prefix and not isolation.ipc_isolated:
            self.notes.append("host SysV IPC reachable: no IPC namespace allowed here")
        if not isolation.pid_namespace:
            self.notes.append("no pid namespace: processes that leave the group may survive")
        self._cgroup = pids_cgroup(limits.max_processes) if limits.max_processes else None
        self._memory_cgroup = memory_cgroup(limits.run_memory_mb) if limits.run_memory_mb else None
        if limits.run_memory_mb and self._memory_cgroup is None:
            self.notes.append(
                f"memory capped per process only ({limits.memory_mb} MiB each): "
                "no writable memory cgroup"
            )
        self._nproc_limit = 0
        self._watch_ceiling = 0
        self.process_limit: ProcessLimitKind = "none"
        if self._cgroup is not None:
            self.process_limit = "cgroup"
        elif limits.max_processes and os.geteuid() != 0:
            # RLIMIT_NPROC counts all of the user's tasks: without /proc to count them, no limit.
            existing = count_user_tasks(os.getuid())
            if existing:
                self.process_limit = "rlimit"
                self._nproc_limit = existing + limits.max_processes
        elif limits.max_processes:
            self.process_limit = "watch"
            baseline = machine_task_count()
            self._watch_ceiling = baseline + max(4 * limits.max_processes, 256) if baseline else 0
            self.notes.append("process limit only watched (no writable pids cgroup as root)")
        self.started = time.monotonic()
        self.duration = 0.0
        self._deadline = self.started + limits.run_timeout if limits.run_timeout else None
        try:
            self._popen = subprocess.Popen(
                [*isolation.prefix, *argv],
                cwd=str(cwd),
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=tuple(pass_fds),
                preexec_fn=self._child_setup(),
            )
        except OSError as exc:
            self._release_cgroup()
            raise CyclefixError(f"cannot start {argv[0]}: {exc.strerror or exc}") from exc
        self.pid = self._popen.pid
        assert self._popen.stdout is not None
        self._stdout = self._popen.stdout
        os.set_blocking(self._stdout.fileno(), False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._stdout.fileno(), selectors.EVENT_READ, "output")
        self._pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self._pidfd = os.pidfd_open(self.pid)
            self._selector.register(self._pidfd, selectors.EVENT_READ, "exit")

    # ---- in the child, between fork and exec: only system calls, nothing that takes locks
    def _child_setup(self) -> Callable[[], None]:
        limits = self.limits
        joined = [c.join_path() for c in (self._cgroup, self._memory_cgroup) if c is not None]
        nproc = self._nproc_limit
        settings: list[tuple[int, int]] = [(resource.RLIMIT_CORE, 0)]
        if limits.memory_mb:
            settings.append((resource.RLIMIT_AS, limits.memory_mb * 2**20))
        if limits.cpu_seconds:
            settings.append((resource.RLIMIT_CPU, int(limits.cpu_seconds)))
        if limits.file_size_mb:
            settings.append((resource.RLIMIT_FSIZE, limits.file_size_mb * 2**20))
        if nproc:
            settings.append((resource.RLIMIT_NPROC, nproc))
        if limits.open_files:
            settings.append((resource.RLIMIT_NOFILE, limits.open_files))

        def setup() -> None:
            for cgroup_procs in joined:
                fd = os.open(cgroup_procs, os.O_WRONLY)
                try:
                    os.write(fd, str(os.getpid()).encode())
                finally:
                    os.close(fd)
            for kind, value in settings:
                hard = resource.getrlimit(kind)[1]
                if hard != resource.RLIM_INFINITY:
                    value = min(value, hard)
                # Hard limit too: the code under test may not raise it again.
                resource.setrlimit(kind, (value, value))

        return setup

    # ---- waiting
    @property
    def exited(self) -> bool:
        return self.returncode is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Read output and enforce limits until the process exits (True) or `timeout` passes."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self._reaped():
            self._enforce_limits()
            now = time.monotonic()
            if end is not None and now >= end:
                return False
            step = 0.02 if end is None else min(0.02, end - now)
            for key, _ in self._selector.select(step):
                if key.data == "output":
                    self._read_output()
        return True

    def _reaped(self) -> bool:
        if self.returncode is None:
            self.returncode = self._popen.poll()
            if self.returncode is not None and self._pidfd is not None:
                self._selector.unregister(self._pidfd)  # readable from now on: stop watching
        return self.returncode is not None

    def _read_output(self) -> bool:
        """Read what is there; False at end of file."""
        if self._output.read_from(self._stdout.fileno()):
            return True
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._stdout.fileno())
        return False

    def _enforce_limits(self) -> None:
        if self.killed_reason:
            started = self._kill_started
            if started is not None and time.monotonic() - started > 1.0:
                self._kill_group()  # unshare did not exit after its child died: end it too
            return
        if self.cancel is not None and self.cancel.is_set():
            self.cancelled = True
            self.kill("cancelled")
        elif self._deadline is not None and time.monotonic() > self._deadline:
            self.timed_out = True
            self.kill(f"the run took longer than {self.limits.run_timeout:g} s")
        elif self._watch_ceiling and machine_task_count() > self._watch_ceiling:
            self.kill(f"more than {self.limits.max_processes} processes (fork bomb?)")

    # ---- control
    def kill(self, reason: str = "killed") -> None:
        """Kill the whole process tree now (idempotent).

        In a pid namespace only the namespace's init is killed (the kernel then kills the
        rest) and `unshare` is left to reap it and exit: killing `unshare` first would orphan
        the init to a system reaper that may never reap it. wait() falls back to killing the
        whole group if `unshare` has not exited within a second.
        """
        if not self.killed_reason:
            self.killed_reason = reason
        if self.returncode is not None:
            if self._cgroup is not None:
                self._cgroup.kill_all()
            return
        if self._kill_started is None:
            self._kill_started = time.monotonic()
        if self.pid_namespace and self._kill_namespace_init():
            return
        self._kill_group()

    def _kill_namespace_init(self) -> bool:
        """SIGKILL the processes under `unshare`; False when there are none to kill yet."""
        if self._cgroup is not None:
            if not [pid for pid in self._cgroup.pids() if pid != self.pid]:
                return False
            self._cgroup.kill_all(spare=self.pid)
            return True
        children = _children_of(self.pid)
        for child in children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
        return bool(children)

    def _kill_group(self) -> None:
        if self.returncode is None:  # the group id is ours for as long as the leader lives
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        if self._cgroup is not None:
            self._cgroup.kill_all()

    def output(self) -> str:
        return self._output.text()

    def close(self) -> SandboxResult:
        """Make sure nothing of the run is left, and say how it ended."""
        if not self._closed:
            self._closed = True
            if not self._reaped():
                self.kill(self.killed_reason or "closed")
                try:
                    self._popen.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    self._kill_group()
                    self._popen.wait()
                self._reaped()
            if not self.pid_namespace:  # leftovers in the group (no namespace to end them)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)
            self._drain_output()
            self._selector.close()
            with contextlib.suppress(OSError):
                self._stdout.close()
            if self._pidfd is not None:
                os.close(self._pidfd)
            self._release_cgroup()
            self.duration = time.monotonic() - self.started
        return SandboxResult(
            returncode=self.returncode,
            output=self.output(),
            duration=self.duration,
            timed_out=self.timed_out,
            cancelled=self.cancelled,
            network_isolated=self.network_isolated,
            process_limit=self.process_limit,
            killed_reason=self.killed_reason,
            notes=tuple(self.notes),
        )

    def _drain_output(self) -> None:
        """The rest of the output; gives up when a process outside our reach holds the pipe."""
        deadline = time.monotonic() + 0.5
        while self._selector.get_map() and any(
            key.data == "output" for key in self._selector.get_map().values()
        ):
            if time.monotonic() > deadline:
                self.notes.append("output pipe still held by a process that escaped the sandbox")
                return
            for key, _ in self._selector.select(0.05):
                if key.data == "output" and not self._read_output():
                    return

    def _release_cgroup(self) -> None:
        for cgroup in (self._cgroup, self._memory_cgroup):
            if cgroup is None:
                continue
            cgroup.kill_all()
            try:
                cgroup.path.rmdir()
            except OSError:  # processes still dying: finish in the background, off the hot path
                threading.Thread(target=cgroup.remove, daemon=True).start()

    def __enter__(self) -> SandboxedProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run_sandboxed(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    limits: SandboxLimits = SandboxLimits(),
    cancel: threading.Event | None = None,
) -> SandboxResult:
    """Run a command to its end under the sandbox."""
    with SandboxedProcess(argv, cwd=cwd, env=env, limits=limits, cancel=cancel) as process:
        process.wait()
        return process.close()
