"""Run pytest on a project under the sandbox and turn our plugin's signed records into results.

The plugin sends one signed line per event down a pipe (protocol.py); this side reads it while
pytest runs (live progress through ``on_test``), kills the run when a test ignores its timeout,
and, when the process dies in the middle (a hang, ``os._exit``, a crash), marks the running test
and runs the rest again without everything already seen (exact node ids: pytest's own
``--deselect`` matches prefixes), a bounded number of times. A line the plugin did not sign, or a session whose exit status and collected tests
disagree with its records, makes the run fail ("UntrustedResults"): code under test cannot
report a pass. Runs on a scratch copy (``confinement``) are confined by confine.py.

This module drives the processes and assembles the result; launch.py prepares each process
(command, environment, private plugin folder, confinement plan) and records.py turns what it
said (signed records, pytest's own output) into typed records and results.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from cyclefix.errors import CyclefixError
from cyclefix.runner import confine, protocol
from cyclefix.runner.disk_use import DiskUse
from cyclefix.runner.launch import (
    GRACE,
    READ_LIMIT,
    Confinement,
    OwnFds,
    ProcessSettings,
    collect_timeout,
    confine_plan,
    process_environment,
    pytest_arguments,
    pytest_argv,
    read_available,
)
from cyclefix.runner.records import (
    NO_PYTEST,
    ProcessReport,
    case_result,
    collection_error,
    conftest_failure,
    death,
    first_error_line,
    out_of_place,
    parse_record,
    sum_phases,
)
from cyclefix.runner.results import (
    CollectionError,
    RunPhases,
    TestCaseResult,
    TestRunResult,
)
from cyclefix.runner.sandbox import (
    SandboxedProcess,
    SandboxLimits,
    SandboxResult,
)
from cyclefix.runner.scratch import remove_tree, restore_scratch, snapshot_scratch
from cyclefix.runner.warm import WarmRun, WarmWorkers, worker_kind

FIRST_OPTION = protocol.FIRST_OPTION
WATCHDOG_EXIT_CODE = protocol.WATCHDOG_EXIT_CODE
TEARDOWN_ALLOWANCE = protocol.TEARDOWN_ALLOWANCE
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
# Bytes one record line may take; past it the line is a flood, not a record (the plugin's
# longest, the collected ids of a 100,000-test suite, is near 10 MiB).
MAX_RECORD_BYTES = 32 << 20
# Bytes of records one process may send; past it, a flood of signed records, not a run (the
# plugin bounds each text it sends: 100,000 tests with their failures stay well under it).
MAX_PROCESS_BYTES = 512 << 20
# The test that stands for a process whose results cannot be trusted.
UNTRUSTED_NODEID = "<cyclefix>::results"
DEFAULT_LIMITS = SandboxLimits()


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
    may_fail: Sequence[str] = (),
    confinement: Confinement | None = None,
    pass_env: Sequence[str] = (),
    warm: WarmWorkers | None = None,
    skip: Sequence[str] = (),
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
    `may_fail`: with it, the tests whose failure does not stop the run (a candidate's
    previously failing tests, run with those before them in their class).
    `confinement` marks `root` as a scratch copy of `confinement.original` that runs untrusted
    code: what its processes write there is put back after each (runner.scratch); they may
    write only there and in a private temp folder (also HOME), make
    no TCP connections, and import the copy where the environment pointed into the original;
    layers this OS lacks are named once in the notes. `pass_env`: environment names passed
    through besides the allowlist (environment.py); ``CYCLEFIX_*`` never is.
    `warm`: the session's warm workers (warm.py); each process of the run is then a fork of
    one, where this machine allows it, instead of a fresh interpreter.
    `skip`: node ids left out of the run, exactly these (pytest's `--deselect` matches
    prefixes: `test_a` would drop `test_ab` too).
    Raises CyclefixError when the folder or the interpreter is unusable, or pytest refuses
    the arguments; test failures, hangs and crashes are results, not errors.
    """
    project = Path(root).resolve()
    if not project.is_dir():
        raise CyclefixError(f"no such project folder: {root}")
    interpreter = python or sys.executable
    if shutil.which(interpreter) is None:
        raise CyclefixError(f"no such Python interpreter: {interpreter}")
    settings = ProcessSettings(
        root=project,
        python=interpreter,
        limits=limits,
        confinement=confinement,
        autoload_plugins=autoload_plugins,
        trace=trace,
        stop_on_first_failure=stop_on_first_failure,
        may_fail=tuple(may_fail),
        pass_env=tuple(pass_env),
    )
    run = _Run(
        settings=settings,
        args=tuple(tests),
        on_test=on_test,
        on_collected=on_collected,
        cancel=cancel,
        warm=warm,
        skip=tuple(skip),
    )
    return run.execute()


