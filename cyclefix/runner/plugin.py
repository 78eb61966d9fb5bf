"""pytest plugin that streams one JSON line per test, with what a person needs to see why it failed.

It is loaded into the user's interpreter (``-p _cyclefix_pytest_plugin``) from a private folder
that holds only copies of this file and its siblings (protocol.py, failures.py, assertions.py,
testfiles.py, trace.py, inert_repr.py, confine.py, integrity.py, watchdog.py, decoy.py...),
so it may import nothing but the standard library, pytest and those, and nothing of cyclefix
becomes importable by the user's tests. It is inert unless
``CYCLEFIX_RESULTS_FD`` and ``CYCLEFIX_KEY_FD`` name the inherited pipes: records go to the
first, signed with the key read from the second when this module is imported (see protocol.py:
the tests cannot sign a record). The runner imports it before pytest starts, so that pytest
does not assertion-rewrite it (a fresh parse and compile, ~50 ms, every run);
PYTEST_DONT_REWRITE tells pytest that this is on purpose.

The hooks live on one `CyclefixPlugin` object, registered at configure time when the pipes are
there; what a failing test's record says is worked out by failures.py and assertions.py.

Records (each a signed JSON line, written whole under a lock; TypedDicts in protocol.py):
    {"event": "collect_start", "nodeid": ...}        a test module is being imported
    {"event": "collect_error", "nodeid", "path", "line", "message", "exc_type", "project_frames"}
    {"event": "session_start", "t": ...}              pytest's session begins (monotonic time)
    {"event": "collected", "nodeids": [...], "t", "decoy"}  the final selection, in run order
    {"event": "decoy", "outcome": ...}                what pytest reported for the decoy test
    {"event": "start", "nodeid": ...}                 a test begins
    {"event": "test", "nodeid", "outcome", ..., "t"}  a test ended (fields of TestCaseResult)
    {"event": "watchdog", "nodeid", "seconds"}        the test ignored its timeout: exiting now
    {"event": "trace", "active": false, "reason": ...} a traced run was asked for but is impossible
    {"event": "session_finish", "exitstatus": n}

A test gets ``CYCLEFIX_TEST_TIMEOUT`` seconds (SIGALRM, re-raised every half second if the code
swallows it); if it is still running ``CYCLEFIX_TEST_GRACE`` seconds later, a watchdog thread
writes a ``watchdog`` line and ends the process with ``os._exit`` (the parent reruns the rest).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from cyclefix.runner import (
        answer_guard,
        assertions,
        decoy,
        failures,
        integrity,
        protocol,
        testfiles,
        watchdog,
    )
else:
    try:  # the runner's private copies, in the test process
        import _cyclefix_answer_guard as answer_guard
        import _cyclefix_assertions as assertions
        import _cyclefix_decoy as decoy
        import _cyclefix_failures as failures
        import _cyclefix_integrity as integrity
        import _cyclefix_protocol as protocol
        import _cyclefix_testfiles as testfiles
        import _cyclefix_watchdog as watchdog
    except ImportError:
        from cyclefix.runner import (
            answer_guard,
            assertions,
            decoy,
            failures,
            integrity,
            protocol,
            testfiles,
            watchdog,
        )

ENV_TRACE = protocol.ENV_TRACE
# The tracer, shipped next to this file (cyclefix/runner/trace.py); imported only when asked.
TRACE_MODULE = protocol.TRACE_MODULE
FIRST_OPTION = protocol.FIRST_OPTION
WATCHDOG_EXIT_CODE = protocol.WATCHDOG_EXIT_CODE

MESSAGE_LIMIT = assertions.MESSAGE_LIMIT
# Teardown after a timed-out call still gets this long to release resources.
TEARDOWN_ALLOWANCE = protocol.TEARDOWN_ALLOWANCE
# The alarm repeats this often while code keeps swallowing it.
ALARM_REPEAT = 0.5
CyclefixTestTimeout = assertions.CyclefixTestTimeout


# Exceptions that skip a test or mark it xfail themselves, whoever raises them.
_SKIPPING = (pytest.skip.Exception, pytest.xfail.Exception)
# A type's own MRO and name, read through the C slots: a project metaclass cannot answer.
_TYPE_MRO = type.__dict__["__mro__"]
_TYPE_NAME = type.__dict__["__name__"]


def _expected_failure(item: pytest.Item, error: BaseException) -> bool:
    """Whether a skipped report is the test's own `xfail` mark taking an ordinary exception
    (sqlparse's `@pytest.mark.xfail` test of code that raises NotImplementedError), not a
    skip or xfail the code under test raised."""
    if item.get_closest_marker("xfail") is None:
        return False
    kinds = _TYPE_MRO.__get__(type(error))
    # By identity and by slot: `in` and `__name__` could run a project metaclass's code.
    skipping = any(kind is skip for kind in kinds for skip in _SKIPPING)
    return not skipping and not any(_TYPE_NAME.__get__(kind) == "SkipTest" for kind in kinds)


class _Writer:
    """Sends signed records down the results pipe, whole lines in order under a lock."""

    def __init__(self, fd: int, signer: protocol.RecordSigner) -> None:
        self._fd = fd
        self._signer = signer
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, object]) -> None:
        with self._lock:
            view = memoryview(self._signer.line(record))
            while view:
                written = os.write(self._fd, view)
                view = view[written:]


def _open_channel() -> _Writer | None:
    """The results pipe, with the key read (and its pipe closed) now, at import: before pytest
    loads any project code, and without keeping the key bytes anywhere but the HMAC state."""
    results_fd = os.environ.pop(protocol.ENV_RESULTS_FD, "")
    key_fd = os.environ.pop(protocol.ENV_KEY_FD, "")
    if not (results_fd.isdigit() and key_fd.isdigit()):
        return None
    os.set_inheritable(int(results_fd), False)  # the tests' subprocesses get no copy
    return _Writer(int(results_fd), protocol.RecordSigner(protocol.read_key(int(key_fd))))


_channel = _open_channel()
# Before pytest imports any project code: what the answer's own lines may not do.
answer_guard.install_from_environment(
    protocol.ENV_ANSWER_LINES, os.environ.get(protocol.ENV_ROOT) or os.getcwd()
)


class _Settings:
    """What the runner asked for, from the test process's environment."""

    def __init__(self, config: pytest.Config) -> None:
        env = os.environ
        self.root = Path(env.get(protocol.ENV_ROOT) or str(config.rootpath)).resolve()
        self.timeout = float(env.get(protocol.ENV_TIMEOUT) or 3.0)
        self.grace = float(env.get(protocol.ENV_GRACE) or 2.0)
        self.collect_timeout = float(env.get(protocol.ENV_COLLECT_TIMEOUT) or 0.0)
        # Stop the session after this many timed-out tests (0: never).
        self.max_hangs = int(env.get(protocol.ENV_MAX_HANGS) or 0)
        # A candidate's run: a skip raised by the code under test is an error there.
        self.candidate = env.get(protocol.ENV_CANDIDATE) == "1"
        self.trace = env.get(ENV_TRACE) == "1"
        # Stop at the first test that does not pass but these (None: pytest's -x decides).
        may_fail = config.getoption("cyclefix_may_fail", default=None)
        self.may_fail = None if may_fail is None else frozenset(str(m) for m in may_fail)


# ---------------------------------------------------------------- module hooks


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        FIRST_OPTION,
        action="append",
        default=[],
        dest="cyclefix_first",
        help="cyclefix: run this node id (or a prefix of ids) before the others",
    )
    parser.addoption(
        protocol.SKIP_OPTION,
        action="append",
        default=[],
        dest="cyclefix_skip",
        help="cyclefix: leave out this exact node id (a rerun: the tests already seen)",
    )
    parser.addoption(
        protocol.MAY_FAIL_OPTION,
        action="append",
        default=None,
        dest="cyclefix_may_fail",
        help="cyclefix: stop at the first test that does not pass, unless it is one of these",
    )


