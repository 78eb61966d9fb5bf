"""Run pytest on a project under the sandbox and turn our plugin's signed records into results.

The plugin sends one signed line per event down a pipe (protocol.py); this side reads it while
pytest runs (live progress through ``on_test``), kills the run when a test ignores its timeout,
and, when the process dies in the middle (a hang, ``os._exit``, a crash), marks the running test
and runs the rest again with ``--deselect`` of everything already seen, a bounded number of
times. A line the plugin did not sign, or a session whose exit status and collected tests
disagree with its records, makes the run fail ("UntrustedResults"): code under test cannot
report a pass. Runs on a scratch copy (``confinement``) are confined by confine.py.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.util
import os
import py_compile
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cyclefix.errors import CyclefixError
from cyclefix.runner import confine, protocol
from cyclefix.runner.environment import child_environment
from cyclefix.runner.results import (
    Callee,
    CollectionError,
    ExecutedFunction,
    Frame,
    Outcome,
    ProbedCall,
    RunPhases,
    TestCaseResult,
    TestRunResult,
)
from cyclefix.runner.sandbox import (
    SandboxedProcess,
    SandboxLimits,
    SandboxResult,
    detect_isolation,
)

PLUGIN_MODULE = protocol.PLUGIN_MODULE
ENV_TRACE = "CYCLEFIX_TRACE"
TRACE_MODULE = "_cyclefix_trace"
FIRST_OPTION = protocol.FIRST_OPTION
WATCHDOG_EXIT_CODE = protocol.WATCHDOG_EXIT_CODE
TEARDOWN_ALLOWANCE = protocol.TEARDOWN_ALLOWANCE

# Seconds the plugin's watchdog waits past a test's timeout (and teardown) before exiting.
GRACE = 1.0
# Seconds more this side waits before killing a test that even the watchdog did not stop.
PARENT_MARGIN = 0.5
# Seconds pytest may take to exit once its session has ended (a stray non-daemon thread
# or atexit handler can keep it alive forever). 2 s was once too few for a plain exit under
# a full test suite on 2 cores; the results are read by then, so waiting longer loses nothing.
SHUTDOWN_GRACE = 5.0
# How often the results pipe is read while pytest runs.
POLL_SECONDS = 0.02
# Runs after the first, each resuming after a test that killed its process.
MAX_RERUNS = 5
# Importing one test module may take this long (imports can be slow; an import-time loop not).
MIN_COLLECT_TIMEOUT = 10.0

# `python -m pytest`, confined first (confine.py), then with our plugin imported from its
# bytecode (see plugin.py) before pytest: it takes the signing key before any project code runs.
LAUNCHER = (
    f"import sys, {protocol.CONFINE_MODULE}; {protocol.CONFINE_MODULE}.apply_from_environment(); "
    f"import {PLUGIN_MODULE}, pytest; sys.exit(getattr(pytest, 'console_main', pytest.main)())"
)
# The test that stands for a process whose results cannot be trusted.
UNTRUSTED_NODEID = "<cyclefix>::results"
PYTEST_OPTIONS = (
    "-p",
    "no:cacheprovider",
    "-q",
    "--tb=short",
    "--color=no",
    "--continue-on-collection-errors",
)
DEFAULT_LIMITS = SandboxLimits()
OUTCOMES: frozenset[str] = frozenset({"passed", "failed", "error", "skipped", "timeout"})


def run_tests(
    root: Path,
    tests: Sequence[str] = (),
    *,
    limits: SandboxLimits = DEFAULT_LIMITS,
    python: str | None = None,
    on_test: Callable[[TestCaseResult], None] | None = None,
    cancel: threading.Event | None = None,
    on_collected: Callable[[int], None] | None = None,
    autoload_plugins: bool = True,
    trace: bool = False,
    stop_on_first_failure: bool = False,
    confinement: Confinement | None = None,
    pass_env: Sequence[str] = (),
) -> TestRunResult:
    """Run pytest in `root` on `tests` (pytest args relative to root; empty: the whole suite).

    `on_test` is called, in this thread, as each test's result lands (within ~20 ms), and
    `on_collected` once with the number of tests selected: enough for "3/12" progress.
    `autoload_plugins=False` keeps pytest from loading every installed plugin (much faster
    start in an environment full of them; our own plugin is loaded either way).
    `trace=True` records which project non-test functions and lines each test executed
    (`TestCaseResult.executed`, `TestRunResult.traced`); where that is impossible (a tracer
    already installed) the run says why in its notes and `traced` is False.
    `stop_on_first_failure=True` ends the run at the first test that does not pass (pytest's
    `-x`): with `order_failing_first`, a candidate's previously failing tests run first and
    the rest of the selection only when they all pass; the notes say how many did not run.
    `confinement` marks `root` as a scratch copy of `confinement.original` that runs untrusted
    code: its processes may write only there and in a private temp folder (also HOME), make
    no TCP connections, and import the copy where the environment pointed into the original;
    layers this OS lacks are named once in the notes. `pass_env`: environment names passed
    through besides the allowlist (environment.py); ``CYCLEFIX_*`` never is.
    Raises CyclefixError when the folder or the interpreter is unusable, or pytest refuses
    the arguments; test failures, hangs and crashes are results, not errors.
    """
    project = Path(root).resolve()
    if not project.is_dir():
        raise CyclefixError(f"no such project folder: {root}")
    interpreter = python or sys.executable
    if shutil.which(interpreter) is None:
        raise CyclefixError(f"no such Python interpreter: {interpreter}")
    run = _Run(
        root=project,
        args=tuple(tests),
        limits=limits,
        python=interpreter,
        on_test=on_test,
        on_collected=on_collected,
        cancel=cancel,
        autoload_plugins=autoload_plugins,
        trace=trace,
        stop_on_first_failure=stop_on_first_failure,
        confinement=confinement,
        pass_env=tuple(pass_env),
    )
    return run.execute()


@dataclass(frozen=True)
class Confinement:
    """A run on a scratch copy of `original`, the user's real project."""

    original: Path
    # Folders the run may write to besides the copy and its private temp folder.
    writable: tuple[Path, ...] = ()


