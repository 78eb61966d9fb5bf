"""Warm pytest workers: a session's test runs without starting pytest and its plugins each time.

A `WarmWorkers` pool belongs to one long-lived session (`cyclefix serve`, the TUI, one
`cyclefix fix`). For each kind of run (the user's own run in place, or candidates' runs on
scratch copies; one interpreter, one plugin setting) it keeps one worker process running
warm_worker.py inside the same sandbox a cold run gets (namespaces, cgroup, limits; see
sandbox.py) and hands it each run as a request; the worker forks a fresh pytest process per
run, confined exactly as a cold one (warm_worker.py). What comes back is a `WarmRun`, which
run.py follows as it follows a `SandboxedProcess`: the same signed records, output and exit
status.

Warm only where a fork is as contained as a cold process: Linux with a pid namespace (the
worker, its init, kills everything a run leaves behind) and, for candidates, Landlock (each
fork confines itself beneath its scratch copy, inside the worker's wider temp-folder layer, and
cannot signal or trace the worker). A worker that hangs, dies, is killed for a run's timeout or
cancel, or cannot start is discarded; the next run starts a new one, and a kind whose worker
failed to start twice runs cold, with a note.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cyclefix.errors import CyclefixError
from cyclefix.runner import confine, protocol
from cyclefix.runner.isolation import detect_isolation, read_only_mounts
from cyclefix.runner.launch import Confinement, ProcessSettings, interpreter_environment
from cyclefix.runner.sandbox import (
    HeadTailBuffer,
    SandboxedProcess,
    SandboxLimits,
    SandboxResult,
)
from cyclefix.runner.scratch import remove_tree

WARM_MODULE = protocol.WARM_MODULE
# The worker's launcher (its confinement is applied by the module itself, first thing).
WORKER_LAUNCHER = f"import {WARM_MODULE}; {WARM_MODULE}.main()"
# Seconds a worker may take to import pytest and its plugins and run once on nothing.
READY_TIMEOUT = 60.0
# Starts of one kind of worker that may fail before its runs go cold for the session.
MAX_FAILED_STARTS = 2
# Seconds the output of a finished run is still read for (a stray holder is killed by then).
DRAIN_SECONDS = 0.5


class WarmUnavailable(Exception):
    """A worker could not start; the message says why."""


@dataclass(frozen=True)
class WorkerKind:
    """What every run a worker serves shares: the interpreter, the plugin setting, whether the
    runs are candidates' (confined to scratch copies), their extra writable folders, the
    environment names passed through and the per-process limits."""

    python: str
    project: Path
    autoload_plugins: bool
    confined: bool
    writable: tuple[Path, ...]
    pass_env: tuple[str, ...]
    limits: SandboxLimits


def worker_kind(settings: ProcessSettings) -> WorkerKind:
    """The kind of worker that serves the runs of `settings`."""
    confinement = settings.confinement
    return WorkerKind(
        python=settings.python,
        project=confinement.original if confinement is not None else settings.root,
        autoload_plugins=settings.autoload_plugins,
        confined=confinement is not None,
        writable=confinement.writable if confinement is not None else (),
        pass_env=settings.pass_env,
        # The limits a worker lives under: each run's, without those the runner enforces
        # per run (wall clock, timeouts, hangs, output).
        limits=replace(settings.limits, run_timeout=0.0, per_test_timeout=0.0, max_hangs=0),
    )


class WarmWorker:
    """One worker process and its control socket."""

    def __init__(self, kind: WorkerKind) -> None:
        self.kind = kind
        self.home = Path(tempfile.mkdtemp(prefix="cyclefix-warm-home-"))
        ours, theirs = socket.socketpair()
        self.control = ours
        self._pending = b""
        env = interpreter_environment(
            kind.pass_env,
            kind.autoload_plugins,
            private_home=self.home / "home" if kind.confined else None,
        )
        env[protocol.ENV_WARM_PROJECT] = str(kind.project)
        env[protocol.ENV_WARM_CONTROL_FD] = str(theirs.fileno())
        env[protocol.ENV_CONFINE] = self._plan().to_json()
        try:
            self.process = SandboxedProcess(
                [kind.python, "-c", WORKER_LAUNCHER],
                cwd=self.home,
                env=env,
                limits=kind.limits,
                pass_fds=(theirs.fileno(),),
            )
        except Exception:
            ours.close()
            remove_tree(self.home)
            raise
        finally:
            theirs.close()
        self.control.setblocking(False)
        ready = self.message(READY_TIMEOUT)
        if ready is None or "ready" not in ready:
            self.close()
            output = self.process.output().strip().splitlines()
            raise WarmUnavailable(
                "the warm test process did not start" + (f": {output[-1][:200]}" if output else "")
            )
        imported = [str(p) for p in ready.get("project_modules", ())]
        if imported:
            self.close()
            raise WarmUnavailable(f"a pytest plugin imports the project ({imported[0]})")

    def _plan(self) -> confine.ConfinePlan:
        """The worker's own layer: what every run's is narrowed from."""
        isolation = detect_isolation()
        if not self.kind.confined:
            return confine.ConfinePlan(loopback_up=isolation.network_isolated)
        abi = confine.landlock_abi()
        read_only = read_only_mounts(isolation)
        return confine.ConfinePlan(
            writable=(tempfile.gettempdir(), *(str(p) for p in self.kind.writable)),
            deny_tcp=abi >= 4 and not isolation.network_isolated,
            loopback_up=isolation.network_isolated,
            private_shm=isolation.private_proc and os.path.isdir(confine.SHM_FOLDER),
            # Every run forked from it shares its mounts: read-only but the temp folders.
            read_only_elsewhere=read_only,
            kept_read_only=(str(self.kind.project),),
            host_mounts=os.readlink("/proc/self/ns/mnt") if read_only else "",
        )

    @property
    def alive(self) -> bool:
        """Still serving runs (looks at the process now: it may have ended between runs)."""
        return not self.process.wait(0.0) and not self.process.killed_reason

    def message(self, timeout: float) -> dict[str, Any] | None:
        """The worker's next control line within `timeout` seconds; None when it sent none
        (or ended)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._next_line()
            if line is not None:
                return line
            if self.process.wait(0.0):
                return self._next_line()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            wait_readable((self.control.fileno(),), min(0.02, remaining))

    def _next_line(self) -> dict[str, Any] | None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while b"\n" not in self._pending:
                data = self.control.recv(1 << 16)
                if not data:
                    break
                self._pending += data
        if b"\n" not in self._pending:
            return None
        line, _, self._pending = self._pending.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:
            return None
        return message if isinstance(message, dict) else None

    def send(self, request: dict[str, Any], fds: tuple[int, ...]) -> None:
        self.control.setblocking(True)
        try:
            socket.send_fds(self.control, [json.dumps(request).encode() + b"\n"], list(fds))
        finally:
            self.control.setblocking(False)

    def discard(self, reason: str) -> None:
        """Kill the worker and everything it runs (its namespace ends with it)."""
        self.process.kill(reason)
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.control.close()  # the worker exits when its socket closes
        if not self.process.wait(1.0):
            self.process.kill("closed")
        self.process.close()
        remove_tree(self.home)