def pytest_configure(config: pytest.Config) -> None:
    if _channel is not None:
        failures.keep_caught_tracebacks()  # before integrity's baseline records unittest
        plugin = CyclefixPlugin(_channel, _Settings(config))
        config.pluginmanager.register(plugin, "cyclefix-results")
        plugin.start()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    skip = {str(s) for s in (config.getoption("cyclefix_skip", default=None) or [])}
    if skip:
        left_out = [item for item in items if item.nodeid in skip]
        if left_out:
            items[:] = [item for item in items if item.nodeid not in skip]
            config.hook.pytest_deselected(items=left_out)
    first = [str(f) for f in (config.getoption("cyclefix_first", default=None) or [])]
    if first:

        def rank(item: pytest.Item) -> int:
            for index, prefix in enumerate(first):
                if item.nodeid == prefix or item.nodeid.startswith((prefix + "::", prefix + "[")):
                    return index
            return len(first)

        items.sort(key=rank)  # stable: the rest keep pytest's order
    plugin = config.pluginmanager.get_plugin("cyclefix-results")
    if isinstance(plugin, CyclefixPlugin) and plugin.settings.candidate and items:
        plugin.decoy = decoy.append(
            session, items
        )  # last: after every test the candidate could touch


# ---------------------------------------------------------------- the plugin object