@dataclass
class _Run:
    """One run_tests call: its pytest processes, one after another, and what they reported."""

    settings: ProcessSettings
    args: tuple[str, ...]
    on_test: Callable[[TestCaseResult], None] | None
    on_collected: Callable[[int], None] | None
    cancel: threading.Event | None
    warm: WarmWorkers | None = None
    skip: tuple[str, ...] = ()
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
        skip_tests = list(self.skip)
        skip_modules: list[str] = []
        session_exits: list[int | None] = []
        timed_out = cancelled = False
        network_isolated = True
        plan = confine_plan(self.settings, workdir, self.notes)
        # What a process writes in a scratch copy reaches no later process (runner.scratch): a
        # planted conftest.py would decide the next one's verdicts, after a crash or next run.
        confinement = self.settings.confinement
        original = confinement.original if confinement is not None else None
        before = snapshot_scratch(self.settings.root) if original is not None else None
        try:
            for rerun in range(MAX_RERUNS + 1):
                if rerun and before is not None and original is not None:
                    restore_scratch(before, original)
                limits = self.settings.limits
                if limits.run_timeout:
                    remaining = limits.run_timeout - (time.monotonic() - started)
                    if remaining <= 0:
                        timed_out = True
                        break
                    limits = replace(limits, run_timeout=remaining)
                attempt, ended = self._one_process(plan, workdir, limits, skip_tests, skip_modules)
                self.phases.append(attempt.phases())
                attempt.untrusted = attempt.untrusted or attempt.disagreement(
                    ended, bool(self.collection_errors)
                )
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
            if before is not None and original is not None:
                restore_scratch(before, original)
            remove_tree(workdir)
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
        limit = self.settings.limits.output_limit
        return TestRunResult(
            root=self.settings.root,
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
            traced=self.settings.trace and not self.untraced_reason,
            phases=sum_phases(self.phases),
        )

    def _stopped_at_failure(self) -> bool:
        may_fail = set(self.settings.may_fail)
        return self.settings.stop_on_first_failure and any(
            not t.ok and t.nodeid not in may_fail for t in self.tests
        )

    def _hang_limit_reached(self) -> bool:
        hangs = sum(1 for t in self.tests if t.outcome == "timeout")
        return bool(self.settings.limits.max_hangs) and hangs >= self.settings.limits.max_hangs

    def _summary_exit_code(self, interrupted: bool) -> int:
        """pytest's exit code for what was seen across processes."""
        if interrupted or self.collection_errors:
            return 2
        if any(not t.ok for t in self.tests):
            return 1
        return 0 if self.tests else 5

    # ---- one pytest process

    def _one_process(
        self,
        plan: confine.ConfinePlan | None,
        workdir: Path,
        limits: SandboxLimits,
        deselected: Sequence[str],
        ignored: Sequence[str],
    ) -> tuple[ProcessReport, SandboxResult]:
        args = pytest_arguments(self.settings, self.args, deselected, ignored)
        key = protocol.new_key()
        attempt = ProcessReport(verifier=protocol.RecordVerifier(key))
        per_test = self.settings.limits.per_test_timeout
        teardown = min(per_test, TEARDOWN_ALLOWANCE)
        hang_after = per_test + teardown + GRACE + PARENT_MARGIN if per_test else 0.0
        collect_after = collect_timeout(self.settings.limits) + GRACE + PARENT_MARGIN
        with OwnFds() as fds:
            results_read, results_write = fds.pipe()
            key_read, key_write = fds.pipe()
            os.write(key_write, key)  # 32 bytes: fits the pipe's buffer, never blocks
            fds.close(key_write)
            os.set_blocking(results_read, False)
            env = process_environment(self.settings, plan, workdir, results_write, key_read)
            attempt.spawned = time.monotonic()
            # Candidates' runs only: your own tests may write what they like, as under pytest.
            confined = self.settings.confinement is not None
            disk = DiskUse.start(
                (self.settings.root, workdir),
                limits.disk_mb if confined else 0,
                limits.disk_files if confined else 0,
            )
            process = self._start(args, env, limits, (results_write, key_read))
            fds.close(results_write)  # the child holds the only write end now
            fds.close(key_read)
            with process:
                attempt, outcome = self._follow(
                    process, attempt, results_read, (hang_after, collect_after), disk
                )
        return attempt, outcome

    def _start(
        self, args: list[str], env: dict[str, str], limits: SandboxLimits, fds: tuple[int, int]
    ) -> SandboxedProcess | WarmRun:
        """The run's next pytest process: forked by a warm worker, or a fresh one."""
        root = self.settings.root
        if self.warm is not None:
            kind = worker_kind(self.settings)
            forked = self.warm.start(kind, args, env, root, fds, limits, self.cancel)
            if forked is not None:
                return forked
            self.notes.extend(n for n in self.warm.take_notes() if n not in self.notes)
        argv = pytest_argv(self.settings, args)
        return SandboxedProcess(
            argv, cwd=root, env=env, limits=limits, cancel=self.cancel, pass_fds=fds
        )

    def _follow(
        self,
        process: SandboxedProcess | WarmRun,
        attempt: ProcessReport,
        results: int,
        deadlines: tuple[float, float],
        disk: DiskUse,
    ) -> tuple[ProcessReport, SandboxResult]:
        """Read records until the process ends, killing it when it hangs (`deadlines`: seconds
        without progress in a test, in collection), forges a record or fills the disk."""
        hang_after, collect_after = deadlines
        pending = b""
        since = time.monotonic()
        while True:
            exited = process.wait(POLL_SECONDS)
            data = read_available(results)
            attempt.received += len(data)
            if attempt.received > MAX_PROCESS_BYTES and not attempt.untrusted:
                attempt.untrusted = f"the test process sent over {MAX_PROCESS_BYTES} B of records"
            if data and not attempt.untrusted:
                lines = (pending + data).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if self._handle(attempt, line):
                        since = time.monotonic()
                if len(pending) > MAX_RECORD_BYTES:
                    attempt.untrusted = f"the test process wrote a line over {MAX_RECORD_BYTES} B"
                    pending = b""
            if exited:
                if len(data) >= READ_LIMIT:
                    continue  # the pipe may hold more: drain it before believing the end
                break
            waited = time.monotonic() - since
            if not attempt.untrusted:
                attempt.untrusted = disk.exceeded()
            if attempt.untrusted:
                process.kill(attempt.untrusted)
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
        # Before the copy is put back: what the process left there counts.
        attempt.untrusted = attempt.untrusted or disk.exceeded(now=True)
        # A line cut short by the end of the process is dropped: it proves nothing either way.
        ended = process.close()
        attempt.reaped = time.monotonic()
        return attempt, ended

    def _handle(self, attempt: ProcessReport, line: bytes) -> bool:
        """Apply one signed line; True when it shows progress (a test or module started/ended).

        From the first line the plugin did not sign, nothing more of the process is believed."""
        if attempt.untrusted or attempt.verifier is None:
            return False
        try:
            record = parse_record(attempt.verifier.record(line))
        except protocol.ForgedRecord as exc:
            attempt.untrusted = f"the test process forged its results ({exc})"
            return False
        except Exception as exc:  # a signed record no plugin writes: the key is in other hands
            attempt.untrusted = f"the test process sent a record that cannot be read ({exc!r:.80})"
            return False
        if record is None:
            return False
        attempt.untrusted = out_of_place(attempt, record)
        if attempt.untrusted:
            return False
        if record["event"] == "start":
            attempt.running = record["nodeid"]
            attempt.collecting = None
        elif record["event"] == "test":
            case = case_result(record)
            attempt.running = None
            attempt.finished[case.nodeid] = case
            attempt.last_test_at = record.get("t") or attempt.last_test_at
            # A timeout raised inside the tracer unsets it: expected, not worth a note.
            if record.get("trace_incomplete") and case.outcome != "timeout":
                self.trace_incomplete.append(case.nodeid)
            self._add(case)
        elif record["event"] == "collect_start":
            attempt.collecting = record["nodeid"]
        elif record["event"] == "collect_error":
            attempt.collecting = None
            self._add_collection_error(collection_error(record))
        elif record["event"] == "session_start":
            attempt.session_started = record["t"] or None
        elif record["event"] == "collected":
            attempt.collecting = None
            attempt.collected_at = record["t"] or None
            attempt.collected = record["nodeids"]
            attempt.collected_ids = frozenset(attempt.collected)
            attempt.decoy_expected = record["decoy"]
            if self.collected_total is None:
                self.collected_total = len(attempt.collected)
                if self.on_collected is not None:
                    self.on_collected(self.collected_total)
        elif record["event"] == "watchdog":
            attempt.watchdog = record["nodeid"]
        elif record["event"] == "trace":
            self.untraced_reason = record["reason"]
        elif record["event"] == "decoy":
            attempt.decoy = record["outcome"]
        else:
            attempt.session_exit = record["exitstatus"]
            attempt.running = None
            attempt.collecting = None
        return True

    def _add(self, case: TestCaseResult) -> None:
        self.tests.append(case)
        if self.on_test is not None:
            self.on_test(case)

    def _add_collection_error(self, error: CollectionError) -> None:
        if error not in self.collection_errors:
            self.collection_errors.append(error)

    def _settle(
        self, attempt: ProcessReport, ended: SandboxResult
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
            self._add(
                attempt.interrupted_case(
                    attempt.running, ended, self.settings.limits.per_test_timeout
                )
            )
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

    def _settle_collection(
        self, attempt: ProcessReport, ended: SandboxResult
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
                else f"the test process {death(ended.returncode)} while importing this module"
            )
            self._add_collection_error(CollectionError(path=module, message=reason, nodeid=module))
            return [], [module]
        if ended.timed_out:
            return None
        if NO_PYTEST.search(output):
            raise CyclefixError(
                f"{self.settings.python} cannot run pytest: install pytest in that environment"
            )
        conftest = conftest_failure(output, self.settings.root)
        if conftest is not None:
            self._add_collection_error(conftest)
        elif ended.returncode == protocol.CONFINE_EXIT_CODE:
            raise CyclefixError(f"cannot confine the test process: {first_error_line(output)}")
        elif ended.returncode == 4:
            raise CyclefixError(f"pytest refused the arguments: {first_error_line(output)}")
        elif ended.returncode not in (0, 5):
            self.notes.append(f"pytest ended before collecting tests: {first_error_line(output)}")
        return None