class WarmRun:
    """One pytest process forked by a worker, followed as run.py follows a SandboxedProcess."""

    def __init__(
        self,
        worker: WarmWorker,
        request: dict[str, Any],
        pass_fds: tuple[int, int],
        limits: SandboxLimits,
        cancel: threading.Event | None,
        release: threading.Lock,
    ) -> None:
        self.worker = worker
        self.limits = limits
        self.cancel = cancel
        self._release = release
        self.returncode: int | None = None
        self.timed_out = False
        self.cancelled = False
        self.killed_reason = ""
        self._closed = False
        self.duration = 0.0
        self._output = HeadTailBuffer(limits.output_limit)
        read, write = os.pipe()
        self._out = read
        os.set_blocking(read, False)
        self.started = time.monotonic()
        self._deadline = self.started + limits.run_timeout if limits.run_timeout else None
        try:
            worker.send(request, (*pass_fds, write))
        except OSError:
            os.close(read)
            raise
        finally:
            os.close(write)

    @property
    def exited(self) -> bool:
        return self.returncode is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Read output and enforce the wall clock and cancel until the run ends (True) or
        `timeout` passes."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            self._read_output()
            self._enforce_limits()
            if self.returncode is not None:
                break
            message = self.worker.message(0.0)
            if message is not None and "exit" in message:
                self.returncode = int(message["exit"])
                break
            if not self.worker.alive:
                self._end_worker("the warm test process ended")
                break
            now = time.monotonic()
            if end is not None and now >= end:
                return False
            step = 0.02 if end is None else max(0.0, min(0.02, end - now))
            wait_readable((self.worker.control.fileno(), self._out), step)
        return True

    def _enforce_limits(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            self.cancelled = True
            self.kill("cancelled")
        elif self._deadline is not None and time.monotonic() > self._deadline:
            self.timed_out = True
            self.kill(f"the run took longer than {self.limits.run_timeout:g} s")

    def kill(self, reason: str = "killed") -> None:
        """End the run now: the worker goes with it (a new one serves the next run)."""
        if not self.killed_reason:
            self.killed_reason = reason
        if self.returncode is None:
            self._end_worker(reason)

    def _end_worker(self, reason: str) -> None:
        self.worker.discard(reason)
        if self.returncode is None:
            self.returncode = -int(signal.SIGKILL)

    def _read_output(self) -> bool:
        """Read what is there; False at end of file."""
        return self._output.read_from(self._out)

    def output(self) -> str:
        return self._output.text()

    def close(self) -> SandboxResult:
        """Make sure the run is over, and say how it ended."""
        if not self._closed:
            self._closed = True
            if self.returncode is None:
                self.kill(self.killed_reason or "closed")
            deadline = time.monotonic() + DRAIN_SECONDS
            while self._read_output() and time.monotonic() < deadline:
                time.sleep(0.005)
            os.close(self._out)
            self.duration = time.monotonic() - self.started
            self._release.release()
        process = self.worker.process
        return SandboxResult(
            returncode=self.returncode,
            output=self.output(),
            duration=self.duration,
            timed_out=self.timed_out,
            cancelled=self.cancelled,
            network_isolated=process.network_isolated,
            process_limit=process.process_limit,
            killed_reason=self.killed_reason,
            notes=tuple(process.notes),
        )

    def __enter__(self) -> WarmRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class WarmWorkers:
    """The warm workers of one session; `close()` ends them all (a worker also exits when
    this process does: its control socket closes)."""

    def __init__(self) -> None:
        self._workers: dict[WorkerKind, WarmWorker] = {}
        # Workers being started in the background (prepare), by kind.
        self._starting: dict[WorkerKind, threading.Thread] = {}
        self._busy: dict[WorkerKind, threading.Lock] = {}
        self._failed: dict[WorkerKind, int] = {}
        self._lock = threading.Lock()
        # Why a worker could not start, for the notes of the run that started cold instead.
        self._notes: list[str] = []
        self._closed = False

    def start(
        self,
        kind: WorkerKind,
        args: list[str],
        env: dict[str, str],
        cwd: Path,
        pass_fds: tuple[int, int],
        limits: SandboxLimits,
        cancel: threading.Event | None,
    ) -> WarmRun | None:
        """The run forked by this kind's worker; None where it must start cold: not on this
        machine (its runs' notes already name the missing layer), a worker busy with another
        run, or one that cannot start (`take_notes` then says why)."""
        if usable(kind.confined):
            return None
        with self._lock:
            starting = self._starting.get(kind)
        if starting is not None:
            starting.join()  # started ahead by prepare: take it when it is ready
        with self._lock:
            if self._closed or self._failed.get(kind, 0) >= MAX_FAILED_STARTS:
                return None
            busy = self._busy.setdefault(kind, threading.Lock())
        if not busy.acquire(blocking=False):
            return None  # runs at once in one session (rare): the other one starts cold
        try:
            worker = self._worker(kind)
        except (WarmUnavailable, OSError, CyclefixError) as exc:  # e.g. no such interpreter
            busy.release()
            self._failed_start(kind, exc)
            return None
        request = {"args": args, "env": env, "cwd": str(cwd)}
        try:
            return WarmRun(worker, request, pass_fds, limits, cancel, busy)
        except OSError:  # the worker ended between runs: this one starts cold
            worker.discard("the warm test process stopped taking runs")
            busy.release()
            return None

    def _worker(self, kind: WorkerKind) -> WarmWorker:
        worker = self._workers.get(kind)
        if worker is not None and worker.alive:
            return worker
        if worker is not None:
            worker.close()
        worker = WarmWorker(kind)
        with self._lock:
            self._workers[kind] = worker
        return worker

    def prepare(
        self,
        root: Path,
        *,
        python: str,
        limits: SandboxLimits,
        confinement: Confinement | None,
        pass_env: Sequence[str] = (),
        autoload_plugins: bool = True,
    ) -> None:
        """Start the worker for runs like run_tests(root, ...) with these settings in the
        background, so that the first of them finds it warm (the refine loop asks while the
        model reads its first prompt)."""
        settings = ProcessSettings(
            root=root,
            python=python,
            limits=limits,
            confinement=confinement,
            autoload_plugins=autoload_plugins,
            pass_env=tuple(pass_env),
        )
        kind = worker_kind(settings)
        if usable(kind.confined):
            return
        with self._lock:
            if (
                self._closed
                or kind in self._workers
                or kind in self._starting
                or self._failed.get(kind, 0) >= MAX_FAILED_STARTS
            ):
                return
            thread = threading.Thread(
                target=self._start_ahead, args=(kind,), name="cyclefix-warm", daemon=True
            )
            self._starting[kind] = thread
        thread.start()

    def _start_ahead(self, kind: WorkerKind) -> None:
        try:
            worker = WarmWorker(kind)
        except (WarmUnavailable, OSError, CyclefixError) as exc:  # e.g. no such interpreter
            self._failed_start(kind, exc)
        else:
            with self._lock:
                closed = self._closed
                if not closed:
                    self._workers[kind] = worker
            if closed:
                worker.close()
        finally:
            with self._lock:
                self._starting.pop(kind, None)

    def _failed_start(self, kind: WorkerKind, exc: Exception) -> None:
        with self._lock:
            self._failed[kind] = self._failed.get(kind, 0) + 1
            self._notes.append(f"test runs start cold: {exc}")

    def take_notes(self) -> list[str]:
        """Why workers failed to start since the last call."""
        with self._lock:
            notes, self._notes = self._notes, []
        return notes

    def close(self) -> None:
        with self._lock:
            self._closed = True
            starting = list(self._starting.values())
        for thread in starting:  # a worker started ahead closes itself once ready
            thread.join()
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.close()

    def __enter__(self) -> WarmWorkers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def wait_readable(fds: Sequence[int], seconds: float) -> None:
    """Until one of `fds` has something to read (or has closed), at most `seconds`."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    poller.poll(int(seconds * 1000))


def usable(confined: bool) -> str:
    """Why runs cannot be warm on this machine ("" where they can)."""
    if not sys.platform.startswith("linux"):
        return f"test runs start cold: no warm worker on {sys.platform}"
    if not detect_isolation().pid_namespace:
        return "test runs start cold: no pid namespace to end what a run leaves behind"
    if confined and confine.landlock_abi() < 1:
        return "candidate runs start cold: no Landlock to confine each fork"
    return ""