@dataclass
class _Attempt:
    """What one pytest process reported."""

    collected: list[str] | None = None
    finished: dict[str, TestCaseResult] = field(default_factory=dict)
    running: str | None = None
    collecting: str | None = None
    watchdog: str | None = None
    session_exit: int | None = None
    hung: str | None = None
    verifier: protocol.RecordVerifier | None = None
    # Why this process's records are not believed ("" while they are).
    untrusted: str = ""
    # We killed pytest after its session ended (a lingering thread): its exit status is ours.
    killed_after_session: bool = False
    # Monotonic times: spawn and reap (this side), session start, collection end and the
    # last test's end (the test process's records; the same clock on one machine).
    spawned: float = 0.0
    reaped: float = 0.0
    session_started: float | None = None
    collected_at: float | None = None
    last_test_at: float | None = None

    def phases(self) -> RunPhases:
        """This process's share of the run's phases; a phase it never reached is 0."""
        total = max(self.reaped - self.spawned, 0.0)

        def span(start: float, end: float) -> float:
            return min(max(end - start, 0.0), total)

        if self.session_started is None:
            return RunPhases(startup_s=total, collect_s=0.0, tests_s=0.0, total_s=total)
        collect_end = self.reaped if self.collected_at is None else self.collected_at
        if self.collected_at is None:
            tests = 0.0
        elif self.running is not None:  # died in a test: it ran until the process ended
            tests = span(self.collected_at, self.reaped)
        else:
            tests = span(self.collected_at, self.last_test_at or self.collected_at)
        return RunPhases(
            startup_s=span(self.spawned, self.session_started),
            collect_s=span(self.session_started, collect_end),
            tests_s=tests,
            total_s=total,
        )


