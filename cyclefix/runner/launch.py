"""How one pytest process is started: the private folder of the plugin's files, the launcher
command, its environment, what the confinement layer enforces, and the pipe ends it inherits.

run.py drives the processes and reads their records; this module only prepares them.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.util
import json
import os
import py_compile
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cyclefix.runner import confine, protocol, seccomp
from cyclefix.runner.environment import child_environment
from cyclefix.runner.isolation import detect_isolation, read_only_mounts
from cyclefix.runner.sandbox import SandboxLimits

PLUGIN_MODULE = protocol.PLUGIN_MODULE
# Seconds the plugin's watchdog waits past a test's timeout (and teardown) before exiting.
GRACE = 1.0
# Bytes one read of a results pipe takes at most, so a flood cannot fill memory at once.
READ_LIMIT = 4 << 20
# Importing one test module may take this long (imports can be slow; an import-time loop not).
MIN_COLLECT_TIMEOUT = 10.0

# `python -m pytest`, confined first (confine.py), then with our plugin imported from its
# bytecode (see plugin.py) before pytest: it takes the signing key before any project code runs.
LAUNCHER = (
    f"import sys, {protocol.CONFINE_MODULE}; {protocol.CONFINE_MODULE}.apply_from_environment(); "
    f"import {PLUGIN_MODULE}, pytest; sys.exit(getattr(pytest, 'console_main', pytest.main)())"
)
# `--tb=line`: the plugin's records carry the failures; pytest's own tracebacks of a deep
# recursion cost seconds a failure to format (pyflakes with 224 failing: 30.0 s -> 2.3 s).
PYTEST_OPTIONS = (
    "-p",
    "no:cacheprovider",
    "-q",
    "--tb=line",
    "--color=no",
    "--continue-on-collection-errors",
)


@dataclass(frozen=True)
class Confinement:
    """A run on a scratch copy of `original`, the user's real project."""

    original: Path
    # Folders the run may write to besides the copy and its private temp folder.
    writable: tuple[Path, ...] = ()
    # The lines a candidate's answer wrote: (path in the copy, ((first, last), ...)), whose
    # acts answer_guard.py watches in the test process.
    answer_lines: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()


@dataclass(frozen=True)
class ProcessSettings:
    """What every pytest process of one run gets."""

    root: Path
    python: str
    limits: SandboxLimits
    confinement: Confinement | None = None
    autoload_plugins: bool = True
    trace: bool = False
    stop_on_first_failure: bool = False
    # With stop_on_first_failure: tests whose failure does not stop the run.
    may_fail: tuple[str, ...] = ()
    pass_env: tuple[str, ...] = ()


def collect_timeout(limits: SandboxLimits) -> float:
    return max(MIN_COLLECT_TIMEOUT, 3 * limits.per_test_timeout)


def pytest_argv(settings: ProcessSettings, pytest_args: Sequence[str]) -> list[str]:
    """The command line of a cold pytest process with these arguments."""
    return [settings.python, "-c", LAUNCHER, *pytest_args]


def pytest_arguments(
    settings: ProcessSettings,
    args: Sequence[str],
    deselected: Sequence[str],
    ignored: Sequence[str],
) -> list[str]:
    """pytest's arguments for one process, skipping node ids and modules already seen."""
    return [
        "-p",
        PLUGIN_MODULE,
        *PYTEST_OPTIONS,
        *_stop_options(settings),
        f"--rootdir={settings.root}",
        *(f"{protocol.SKIP_OPTION}={nodeid}" for nodeid in deselected),
        *(f"--ignore={path}" for path in ignored),
        *args,
    ]


def _stop_options(settings: ProcessSettings) -> tuple[str, ...]:
    if not settings.stop_on_first_failure:
        return ()
    if not settings.may_fail:
        return ("--exitfirst",)
    return tuple(f"{protocol.MAY_FAIL_OPTION}={nodeid}" for nodeid in settings.may_fail)


def confine_plan(
    settings: ProcessSettings, workdir: Path, notes: list[str]
) -> confine.ConfinePlan | None:
    """What the launcher enforces, with a note for each layer this machine cannot give."""
    confinement = settings.confinement
    if not sys.platform.startswith("linux"):
        if confinement is not None:
            notes.append(
                f"not confined on {sys.platform}: candidate code can write wherever you can "
                "and use the network (only Linux has Landlock)"
            )
        return None
    isolation = detect_isolation()
    isolated = isolation.network_isolated
    if confinement is None:
        return confine.ConfinePlan(loopback_up=isolated)
    abi = confine.landlock_abi()
    writable: tuple[str, ...] = ()
    if abi >= 1:
        writable = (str(settings.root), str(workdir), *(str(p) for p in confinement.writable))
    else:
        notes.append(
            "writes not confined to the scratch copy: this kernel has no Landlock "
            "(Linux 5.13+); candidate code can write wherever you can"
        )
    read_only = bool(writable) and read_only_mounts(isolation)
    if writable and not read_only:
        notes.append(
            "permissions and times of files outside the scratch copy not protected: no "
            "read-only mounts here (needs a mount namespace and Linux 5.12+)"
        )
    syscall_filter = seccomp.supported()
    if not syscall_filter:
        notes.append(
            "unix sockets and new namespaces not refused to candidates: no seccomp filter for "
            "this machine; a host service listening on one outside /run stays reachable"
        )
    if abi < 4 and not isolated:
        notes.append(
            "network not cut for candidates: no network namespace, and Landlock "
            f"ABI {abi} cannot refuse TCP (needs 4, Linux 6.7+)"
        )
    return confine.ConfinePlan(
        writable=writable,
        # In its own network namespace TCP reaches only the sandbox's loopback (tests' local
        # servers work); without one, Landlock refuses TCP altogether.
        deny_tcp=abi >= 4 and not isolated,
        loopback_up=isolated,
        remap=(str(confinement.original.resolve()), str(settings.root)),
        # Its own mount namespace (private /proc) gets its own /dev/shm; never the host's.
        private_shm=bool(writable) and isolation.private_proc and os.path.isdir(confine.SHM_FOLDER),
        read_only_elsewhere=read_only,
        host_mounts=os.readlink("/proc/self/ns/mnt") if read_only else "",
        syscall_filter=syscall_filter,
    )