class CyclefixPlugin:
    """The hooks, and everything they share about the test (or module) running now."""

    def __init__(self, writer: _Writer, settings: _Settings) -> None:
        self.writer = writer
        self.settings = settings
        self.paths = failures.ProjectPaths(settings.root)
        self.watchdog = watchdog.Watchdog(writer, settings.timeout)
        self.session: pytest.Session | None = None
        self.hangs = 0
        # Tests whose code under test skipped them (a candidate's run: errors, not passes).
        self.skipped_by_code: set[str] = set()
        self.call_exceptions: dict[str, BaseException] = {}
        self.current: str | None = None
        self.deadline = 0.0
        self.alarm_fired = False
        self.alarm_installed = False
        self.last_compare: assertions.Compared | None = None
        self.reports: dict[str, pytest.TestReport] = {}
        self.details: dict[str, protocol.Details] = {}
        self.collect_details: dict[str, protocol.CollectErrorRecord] = {}
        # The per-test execution tracer (a _cyclefix_trace.Tracer) in a traced run, else None.
        self.tracer: Any = None
        # A candidate's run: what its code may not rebind (runner.integrity), and the tests.
        self.integrity: integrity.Baseline | None = None
        self.items: dict[str, pytest.Item] = {}
        # A candidate's run: the test made to fail, run last (runner.decoy).
        self.decoy: decoy.Decoy | None = None

    def start(self) -> None:
        """Install the alarm (main thread only), the tracer when asked, and the watchdog."""
        settings = self.settings
        if threading.current_thread() is threading.main_thread() and (
            settings.timeout > 0 or settings.collect_timeout > 0
        ):
            signal.signal(signal.SIGALRM, self._on_alarm)
            self.alarm_installed = True
        if settings.trace:
            self.tracer = self._start_tracer()
        self.watchdog.start()

    def _start_tracer(self) -> Any:
        """The per-test tracer, or None after writing why tracing is impossible here."""
        try:
            tracer = importlib.import_module(TRACE_MODULE).Tracer(str(self.settings.root))
            if tracer.install():
                return tracer
            reason = str(tracer.unavailable)
        except Exception as exc:  # never let tracing break the run: the ranking falls back
            reason = f"the tracer failed to start: {exc!r}"
        self.writer.write({"event": "trace", "active": False, "reason": reason})
        return None

    # ---- timeouts

    def _on_alarm(self, signum: int, frame: Any) -> None:
        if self.current is None and self.watchdog.label == "":
            return
        self.alarm_fired = True
        raise CyclefixTestTimeout(f"timed out after {self.settings.timeout:g} s")

    def _arm(self, seconds: float) -> None:
        if self.alarm_installed and seconds > 0:
            signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001), ALARM_REPEAT)

    def _disarm(self) -> None:
        if self.alarm_installed:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)

    def _phase(self, when: str) -> Any:
        """Runs one phase of a test (as a hook wrapper) under what is left of its time."""
        if self.settings.timeout <= 0:
            yield
            return
        remaining = self.deadline - time.monotonic()
        if when == "teardown":
            remaining = max(remaining, min(self.settings.timeout, TEARDOWN_ALLOWANCE))
        self._arm(remaining)
        try:
            yield
        finally:
            self._disarm()

    # ---- session and collection

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # The end of start-up: interpreter, pytest, plugins, initial conftests.
        if self.settings.candidate:  # before any test module (and code under test) is imported
            ours = (assertions, failures, integrity, protocol, testfiles, watchdog)
            self.integrity = integrity.Baseline((sys.modules[__name__], *ours))
            # This plugin's own state: where its records go and how they are made.
            self.integrity.pin("the cyclefix plugin", self, ("writer", "settings", "watchdog"))
            self.integrity.pin("the cyclefix plugin's writer", self.writer, ())
        self.writer.write({"event": "session_start", "t": time.monotonic()})

    def pytest_collectstart(self, collector: pytest.Collector) -> None:
        if isinstance(collector, pytest.Module):
            self.writer.write({"event": "collect_start", "nodeid": collector.nodeid})

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Any:
        limit = self.settings.collect_timeout
        guarded = limit > 0 and isinstance(collector, pytest.Module)
        if guarded:
            label = "collect:" + collector.nodeid
            self.watchdog.set(time.monotonic() + limit + self.settings.grace, label)
            self._arm(limit)
        try:
            yield
        finally:
            if guarded:
                self._disarm()
                self.watchdog.set(None, "")

    def pytest_exception_interact(self, node: Any, call: pytest.CallInfo[Any], report: Any) -> None:
        if not isinstance(report, pytest.CollectReport) or call.excinfo is None:
            return
        try:
            self.collect_details[report.nodeid] = failures.collect_error(
                self.paths, report.nodeid, call.excinfo, self.settings.collect_timeout
            )
        except Exception as exc:  # never let our bookkeeping break the run
            self.collect_details[report.nodeid] = {
                "event": "collect_error",
                "nodeid": report.nodeid,
                "message": f"(cyclefix plugin: {exc!r})",
            }

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if not report.failed:
            return
        record: protocol.CollectErrorRecord = {
            "event": "collect_error",
            "nodeid": report.nodeid,
            "path": None,
            "line": None,
            "message": "",
            "exc_type": None,
            "project_frames": [],
        }
        record.update(self.collect_details.pop(report.nodeid, {}))
        record["path"] = record.get("path") or report.nodeid.split("::")[0] or None
        if not record["message"]:
            longrepr = str(report.longrepr)
            record["message"] = assertions.clean(assertions.bound(longrepr, MESSAGE_LIMIT))
        self.writer.write(record)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.session = session
        tests = [item for item in session.items if not self._is_decoy(item.nodeid)]
        if self.integrity is not None:
            self.integrity.settle()
            self.integrity.take_plugins(session.config.pluginmanager.get_plugins())
            self.integrity.take_tests(tests)
            self.items = {item.nodeid: item for item in tests}
        nodeids = [i.nodeid for i in tests]
        self.writer.write(
            {
                "event": "collected",
                "nodeids": nodeids,
                "t": time.monotonic(),
                "decoy": self.decoy is not None,
            }
        )

    def _is_decoy(self, nodeid: str) -> bool:
        return self.decoy is not None and nodeid == self.decoy.item.nodeid

    # ---- running tests

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.current = nodeid
        failures.forget_caught_tracebacks()
        self.alarm_fired = False
        self.last_compare = None
        self.reports = {}
        timeout = self.settings.timeout
        self.deadline = time.monotonic() + timeout
        if timeout > 0:
            hard = self.deadline + min(timeout, TEARDOWN_ALLOWANCE) + self.settings.grace
            self.watchdog.set(hard, nodeid)
        if not self._is_decoy(nodeid):
            self.writer.write({"event": "start", "nodeid": nodeid})

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Any:
        if self.tracer is not None:
            self.tracer.begin()
        yield from self._phase("setup")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        yield from self._phase("call")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Any:
        if self.tracer is not None:
            self.tracer.pause()  # teardown is not the test's behaviour
        yield from self._phase("teardown")

    def pytest_assertrepr_compare(
        self, config: pytest.Config, op: str, left: object, right: object
    ) -> None:
        # pytest calls this with the very objects of a failing comparison: keep their reprs.
        if self.current is not None:
            self.last_compare = (op, assertions.safe_repr(left), assertions.safe_repr(right))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        if self.decoy is not None and item is self.decoy.item:
            self.decoy.made(call.when, call.excinfo.value if call.excinfo is not None else None)
            return
        if call.excinfo is None:
            return
        # pytest turns unittest.SkipTest into its own skip, raised afresh: the test call's own
        # exception still has the frames that raised it.
        raw = self.call_exceptions.pop(item.nodeid, None)
        report = outcome.get_result()
        if report.skipped and self.settings.candidate and item.nodeid not in self.details:
            error = raw or call.excinfo.value
            if not _expected_failure(item, error):
                self._refuse_skip_by_code_under_test(item.nodeid, error)
            return
        if not report.failed or item.nodeid in self.details:
            return  # the first failing phase says why
        try:
            details = failures.failure_details(self.paths, item, call.excinfo, self.last_compare)
        except Exception as exc:  # never let our bookkeeping break the run
            error = call.excinfo.value
            message = assertions.bound(assertions.message_of(error), MESSAGE_LIMIT)
            details = {
                "exc_type": type(error).__name__,
                "exc_message": assertions.clean(message),
                "plugin_error": repr(exc),
            }
        self.details[item.nodeid] = details

    @pytest.hookimpl(hookwrapper=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> Any:
        outcome = yield
        error = outcome.excinfo[1] if outcome.excinfo is not None else None
        skip_test = isinstance(error, BaseException) and type(error).__name__ == "SkipTest"
        if self.settings.candidate and skip_test and error is not None:
            self.call_exceptions[pyfuncitem.nodeid] = error

    def _refuse_skip_by_code_under_test(self, nodeid: str, error: BaseException) -> None:
        """In a candidate's run, a skip (or xfail) raised from project code that is not a test
        is the candidate dodging the test: it becomes an error, not a pass."""
        for frame, line in reversed(list(traceback.walk_tb(error.__traceback__))):
            relative = self.paths.relative(frame.f_code.co_filename)
            if relative is not None and not testfiles.is_pytest_file(relative):
                self.skipped_by_code.add(nodeid)
                self.details[nodeid] = {
                    "exc_type": "SkippedByCodeUnderTest",
                    "exc_message": f"{relative}:{line} skipped the test ({type(error).__name__}); "
                    "the code under test may not skip tests",
                    "path": relative,
                    "line": line,
                }
                return

    @pytest.hookimpl(tryfirst=True)  # the decoy's report, before pytest's session counts it
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.decoy is not None and self._is_decoy(report.nodeid):
            self.decoy.logged(report)
        elif report.when is not None:
            self.reports[report.when] = report

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.watchdog.set(None, "")
        if self.decoy is not None and self._is_decoy(nodeid):
            self._finish_decoy(self.decoy)
            return
        record = self._test_record(nodeid)
        self._check_integrity(record)
        if self.tracer is not None:
            # Arguments and results of the first calls, only where a failing test needs them.
            failing = record["outcome"] not in ("passed", "skipped")
            record["executed"] = self.tracer.take(calls=failing)
            if self.tracer.incomplete:
                record["trace_incomplete"] = True  # the test replaced our tracer for a while
        self.current = None
        self.details.pop(nodeid, None)
        self.reports = {}
        record["t"] = time.monotonic()
        self.writer.write(record)
        if record["outcome"] == "timeout":
            self.hangs += 1
            max_hangs = self.settings.max_hangs
            if max_hangs and self.hangs >= max_hangs and self.session is not None:
                # The rest would most likely hang too, a timeout each: not worth the wait.
                self.session.shouldstop = f"cyclefix: {self.hangs} test(s) timed out"
        # -x for a run whose failing tests must all run: it stops at any other failure.
        may_fail = self.settings.may_fail
        failed = record["outcome"] not in ("passed", "skipped")
        unexpected = failed and may_fail is not None and record["nodeid"] not in may_fail
        if unexpected and self.session is not None:
            self.session.shouldstop = "cyclefix: a test that passed before does not pass"

    def _finish_decoy(self, check: decoy.Decoy) -> None:
        if self.tracer is not None:
            self.tracer.take(calls=False)  # nothing of the project ran: only clear the record
        self.current = None
        self.reports = {}
        self.writer.write({"event": "decoy", "outcome": check.outcome})

    def _check_integrity(self, record: protocol.CaseRecord) -> None:
        """A test after which the test machinery is not what it was errs, and ends the run:
        the code under test rebound what runs or reports the tests (runner.integrity)."""
        if self.integrity is None or self.session is None:
            return
        plugins = self.session.config.pluginmanager.get_plugins()
        found = self.integrity.changed(plugins, self.items.get(record["nodeid"]))
        if found:
            record["outcome"] = "error"
            record["exc_type"] = "ReplacedTestMachinery"
            record["exc_message"] = integrity.describe(found)
            self.session.shouldstop = "cyclefix: the code under test replaced test machinery"

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.writer.write({"event": "session_finish", "exitstatus": int(exitstatus)})

    # ---- the record of one test

    def _test_record(self, nodeid: str) -> protocol.CaseRecord:
        found = self.details.get(nodeid)
        details: protocol.Details = found.copy() if found is not None else {}
        timed_out = self.alarm_fired or details.get("exc_type") == CyclefixTestTimeout.__name__
        return failures.case_record(
            nodeid,
            self.reports,
            details,
            timeout=self.settings.timeout if timed_out else None,
            skipped_by_code=nodeid in self.skipped_by_code,
        )