@dataclass
class _Run:
    root: Path
    args: tuple[str, ...]
    limits: SandboxLimits
    python: str
    on_test: Callable[[TestCaseResult], None] | None
    on_collected: Callable[[int], None] | None
    cancel: threading.Event | None
    autoload_plugins: bool
    trace: bool = False
    stop_on_first_failure: bool = False
    confinement: Confinement | None = None
    pass_env: tuple[str, ...] = ()
    tests: list[TestCaseResult] = field(default_factory=list)
    collection_errors: list[CollectionError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    collected_total: int | None = None
    # Why a traced run recorded nothing ("" while tracing works), and tests whose record is
    # incomplete because they replaced the tracer.
    untraced_reason: str = ""
    trace_incomplete: list[str] = field(default_factory=list)
    phases: list[RunPhases] = field(default_factory=list)

    def execute(self) -> TestRunResult:
        started = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix="cyclefix-run-"))
        skip_tests: list[str] = []
        skip_modules: list[str] = []
        session_exits: list[int | None] = []
        timed_out = cancelled = False
        network_isolated = True
        plan = self._confine_plan(workdir)
        try:
            for _ in range(MAX_RERUNS + 1):
                limits = self.limits
                if limits.run_timeout:
                    remaining = limits.run_timeout - (time.monotonic() - started)
                    if remaining <= 0:
                        timed_out = True
                        break
                    limits = replace(limits, run_timeout=remaining)
                attempt, ended = self._one_process(plan, workdir, limits, skip_tests, skip_modules)
                self.phases.append(attempt.phases())
                attempt.untrusted = attempt.untrusted or self._disagreement(attempt, ended)
                session_exits.append(None if attempt.untrusted else attempt.session_exit)
                network_isolated = network_isolated and ended.network_isolated
                self.outputs.append(ended.output)
                self.notes.extend(n for n in ended.notes if n not in self.notes)
                timed_out = timed_out or ended.timed_out
                cancelled = cancelled or ended.cancelled
                resume = self._settle(attempt, ended)
                if resume is None:
                    break
                skip_tests.extend(resume[0])
                skip_modules.extend(resume[1])
            else:
                self.notes.append(f"stopped after {MAX_RERUNS} reruns")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        not_run = (self.collected_total or 0) - len(self.tests)
        if self._hang_limit_reached() and not_run > 0:
            self.notes.append(f"stopped at the timeout limit: {not_run} test(s) not run")
        elif self._stopped_at_failure() and not_run > 0:
            self.notes.append(f"stopped at the first failure: {not_run} test(s) not run")
        single = len(session_exits) == 1 and session_exits[0] is not None
        if single and not (timed_out or cancelled):
            exit_code = int(session_exits[0] or 0)
        else:
            exit_code = self._summary_exit_code(timed_out or cancelled)
        if self.untraced_reason:
            self.notes.append(f"not traced: {self.untraced_reason}")
        if self.trace_incomplete:
            self.notes.append(
                f"{len(self.trace_incomplete)} test(s) replaced the tracer; what they executed "
                f"is incomplete (e.g. {self.trace_incomplete[0]})"
            )
        output = "\n".join(o for o in self.outputs if o)
        limit = self.limits.output_limit
        return TestRunResult(
            root=self.root,
            tests=tuple(self.tests),
            exit_code=exit_code,
            duration=time.monotonic() - started,
            selected=tuple(a for a in self.args if not a.startswith(FIRST_OPTION)),
            collection_errors=tuple(self.collection_errors),
            timed_out=timed_out,
            cancelled=cancelled,
            network_isolated=network_isolated,
            output_tail=output[-limit:] if limit else output,
            notes=tuple(self.notes),
            traced=self.trace and not self.untraced_reason,
            phases=_sum_phases(self.phases),
        )

    def _stopped_at_failure(self) -> bool:
        return self.stop_on_first_failure and any(not t.ok for t in self.tests)

    def _hang_limit_reached(self) -> bool:
        hangs = sum(1 for t in self.tests if t.outcome == "timeout")
        return bool(self.limits.max_hangs) and hangs >= self.limits.max_hangs

    def _summary_exit_code(self, interrupted: bool) -> int:
        """pytest's exit code for what was seen across processes."""
        if interrupted or self.collection_errors:
            return 2
        if any(not t.ok for t in self.tests):
            return 1
        return 0 if self.tests else 5

    # ---- one pytest process
    def _confine_plan(self, workdir: Path) -> confine.ConfinePlan | None:
        """What the launcher enforces, with a note for each layer this machine cannot give."""
        if not sys.platform.startswith("linux"):
            if self.confinement is not None:
                self.notes.append(
                    f"not confined on {sys.platform}: candidate code can write wherever you can "
                    "and use the network (only Linux has Landlock)"
                )
            return None
        isolated = detect_isolation().network_isolated
        if self.confinement is None:
            return confine.ConfinePlan(loopback_up=isolated)
        abi = confine.landlock_abi()
        writable: tuple[str, ...] = ()
        if abi >= 1:
            writable = (str(self.root), str(workdir), *(str(p) for p in self.confinement.writable))
        else:
            self.notes.append(
                "writes not confined to the scratch copy: this kernel has no Landlock "
                "(Linux 5.13+); candidate code can write wherever you can"
            )
        if abi < 4 and not isolated:
            self.notes.append(
                "network not cut for candidates: no network namespace, and Landlock "
                f"ABI {abi} cannot refuse TCP (needs 4, Linux 6.7+)"
            )
        return confine.ConfinePlan(
            writable=writable,
            deny_tcp=abi >= 4,
            loopback_up=isolated,
            remap=(str(self.confinement.original.resolve()), str(self.root)),
        )

    def _one_process(
        self,
        plan: confine.ConfinePlan | None,
        workdir: Path,
        limits: SandboxLimits,
        deselected: Sequence[str],
        ignored: Sequence[str],
    ) -> tuple[_Attempt, SandboxResult]:
        argv = [
            self.python,
            "-c",
            LAUNCHER,
            "-p",
            PLUGIN_MODULE,
            *PYTEST_OPTIONS,
            *(("--exitfirst",) if self.stop_on_first_failure else ()),
            f"--rootdir={self.root}",
            *(f"--deselect={nodeid}" for nodeid in deselected),
            *(f"--ignore={path}" for path in ignored),
            *self.args,
        ]
        key = protocol.new_key()
        attempt = _Attempt(verifier=protocol.RecordVerifier(key))
        per_test = self.limits.per_test_timeout
        teardown = min(per_test, TEARDOWN_ALLOWANCE)
        hang_after = per_test + teardown + GRACE + PARENT_MARGIN if per_test else 0.0
        collect_after = _collect_timeout(self.limits) + GRACE + PARENT_MARGIN
        with _OwnFds() as fds:
            results_read, results_write = fds.pipe()
            key_read, key_write = fds.pipe()
            os.write(key_write, key)  # 32 bytes: fits the pipe's buffer, never blocks
            fds.close(key_write)
            os.set_blocking(results_read, False)
            env = self._environment(plan, workdir, results_write, key_read)
            attempt.spawned = time.monotonic()
            process = SandboxedProcess(
                argv,
                cwd=self.root,
                env=env,
                limits=limits,
                cancel=self.cancel,
                pass_fds=(results_write, key_read),
            )
            fds.close(results_write)  # the child holds the only write end now
            fds.close(key_read)
            with process:
                attempt, outcome = self._follow(
                    process, attempt, results_read, hang_after, collect_after
                )
        return attempt, outcome

    def _follow(
        self,
        process: SandboxedProcess,
        attempt: _Attempt,
        results: int,
        hang_after: float,
        collect_after: float,
    ) -> tuple[_Attempt, SandboxResult]:
        """Read records until the process ends, killing it when it hangs or forges a record."""
        pending = b""
        since = time.monotonic()
        while True:
            exited = process.wait(POLL_SECONDS)
            data = _read_available(results)
            if data:
                lines = (pending + data).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if self._handle(attempt, line):
                        since = time.monotonic()
            if exited:
                break
            waited = time.monotonic() - since
            if attempt.untrusted:
                process.kill("the test process wrote records the plugin did not sign")
            elif attempt.session_exit is not None and waited > SHUTDOWN_GRACE:
                self.notes.append("pytest did not exit after its session ended; killed it")
                attempt.killed_after_session = True
                process.kill("pytest did not exit after its session ended")
            elif attempt.running is not None and hang_after and waited > hang_after:
                attempt.hung = attempt.running
                process.kill(f"test {attempt.running} did not stop after its timeout")
            elif attempt.collecting is not None and waited > collect_after:
                attempt.hung = "collect:" + attempt.collecting
                process.kill(f"importing {attempt.collecting} did not stop")
        # A line cut short by the end of the process is dropped: it proves nothing either way.
        ended = process.close()
        attempt.reaped = time.monotonic()
        return attempt, ended

    def _environment(
        self, plan: confine.ConfinePlan | None, workdir: Path, results_fd: int, key_fd: int
    ) -> dict[str, str]:
        confined = self.confinement
        env = child_environment(
            os.environ,
            pass_env=self.pass_env,
            private_home=workdir / "home" if confined is not None else None,
            remap=(confined.original, self.root) if confined is not None else None,
        )
        existing = env.get("PYTHONPATH")
        plugin_dir = plugin_directory()
        if not (plugin_dir / f"{PLUGIN_MODULE}.py").exists():  # a temp cleaner removed it
            plugin_directory.cache_clear()
            plugin_dir = plugin_directory()
        env["PYTHONPATH"] = str(plugin_dir) + (os.pathsep + existing if existing else "")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONHASHSEED"] = "0"
        env["PYTHONNOUSERSITE"] = "1"
        env[protocol.ENV_RESULTS_FD] = str(results_fd)
        env[protocol.ENV_KEY_FD] = str(key_fd)
        env[protocol.ENV_ROOT] = str(self.root)
        env[protocol.ENV_TIMEOUT] = f"{self.limits.per_test_timeout:g}"
        env[protocol.ENV_GRACE] = f"{GRACE:g}"
        env[protocol.ENV_MAX_HANGS] = str(self.limits.max_hangs)
        env[protocol.ENV_COLLECT_TIMEOUT] = f"{_collect_timeout(self.limits):g}"
        if plan is not None:
            env[protocol.ENV_CONFINE] = plan.to_json()
        if confined is not None:
            env[protocol.ENV_CANDIDATE] = "1"
        if not self.autoload_plugins:
            env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        if self.trace:
            env[ENV_TRACE] = "1"
        return env

    def _handle(self, attempt: _Attempt, line: bytes) -> bool:
        """Apply one signed line; True when it shows progress (a test or module started/ended).

        From the first line the plugin did not sign, nothing more of the process is believed."""
        if attempt.untrusted or attempt.verifier is None:
            return False
        try:
            record = attempt.verifier.record(line)
        except protocol.ForgedRecord as exc:
            attempt.untrusted = f"the test process forged its results ({exc})"
            return False
        event = record.get("event")
        nodeid = str(record.get("nodeid", ""))
        if event == "start":
            attempt.running = nodeid
            attempt.collecting = None
        elif event == "test":
            case = _case_from_record(record)
            if case is None:
                return False
            attempt.running = None
            attempt.finished[case.nodeid] = case
            attempt.last_test_at = _float_or_none(record.get("t")) or attempt.last_test_at
            # A timeout raised inside the tracer unsets it: expected, not worth a note.
            if record.get("trace_incomplete") is True and case.outcome != "timeout":
                self.trace_incomplete.append(case.nodeid)
            self._add(case)
        elif event == "collect_start":
            attempt.collecting = nodeid
        elif event == "collect_error":
            attempt.collecting = None
            self._add_collection_error(
                CollectionError(
                    path=str(record.get("path") or nodeid),
                    message=str(record.get("message", "")),
                    line=_int_or_none(record.get("line")),
                    nodeid=nodeid,
                    exc_type=_str_or_none(record.get("exc_type")),
                    project_frames=_frames_from_record(record.get("project_frames")),
                )
            )
        elif event == "session_start":
            attempt.session_started = _float_or_none(record.get("t"))
        elif event == "collected":
            attempt.collecting = None
            attempt.collected_at = _float_or_none(record.get("t"))
            nodeids = record.get("nodeids")
            attempt.collected = [str(n) for n in nodeids] if isinstance(nodeids, list) else []
            if self.collected_total is None:
                self.collected_total = len(attempt.collected)
                if self.on_collected is not None:
                    self.on_collected(self.collected_total)
        elif event == "watchdog":
            attempt.watchdog = nodeid
        elif event == "trace":
            self.untraced_reason = str(record.get("reason") or "tracing is unavailable")
        elif event == "session_finish":
            attempt.session_exit = _int_or_none(record.get("exitstatus"))
            attempt.running = None
            attempt.collecting = None
        else:
            return False
        return True

    def _add(self, case: TestCaseResult) -> None:
        self.tests.append(case)
        if self.on_test is not None:
            self.on_test(case)

    def _add_collection_error(self, error: CollectionError) -> None:
        if error not in self.collection_errors:
            self.collection_errors.append(error)

    def _settle(
        self, attempt: _Attempt, ended: SandboxResult
    ) -> tuple[list[str], list[str]] | None:
        """Record what the end of a process means: None, or (node ids, modules) to skip in a
        new process that runs the rest."""
        if attempt.untrusted:
            self.notes.append(f"results not trusted: {attempt.untrusted}")
            self._add(
                TestCaseResult(
                    nodeid=UNTRUSTED_NODEID,
                    outcome="error",
                    exc_type="UntrustedResults",
                    exc_message=attempt.untrusted,
                )
            )
            return None
        if attempt.session_exit is not None:
            return None  # pytest finished on its own
        if ended.cancelled:
            return None
        if attempt.collected is None and attempt.running is None:
            return self._settle_collection(attempt, ended)
        if attempt.running is not None:
            self._add(self._interrupted_case(attempt, attempt.running, ended))
        if ended.timed_out:
            return None
        done = set(attempt.finished) | ({attempt.running} if attempt.running else set())
        remaining = [n for n in attempt.collected or () if n not in done]
        if not remaining:
            return None
        if self._hang_limit_reached() or self._stopped_at_failure():
            return None
        self.notes.append(f"ran the {len(remaining)} remaining test(s) in a new process")
        return sorted(done), []

    def _disagreement(self, attempt: _Attempt, ended: SandboxResult) -> str:
        """Why a session that ended normally is not believed: its exit status or its collected
        tests disagree with its records ("" when they agree)."""
        status = attempt.session_exit
        if status is None or ended.cancelled or ended.timed_out:
            return ""
        if ended.returncode != status and not attempt.killed_after_session:
            return (
                f"pytest's session ended with status {status}, its process with {ended.returncode}"
            )
        cases = attempt.finished.values()
        records_pass = all(case.ok for case in cases) and not self.collection_errors
        missing = [n for n in attempt.collected or () if n not in attempt.finished]
        if records_pass and missing:
            return (
                f"{len(missing)} collected test(s) have no result (e.g. {missing[0]}); "
                f"pytest's exit status {status}"
            )
        if status == 0 and not records_pass:
            return "pytest reported success for a session with failing tests"
        if status not in (0, 5) and records_pass:
            return f"pytest ended with status {status} but no test failed"
        return ""

    def _settle_collection(
        self, attempt: _Attempt, ended: SandboxResult
    ) -> tuple[list[str], list[str]] | None:
        """The process ended before any test ran."""
        output = ended.output
        if attempt.collecting is not None:
            module = attempt.collecting
            hung = attempt.hung == "collect:" + module or attempt.watchdog == "collect:" + module
            if ended.timed_out and not hung:
                return None
            reason = (
                "TimeoutError: importing this module did not finish"
                if hung
                else f"the test process {_death(ended.returncode)} while importing this module"
            )
            self._add_collection_error(CollectionError(path=module, message=reason, nodeid=module))
            return [], [module]
        if ended.timed_out:
            return None
        if _NO_PYTEST.search(output):
            raise CyclefixError(
                f"{self.python} cannot run pytest: install pytest in that environment"
            )
        conftest = _conftest_failure(output, self.root)
        if conftest is not None:
            self._add_collection_error(conftest)
        elif ended.returncode == protocol.CONFINE_EXIT_CODE:
            raise CyclefixError(f"cannot confine the test process: {_first_error_line(output)}")
        elif ended.returncode == 4:
            raise CyclefixError(f"pytest refused the arguments: {_first_error_line(output)}")
        elif ended.returncode not in (0, 5):
            self.notes.append(f"pytest ended before collecting tests: {_first_error_line(output)}")
        return None

    def _interrupted_case(
        self, attempt: _Attempt, nodeid: str, ended: SandboxResult
    ) -> TestCaseResult:
        timeout = self.limits.per_test_timeout
        path = nodeid.split("::", 1)[0]
        if attempt.hung == nodeid or attempt.watchdog == nodeid:
            return TestCaseResult(
                nodeid=nodeid,
                outcome="timeout",
                duration=timeout,
                path=path,
                exc_type="Timeout",
                exc_message=f"timed out after {timeout:g} s (ignored the timeout; process killed)",
            )
        if ended.timed_out:
            return TestCaseResult(
                nodeid=nodeid,
                outcome="error",
                path=path,
                exc_type="Interrupted",
                exc_message=f"the run was stopped during this test: {ended.killed_reason}",
            )
        return TestCaseResult(
            nodeid=nodeid,
            outcome="error",
            path=path,
            exc_type="ProcessExit",
            exc_message=f"the test process {_death(ended.returncode)} while this test was running",
        )