def process_environment(
    settings: ProcessSettings,
    plan: confine.ConfinePlan | None,
    workdir: Path,
    results_fd: int,
    key_fd: int,
    parent: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """The test process's environment: the allowlist (environment.py), our private folder
    first on PYTHONPATH, the pipe numbers and the settings the plugin and launcher read."""
    confined = settings.confinement
    env = interpreter_environment(
        settings.pass_env,
        settings.autoload_plugins,
        private_home=workdir / "home" if confined is not None else None,
        remap=(confined.original, settings.root) if confined is not None else None,
        parent=parent,
    )
    limits = settings.limits
    env[protocol.ENV_RESULTS_FD] = str(results_fd)
    env[protocol.ENV_KEY_FD] = str(key_fd)
    env[protocol.ENV_ROOT] = str(settings.root)
    env[protocol.ENV_TIMEOUT] = f"{limits.per_test_timeout:g}"
    env[protocol.ENV_GRACE] = f"{GRACE:g}"
    env[protocol.ENV_MAX_HANGS] = str(limits.max_hangs)
    env[protocol.ENV_COLLECT_TIMEOUT] = f"{collect_timeout(limits):g}"
    if plan is not None:
        env[protocol.ENV_CONFINE] = plan.to_json()
    if confined is not None:
        env[protocol.ENV_CANDIDATE] = "1"
        if confined.answer_lines:
            env[protocol.ENV_ANSWER_LINES] = json.dumps(dict(confined.answer_lines))
    if settings.trace:
        env[protocol.ENV_TRACE] = "1"
    return env


def interpreter_environment(
    pass_env: Sequence[str],
    autoload_plugins: bool,
    *,
    private_home: Path | None,
    remap: tuple[Path, Path] | None = None,
    parent: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """What a test interpreter starts with, before any run's own settings: the allowlist and
    our private folder first on PYTHONPATH (a warm worker starts with this too)."""
    env = child_environment(parent, pass_env=pass_env, private_home=private_home, remap=remap)
    existing = env.get("PYTHONPATH")
    plugin_dir = plugin_directory()
    if not (plugin_dir / f"{PLUGIN_MODULE}.py").exists():  # a temp cleaner removed it
        plugin_directory.cache_clear()
        plugin_dir = plugin_directory()
    env["PYTHONPATH"] = str(plugin_dir) + (os.pathsep + existing if existing else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONNOUSERSITE"] = "1"
    if not autoload_plugins:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


@functools.lru_cache(maxsize=1)
def plugin_directory() -> Path:
    """A private folder holding only the plugin and its sibling files (and their bytecode),
    made once per process (protocol.PRIVATE_COPIES).

    Only this folder goes on the user's PYTHONPATH: the user's tests cannot import cyclefix,
    and none of our module names (select, run...) can shadow theirs.
    """
    folder = Path(tempfile.mkdtemp(prefix="cyclefix-plugin-"))
    atexit.register(shutil.rmtree, folder, True)
    for source, module in protocol.PRIVATE_COPIES:
        target = folder / f"{module}.py"
        shutil.copyfile(Path(__file__).with_name(source), target)
        cached = importlib.util.cache_from_source(str(target))
        with contextlib.suppress(py_compile.PyCompileError, OSError):
            py_compile.compile(str(target), cfile=cached, doraise=True)
    return folder


class OwnFds:
    """Pipe ends this side opened; each closed exactly once (a second close could hit a
    number another thread has been given since)."""

    def __init__(self) -> None:
        self._open: set[int] = set()

    def pipe(self) -> tuple[int, int]:
        read, write = os.pipe()
        self._open.update((read, write))
        return read, write

    def close(self, fd: int) -> None:
        if fd in self._open:
            self._open.discard(fd)
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> OwnFds:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for fd in list(self._open):
            self.close(fd)


def read_available(fd: int, limit: int = READ_LIMIT) -> bytes:
    """What the pipe holds now, up to `limit` bytes, without waiting."""
    chunks = []
    size = 0
    while size < limit:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            break
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
