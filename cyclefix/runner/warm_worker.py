"""The warm pytest worker: pytest and its plugins imported once, each run in a fresh fork.

Shipped next to the plugin (as ``_cyclefix_warm``, see launch.plugin_directory) and started
by warm.py inside the sandbox, as the init (pid 1) of its own pid namespace, so, like the
plugin, it imports nothing but the standard library and pytest and runs on Python 3.9.

Start-up: enforce the worker's own confinement (``CYCLEFIX_CONFINE``: the namespace's
loopback, a private /dev/shm, no_new_privs, writes only beneath the temp folder, no
capabilities), import pytest, run it once on an empty folder (plugins load, their lazy
imports happen), freeze the heap for the garbage collector (a fork then copies and scans
none of it), and say "ready" on the control socket.

Each request (one JSON line with the run's pipe ends passed along, SCM_RIGHTS) is one pytest
process as the cold launcher would make it: the fork takes the request's environment and
folder, confines itself with the run's own plan (narrower than the worker's: writes only
beneath the scratch copy and the run's private folder), imports the result plugin (which
takes the signing key before any project code runs) and runs pytest. No code of the project
ever runs in the worker itself, so one candidate's module state, monkeypatches or threads
cannot reach the next. After the fork ends, every process left in the namespace is killed and
reaped and the private /dev/shm emptied; then the exit status goes back.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cyclefix.runner import confine, protocol
else:
    try:  # the runner's private copies, in the worker
        import _cyclefix_confine as confine
        import _cyclefix_protocol as protocol
    except ImportError:
        from cyclefix.runner import confine, protocol

# Each request passes these pipe ends: results (write), key (read), output (write).
PASSED_FDS = 3
# Largest request line (an environment and a command line).
MAX_REQUEST = 1 << 20
SHM_FOLDER = "/dev/shm"


def main() -> None:
    """The worker's entry point: confine it, warm pytest up, then serve runs until the runner
    closes the control socket."""
    control = socket.socket(fileno=int(os.environ.pop(protocol.ENV_WARM_CONTROL_FD)))
    project = os.environ.pop(protocol.ENV_WARM_PROJECT, "")
    private_shm = confine.apply_from_environment()
    _warm_up()
    gc.freeze()
    _send(control, {"ready": os.getpid(), "project_modules": _project_modules(project)})
    reader = _LineReader(control)
    while True:
        try:
            message, fds = reader.next()
        except OSError:
            return
        if message is None:
            return  # the runner closed the socket: the session is over
        if len(fds) != PASSED_FDS:
            for fd in fds:
                os.close(fd)
            _send(control, {"refused": f"expected {PASSED_FDS} pipe ends, got {len(fds)}"})
            continue
        pid = os.fork()
        if pid == 0:
            _run_child(message, fds, control.fileno(), private_shm)  # never returns
        for fd in fds:
            os.close(fd)
        status = _wait_for(pid)
        _sweep(private_shm)
        _send(control, {"exit": status})


def _warm_up() -> None:
    """pytest once on an empty folder, its output discarded: plugins register, lazy imports
    happen here instead of in every run."""
    import pytest

    folder = tempfile.mkdtemp(prefix="cyclefix-warm-")
    ini = os.path.join(folder, "pytest.ini")
    with open(ini, "w") as handle:
        handle.write("[pytest]\n")
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        pytest.main(["-q", "-p", "no:cacheprovider", "--noconftest", "-c", ini, "--co", folder])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)


def _project_modules(project: str) -> list[str]:
    """Files of the user's project that warming up imported (a plugin the project ships): a
    fork would run them as they were, not as the candidate has them."""
    if not project:
        return []
    inside = os.path.join(os.path.realpath(project), "")
    found = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and os.path.realpath(path).startswith(inside):
            found.append(path)
    return sorted(found)


def _run_child(message: dict[str, Any], fds: list[int], control_fd: int, private_shm: bool) -> None:
    """In the fork: become the run's pytest process, then exit with its status."""
    try:
        results_fd, key_fd, output_fd = fds
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(output_fd)
        os.close(control_fd)  # the worker's channel is not the run's to write
        env = dict(message["env"])
        env[protocol.ENV_RESULTS_FD] = str(results_fd)
        env[protocol.ENV_KEY_FD] = str(key_fd)
        plan_text = env.get(protocol.ENV_CONFINE)
        if plan_text:
            # The namespace's loopback, /dev/shm and mounts are the worker's, set up once; a confined
            # run may write in that /dev/shm (emptied after it).
            plan = json.loads(plan_text)
            plan["loopback_up"] = plan["private_shm"] = plan["read_only_elsewhere"] = False
            writable = plan.get("writable") or []
            if writable and private_shm:
                plan["writable"] = [*writable, SHM_FOLDER]
            env[protocol.ENV_CONFINE] = json.dumps(plan)
        os.environ.clear()
        os.environ.update(env)
        tempfile.tempdir = None  # found again from the run's TMPDIR, not the worker's
        os.chdir(message["cwd"])
        sys.argv = ["pytest", *message["args"]]
        confine.apply_from_environment()
        __import__(protocol.PLUGIN_MODULE)
        import pytest

        status = pytest.console_main()
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # the run ends here either way; say why on its output
        sys.stderr.write(f"cyclefix: the warm test process failed: {exc!r}\n")
        status = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(int(status) if isinstance(status, int) else 1)


def _wait_for(pid: int) -> int:
    """The fork's exit status as subprocess reports it (negative: killed by that signal)."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return -int(signal.SIGKILL)
        return os.waitstatus_to_exitcode(status)


def _sweep(private_shm: bool) -> None:
    """Kill and reap whatever the run left behind (daemons, detached children), and empty the
    private /dev/shm: nothing of one run is there for the next."""
    if os.getpid() == 1:  # only the namespace's init may kill everything else in it
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
    if private_shm:
        for name in os.listdir(SHM_FOLDER):
            path = os.path.join(SHM_FOLDER, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)


def _send(control: socket.socket, message: dict[str, Any]) -> None:
    control.sendall(json.dumps(message).encode() + b"\n")


class _LineReader:
    """JSON lines from the control socket, with the file descriptors sent alongside."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.pending = b""
        self.fds: list[int] = []

    def next(self) -> tuple[dict[str, Any] | None, list[int]]:
        while b"\n" not in self.pending:
            data, fds, _, _ = socket.recv_fds(self.control, 1 << 16, PASSED_FDS)
            self.fds.extend(fds)
            if not data:
                for fd in self.fds:
                    os.close(fd)
                return None, []
            self.pending += data
            if len(self.pending) > MAX_REQUEST:
                raise OSError("request too long")
        line, _, self.pending = self.pending.partition(b"\n")
        fds, self.fds = self.fds, []
        return json.loads(line), fds