def _collect_timeout(limits: SandboxLimits) -> float:
    return max(MIN_COLLECT_TIMEOUT, 3 * limits.per_test_timeout)


def _death(returncode: int | None) -> str:
    if returncode is None:
        return "ended"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)"}.get(name, "")
        return f"was killed by {name}{hint}"
    return f"exited with code {returncode}"


def _first_error_line(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("ERROR:", "E ")) or "Error" in line:
            return line.strip()[:300]
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "(no output)"


_NO_PYTEST = re.compile(r"No module named '?pytest'?(?:\s|$)")
_CONFTEST = re.compile(r"ImportError while loading conftest '([^']+)'")
_FILE_LINE = re.compile(r'File "([^"]+)", line (\d+)')
_ERROR_LINE = re.compile(r"^E\s+(\w+(?:Error|Exception|Exit)\b.*)$", re.MULTILINE)


def _conftest_failure(output: str, root: Path) -> CollectionError | None:
    """A conftest.py that failed to import stops pytest before our plugin starts."""
    match = _CONFTEST.search(output)
    if match is None:
        return None
    conftest = Path(match.group(1))
    path = _relative(conftest, root) or str(conftest)
    line: int | None = None
    for file_match in _FILE_LINE.finditer(output, match.end()):
        candidate = _relative(Path(file_match.group(1)), root)
        if candidate is not None:
            path, line = candidate, int(file_match.group(2))
    errors = _ERROR_LINE.findall(output, match.end())
    message = errors[-1].strip() if errors else "ImportError while loading conftest"
    nodeid = _relative(conftest, root) or str(conftest)
    return CollectionError(path=path, message=message, line=line, nodeid=nodeid)


def _relative(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root).as_posix()
    except (ValueError, OSError):
        return None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _sum_phases(phases: Sequence[RunPhases]) -> RunPhases | None:
    """The phases of a run's processes added up; None when none was started."""
    if not phases:
        return None
    return RunPhases(
        startup_s=sum(p.startup_s for p in phases),
        collect_s=sum(p.collect_s for p in phases),
        tests_s=sum(p.tests_s for p in phases),
        total_s=sum(p.total_s for p in phases),
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _case_from_record(record: Mapping[str, Any]) -> TestCaseResult | None:
    nodeid = record.get("nodeid")
    outcome = record.get("outcome")
    if not isinstance(nodeid, str) or outcome not in OUTCOMES:
        return None
    frames: list[Frame] = []
    for item in record.get("project_frames") or ():
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            frames.append(
                Frame(
                    path=item["path"],
                    line=_int_or_none(item.get("line")) or 0,
                    function=str(item.get("function", "")),
                    source=str(item.get("source", "")),
                )
            )
    callees = record.get("callees")
    duration = record.get("duration")
    executed = _executed_from_record(record.get("executed"))
    checked: Outcome = outcome
    return TestCaseResult(
        nodeid=nodeid,
        outcome=checked,
        duration=float(duration) if isinstance(duration, (int, float)) else 0.0,
        path=_str_or_none(record.get("path")),
        line=_int_or_none(record.get("line")),
        exc_type=_str_or_none(record.get("exc_type")),
        exc_message=_str_or_none(record.get("exc_message")),
        assert_source=_str_or_none(record.get("assert_source")),
        assert_explanation=_str_or_none(record.get("assert_explanation")),
        input=_str_or_none(record.get("input")),
        expected=_str_or_none(record.get("expected")),
        actual=_str_or_none(record.get("actual")),
        test_source=_str_or_none(record.get("test_source")),
        project_frames=tuple(frames),
        stdout=_str_or_none(record.get("stdout")) or "",
        stderr=_str_or_none(record.get("stderr")) or "",
        line_source=_str_or_none(record.get("line_source")),
        callees=tuple(
            Callee(name, where[0], where[1])
            for name, where in (callees.items() if isinstance(callees, dict) else ())
            if isinstance(name, str)
            and isinstance(where, list)
            and len(where) == 2
            and all(isinstance(part, str) for part in where)
        ),
        executed=executed,
    )


def _frames_from_record(items: object) -> tuple[Frame, ...]:
    """Project frames of a collection-error record; malformed entries are dropped."""
    if not isinstance(items, list):
        return ()
    return tuple(
        Frame(
            path=item["path"],
            line=_int_or_none(item.get("line")) or 0,
            function=str(item.get("function", "")),
            source=str(item.get("source", "")),
        )
        for item in items
        if isinstance(item, dict) and isinstance(item.get("path"), str)
    )


def _executed_from_record(items: object) -> tuple[ExecutedFunction, ...]:
    """The traced functions of a test record; malformed entries are dropped."""
    if not isinstance(items, list):
        return ()
    found: list[ExecutedFunction] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        path, qualname, line = item.get("path"), item.get("qualname"), item.get("line")
        lines = item.get("lines")
        first = _int_or_none(line)
        if not (isinstance(path, str) and isinstance(qualname, str) and first is not None):
            continue
        numbers = (
            tuple(n for n in lines if _int_or_none(n) is not None)
            if isinstance(lines, list)
            else ()
        )
        found.append(
            ExecutedFunction(path, qualname, first, numbers, _probed_calls(item.get("calls")))
        )
    return tuple(found)


def _probed_calls(items: object) -> tuple[ProbedCall, ...]:
    """The probe's calls of one traced function; malformed entries are dropped."""
    if not isinstance(items, list):
        return ()
    return tuple(
        ProbedCall(
            item["call"], _str_or_none(item.get("returned")), _str_or_none(item.get("raised"))
        )
        for item in items
        if isinstance(item, dict) and isinstance(item.get("call"), str)
    )


@functools.lru_cache(maxsize=1)
def plugin_directory() -> Path:
    """A private folder holding only the plugin (and its bytecode), made once per process.

    Only this folder goes on the user's PYTHONPATH: the user's tests cannot import cyclefix,
    and none of our module names (select, run...) can shadow theirs.
    """
    folder = Path(tempfile.mkdtemp(prefix="cyclefix-plugin-"))
    atexit.register(shutil.rmtree, folder, True)
    target = folder / f"{PLUGIN_MODULE}.py"
    shutil.copyfile(Path(__file__).with_name("plugin.py"), target)
    tracer = folder / f"{TRACE_MODULE}.py"
    shutil.copyfile(Path(__file__).with_name("trace.py"), tracer)
    shared = folder / f"{protocol.PROTOCOL_MODULE}.py"
    shutil.copyfile(Path(__file__).with_name("protocol.py"), shared)
    confiner = folder / f"{protocol.CONFINE_MODULE}.py"
    shutil.copyfile(Path(__file__).with_name("confine.py"), confiner)
    for module in (target, tracer, shared, confiner):
        cached = importlib.util.cache_from_source(str(module))
        with contextlib.suppress(py_compile.PyCompileError, OSError):
            py_compile.compile(str(module), cfile=cached, doraise=True)
    return folder


class _OwnFds:
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

    def __enter__(self) -> _OwnFds:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for fd in list(self._open):
            self.close(fd)


def _read_available(fd: int) -> bytes:
    """What the pipe holds now, without waiting."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            break
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
