"""pytest plugin that streams one JSON line per test, with what a person needs to see why it failed.

It is loaded into the user's interpreter (``-p _cyclefix_pytest_plugin``) from a private folder
that holds only copies of this file and of ``protocol.py``, so it may import nothing but the
standard library, pytest and the protocol, and nothing of cyclefix becomes importable by the
user's tests. It is inert unless ``CYCLEFIX_RESULTS_FD`` and ``CYCLEFIX_KEY_FD`` name the
inherited pipes: records go to the first, signed with the key read from the second when this
module is imported (see protocol.py: the tests cannot sign a record). The runner imports it
before pytest starts, so that pytest does not assertion-rewrite it (a fresh parse and compile,
~50 ms, every run); PYTEST_DONT_REWRITE tells pytest that this is on purpose.

Records (each a signed JSON line, written whole under a lock; see protocol.py):
    {"event": "collect_start", "nodeid": ...}        a test module is being imported
    {"event": "collect_error", "nodeid", "path", "line", "message", "exc_type", "project_frames"}
    {"event": "session_start", "t": ...}              pytest's session begins (monotonic time)
    {"event": "collected", "nodeids": [...], "t"}     the final selection, in run order
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

import ast
import importlib.util
import inspect
import linecache
import os
import reprlib
import signal
import textwrap
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from cyclefix.runner import protocol
else:
    try:  # the runner's private copy, in the test process
        import _cyclefix_protocol as protocol
    except ImportError:
        from cyclefix.runner import protocol

# "1": record which project lines each test executed (setup and call), in its record.
ENV_TRACE = "CYCLEFIX_TRACE"
# The tracer, shipped next to this file (cyclefix/runner/trace.py); imported only when asked.
TRACE_MODULE = "_cyclefix_trace"
FIRST_OPTION = protocol.FIRST_OPTION
WATCHDOG_EXIT_CODE = protocol.WATCHDOG_EXIT_CODE

OUTPUT_LIMIT = 4096
MESSAGE_LIMIT = 2000
VALUE_LIMIT = 1000
SOURCE_LIMIT = 4000
# Teardown after a timed-out call still gets this long to release resources.
TEARDOWN_ALLOWANCE = protocol.TEARDOWN_ALLOWANCE
# The alarm repeats this often while code keeps swallowing it.
ALARM_REPEAT = 0.5
# Paths under these folders are never "project files".
FOREIGN_PARTS = frozenset(
    {".venv", "venv", ".tox", ".nox", "site-packages", "dist-packages", "node_modules", ".git"}
)
# Builtins that wrap the call under test in an assert (len(f(x)) == 3): look inside them.
WRAPPER_CALLS = frozenset(
    {
        "len", "sorted", "list", "tuple", "set", "frozenset", "dict", "str", "int", "float",
        "bool", "abs", "round", "sum", "min", "max", "repr", "type", "reversed", "any", "all",
        "isinstance", "next", "iter", "approx",
    }
)  # fmt: skip
# How an operator reads when the actual value stands on its right: `2 < f(x)` is `f(x) > 2`.
MIRRORED_OPS = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}


class CyclefixTestTimeout(BaseException):
    """Raised inside a test that ran past its time budget (BaseException: `except Exception`
    in user code does not swallow it)."""


def _bound(text: str, limit: int) -> str:
    """Keep the head and tail of `text`, with a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    marker_budget = 40
    keep = max(limit - marker_budget, 2)
    head = keep // 2
    tail = keep - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n... [{cut} characters cut] ...\n{text[len(text) - tail :]}"


def _clean(text: str) -> str:
    """Make text safe to encode as UTF-8 (lone surrogates from undecodable bytes)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# How deep objects without a repr of their own are opened (a linked list shows two nodes).
FIELDS_DEPTH = 2


def _safe_repr(value: object, limit: int = VALUE_LIMIT) -> str:
    """repr() of a value the test computed; huge containers are abbreviated, failures named."""
    try:
        size = len(value) if isinstance(value, (list, tuple, set, frozenset, dict)) else 0
        huge = size > 10_000  # abbreviated: the full repr could be megabytes
        if huge:
            text = f"{reprlib.Repr().repr(value)}  # {size} items"
        else:
            text = _fields_repr(value, FIELDS_DEPTH) or repr(value)
    except CyclefixTestTimeout:
        raise
    except Exception as exc:  # a broken __repr__ must not hide the failure
        text = f"<repr of {type(value).__name__} failed: {type(exc).__name__}>"
    return _clean(_bound(text, limit))


def _fields_repr(value: object, depth: int) -> str | None:
    """`Node(value=1, successor=None)` for an object whose class keeps object's repr (which
    shows only an address); None for anything else. Nested objects `depth` levels deep."""
    if depth <= 0 or type(value).__repr__ is not object.__repr__:
        return None
    fields = getattr(value, "__dict__", None)
    if not isinstance(fields, dict):
        return None
    shown = ", ".join(
        f"{name}={_fields_repr(field, depth - 1) or repr(field)}"
        for name, field in fields.items()
        if not name.startswith("_")
    )
    return f"{type(value).__name__}({shown})"


def _is_test_file(path: Path) -> bool:
    name = path.name
    return (
        (name.startswith("test_") and name.endswith(".py"))
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


class _Writer:
    """Sends signed records down the results pipe, whole lines in order under a lock."""

    def __init__(self, fd: int, signer: protocol.RecordSigner) -> None:
        self._fd = fd
        self._signer = signer
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
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


class _State:
    """Everything the hooks share for the test that is running now."""

    def __init__(self, writer: _Writer, root: Path, timeout: float, grace: float) -> None:
        self.writer = writer
        self.root = root
        self.timeout = timeout
        self.grace = grace
        self.collect_timeout = 0.0
        # Stop the session after this many timed-out tests (0: never); `session` is set then.
        self.max_hangs = 0
        self.hangs = 0
        self.session: pytest.Session | None = None
        # A candidate's run; tests that its code under test skipped (errors, not passes).
        self.candidate = False
        self.skipped_by_code: set[str] = set()
        self.call_exceptions: dict[str, BaseException] = {}
        self.current: str | None = None
        self.deadline = 0.0
        self.alarm_fired = False
        self.alarm_installed = False
        self.last_compare: tuple[str, str, str] | None = None
        self.phases: dict[str, Any] = {}
        self.details: dict[str, dict[str, Any]] = {}
        self.collect_details: dict[str, dict[str, Any]] = {}
        # The watchdog's view: when the running phase must be over, no matter what.
        self.hard_deadline: float | None = None
        self.hard_label = ""
        self.watchdog_idle = False
        self.cond = threading.Condition()
        self._relative_cache: dict[str, str | None] = {}
        # The per-test execution tracer (a _cyclefix_trace.Tracer) in a traced run, else None.
        self.tracer: Any = None

    def relative(self, path: Path | str) -> str | None:
        """Path relative to the project root, or None when it is outside or not a project file."""
        key = str(path)
        if key in self._relative_cache:
            return self._relative_cache[key]
        result = None
        if os.path.isabs(key):
            try:
                rel = Path(key).resolve().relative_to(self.root)
            except (ValueError, OSError, RuntimeError):
                rel = None
            if rel is not None and not any(part in FOREIGN_PARTS for part in rel.parts):
                result = rel.as_posix()
        self._relative_cache[key] = result
        return result


_state: _State | None = None


# ---------------------------------------------------------------- set-up


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        FIRST_OPTION,
        action="append",
        default=[],
        dest="cyclefix_first",
        help="cyclefix: run this node id (or a prefix of ids) before the others",
    )


def pytest_configure(config: pytest.Config) -> None:
    global _state
    if _channel is None:
        return
    root = Path(os.environ.get(protocol.ENV_ROOT) or str(config.rootpath)).resolve()
    timeout = float(os.environ.get(protocol.ENV_TIMEOUT) or 3.0)
    grace = float(os.environ.get(protocol.ENV_GRACE) or 2.0)
    state = _State(_channel, root, timeout, grace)
    state.collect_timeout = float(os.environ.get(protocol.ENV_COLLECT_TIMEOUT) or 0.0)
    state.max_hangs = int(os.environ.get(protocol.ENV_MAX_HANGS) or 0)
    state.candidate = os.environ.get(protocol.ENV_CANDIDATE) == "1"
    if threading.current_thread() is threading.main_thread() and (
        timeout > 0 or state.collect_timeout > 0
    ):
        signal.signal(signal.SIGALRM, _on_alarm)
        state.alarm_installed = True
    if os.environ.get(ENV_TRACE) == "1":
        state.tracer = _start_tracer(state)
    _state = state
    threading.Thread(target=_watchdog, args=(state,), name="cyclefix-watchdog", daemon=True).start()


def _start_tracer(state: _State) -> Any:
    """The per-test tracer, or None after writing why tracing is impossible here."""
    try:
        tracer = importlib.import_module(TRACE_MODULE).Tracer(str(state.root))
        if tracer.install():
            return tracer
        reason = str(tracer.unavailable)
    except Exception as exc:  # never let tracing break the run: the ranking falls back
        reason = f"the tracer failed to start: {exc!r}"
    state.writer.write({"event": "trace", "active": False, "reason": reason})
    return None


# ---------------------------------------------------------------- timeouts


def _on_alarm(signum: int, frame: Any) -> None:
    state = _state
    if state is None or (state.current is None and state.hard_label == ""):
        return
    state.alarm_fired = True
    raise CyclefixTestTimeout(f"timed out after {state.timeout:g} s")


def _arm(state: _State, seconds: float) -> None:
    if state.alarm_installed and seconds > 0:
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001), ALARM_REPEAT)


def _disarm(state: _State) -> None:
    if state.alarm_installed:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)


def _set_hard_deadline(state: _State, deadline: float | None, label: str) -> None:
    with state.cond:
        state.hard_deadline = deadline
        state.hard_label = label
        # Wake the watchdog only when it sleeps with no deadline at all: a later deadline it
        # finds by itself when the earlier one passes (no wake-up per test).
        if deadline is not None and state.watchdog_idle:
            state.cond.notify()


def _watchdog(state: _State) -> None:
    """Ends the process when a test or import ignores its timeout (signals blocked or swallowed)."""
    with state.cond:
        while True:
            if state.hard_deadline is None:
                state.watchdog_idle = True
                state.cond.wait()
                state.watchdog_idle = False
                continue
            delay = state.hard_deadline - time.monotonic()
            if delay > 0:
                state.cond.wait(delay)
                continue
            label = state.hard_label
            break
    try:
        state.writer.write({"event": "watchdog", "nodeid": label, "seconds": state.timeout})
    finally:
        os._exit(WATCHDOG_EXIT_CODE)


# ---------------------------------------------------------------- collection


def pytest_collectstart(collector: pytest.Collector) -> None:
    state = _state
    if state is not None and isinstance(collector, pytest.Module):
        state.writer.write({"event": "collect_start", "nodeid": collector.nodeid})


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    state = _state
    guarded = (
        state is not None and state.collect_timeout > 0 and isinstance(collector, pytest.Module)
    )
    if state is not None and guarded:
        label = "collect:" + collector.nodeid
        _set_hard_deadline(state, time.monotonic() + state.collect_timeout + state.grace, label)
        _arm(state, state.collect_timeout)
    try:
        yield
    finally:
        if state is not None and guarded:
            _disarm(state)
            _set_hard_deadline(state, None, "")


def pytest_exception_interact(node: Any, call: pytest.CallInfo[Any], report: Any) -> None:
    state = _state
    if state is None or not isinstance(report, pytest.CollectReport) or call.excinfo is None:
        return
    try:
        state.collect_details[report.nodeid] = _collect_error_details(state, call.excinfo)
    except Exception as exc:  # never let our bookkeeping break the run
        state.collect_details[report.nodeid] = {"message": f"(cyclefix plugin: {exc!r})"}


def _collect_error_details(
    state: _State, excinfo: pytest.ExceptionInfo[BaseException]
) -> dict[str, Any]:
    exc = excinfo.value
    cause: BaseException = exc
    # pytest wraps the real error (CollectError from ..., ConftestImportFailure.cause).
    inner = getattr(exc, "cause", None) or exc.__cause__
    if isinstance(inner, BaseException):
        cause = inner
    if isinstance(cause, CyclefixTestTimeout):
        took = f"{state.collect_timeout:g} s"
        return {"message": f"TimeoutError: importing the module took over {took}"}
    if isinstance(cause, SyntaxError):
        text = f"{type(cause).__name__}: {cause.msg}"
        if cause.text:
            text += f": {cause.text.strip()}"
        path = state.relative(cause.filename) if cause.filename else None
        details: dict[str, Any] = {
            "path": path,
            "line": cause.lineno,
            "message": _clean(_bound(text, MESSAGE_LIMIT)),
            "exc_type": type(cause).__name__,
        }
        if path is not None and cause.lineno and not _is_test_file(Path(path)):
            # A project module that does not parse: a bug at that line, not a broken test.
            source = _clean((cause.text or "").strip())
            details["project_frames"] = [
                {"path": path, "line": cause.lineno, "function": "<module>", "source": source}
            ]
        return details
    path = None
    line = None
    # Frames in project non-test files, deepest last: where project code failed at import.
    frames: list[dict[str, Any]] = []
    tb = cause.__traceback__
    while tb is not None:  # deepest frame that is a project file (source or test)
        filename = tb.tb_frame.f_code.co_filename
        rel = state.relative(filename)
        if rel is not None:
            path, line = rel, tb.tb_lineno
            if not _is_test_file(Path(rel)):
                source = _clean(linecache.getline(filename, tb.tb_lineno).strip())
                frames.append(
                    {
                        "path": rel,
                        "line": tb.tb_lineno,
                        "function": tb.tb_frame.f_code.co_name,
                        "source": source,
                    }
                )
        tb = tb.tb_next
    text = f"{type(cause).__name__}: {_message(cause)}"
    return {
        "path": path,
        "line": line,
        "message": _clean(_bound(text, MESSAGE_LIMIT)),
        "exc_type": type(cause).__name__,
        "project_frames": frames[-20:],
    }


def pytest_collectreport(report: pytest.CollectReport) -> None:
    state = _state
    if state is None or not report.failed:
        return
    details = state.collect_details.pop(report.nodeid, {})
    path = details.get("path") or report.nodeid.split("::")[0] or None
    message = details.get("message") or _clean(_bound(str(report.longrepr), MESSAGE_LIMIT))
    state.writer.write(
        {
            "event": "collect_error",
            "nodeid": report.nodeid,
            "path": path,
            "line": details.get("line"),
            "message": message,
            "exc_type": details.get("exc_type"),
            "project_frames": details.get("project_frames") or [],
        }
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    first = [str(f) for f in (config.getoption("cyclefix_first", default=None) or [])]
    if not first:
        return

    def rank(item: pytest.Item) -> int:
        for index, prefix in enumerate(first):
            if item.nodeid == prefix or item.nodeid.startswith((prefix + "::", prefix + "[")):
                return index
        return len(first)

    items.sort(key=rank)  # stable: the rest keep pytest's order


def pytest_collection_finish(session: pytest.Session) -> None:
    state = _state
    if state is not None:
        state.session = session
        nodeids = [i.nodeid for i in session.items]
        state.writer.write({"event": "collected", "nodeids": nodeids, "t": time.monotonic()})


# ---------------------------------------------------------------- running tests


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    state = _state
    if state is None:
        return
    state.current = nodeid
    state.alarm_fired = False
    state.last_compare = None
    state.phases = {}
    state.deadline = time.monotonic() + state.timeout
    if state.timeout > 0:
        hard = state.deadline + min(state.timeout, TEARDOWN_ALLOWANCE) + state.grace
        _set_hard_deadline(state, hard, nodeid)
    state.writer.write({"event": "start", "nodeid": nodeid})


def _phase_wrapper(state: _State | None, when: str) -> Any:
    if state is None or state.timeout <= 0:
        yield
        return
    remaining = state.deadline - time.monotonic()
    if when == "teardown":
        remaining = max(remaining, min(state.timeout, TEARDOWN_ALLOWANCE))
    _arm(state, remaining)
    try:
        yield
    finally:
        _disarm(state)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    if _state is not None and _state.tracer is not None:
        _state.tracer.begin()
    yield from _phase_wrapper(_state, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    yield from _phase_wrapper(_state, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Any:
    if _state is not None and _state.tracer is not None:
        _state.tracer.pause()  # teardown is not the test's behaviour
    yield from _phase_wrapper(_state, "teardown")


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: object, right: object) -> None:
    # pytest calls this with the very objects of a failing comparison: keep their reprs.
    state = _state
    if state is not None and state.current is not None:
        state.last_compare = (op, _safe_repr(left), _safe_repr(right))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    state = _state
    if state is None or call.excinfo is None:
        return
    # pytest turns unittest.SkipTest into its own skip, raised afresh: the test call's own
    # exception still has the frames that raised it.
    raw = state.call_exceptions.pop(item.nodeid, None)
    report = outcome.get_result()
    if report.skipped and state.candidate and item.nodeid not in state.details:
        _refuse_skip_by_code_under_test(state, item.nodeid, raw or call.excinfo.value)
        return
    if not report.failed or item.nodeid in state.details:
        return  # the first failing phase says why
    try:
        details = _failure_details(state, item, call.excinfo)
    except Exception as exc:  # never let our bookkeeping break the run
        details = {
            "exc_type": type(call.excinfo.value).__name__,
            "exc_message": _clean(_bound(_message(call.excinfo.value), MESSAGE_LIMIT)),
            "plugin_error": repr(exc),
        }
    state.details[item.nodeid] = details


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    outcome = yield
    state = _state
    error = outcome.excinfo[1] if outcome.excinfo is not None else None
    skip_test = isinstance(error, BaseException) and type(error).__name__ == "SkipTest"
    if state is not None and state.candidate and skip_test and error is not None:
        state.call_exceptions[pyfuncitem.nodeid] = error


def _refuse_skip_by_code_under_test(state: _State, nodeid: str, error: BaseException) -> None:
    """In a candidate's run, a skip (or xfail) raised from project code that is not a test is
    the candidate dodging the test: it becomes an error, not a pass."""
    for frame, line in reversed(list(traceback.walk_tb(error.__traceback__))):
        relative = state.relative(frame.f_code.co_filename)
        if relative is not None and not _is_test_file(Path(relative)):
            state.skipped_by_code.add(nodeid)
            state.details[nodeid] = {
                "exc_type": "SkippedByCodeUnderTest",
                "exc_message": f"{relative}:{line} skipped the test ({type(error).__name__}); "
                "the code under test may not skip tests",
                "path": relative,
                "line": line,
            }
            return


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    state = _state
    if state is not None and report.when is not None:
        state.phases[report.when] = report


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    state = _state
    if state is None:
        return
    _set_hard_deadline(state, None, "")
    record = _test_record(state, nodeid)
    if state.tracer is not None:
        # Arguments and results of the first calls, only where a failing test needs them.
        record["executed"] = state.tracer.take(calls=record["outcome"] not in ("passed", "skipped"))
        if state.tracer.incomplete:
            record["trace_incomplete"] = True  # the test replaced our tracer for a while
    state.current = None
    state.details.pop(nodeid, None)
    state.phases = {}
    record["t"] = time.monotonic()
    state.writer.write(record)
    if record["outcome"] == "timeout":
        state.hangs += 1
        if state.max_hangs and state.hangs >= state.max_hangs and state.session is not None:
            # The rest would most likely hang too, a timeout each: not worth the wait.
            state.session.shouldstop = f"cyclefix: {state.hangs} test(s) timed out"


def pytest_sessionstart(session: pytest.Session) -> None:
    state = _state
    if state is not None:  # the end of start-up: interpreter, pytest, plugins, conftests
        state.writer.write({"event": "session_start", "t": time.monotonic()})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _state
    if state is not None:
        state.writer.write({"event": "session_finish", "exitstatus": int(exitstatus)})


# ---------------------------------------------------------------- the record of one test


def _test_record(state: _State, nodeid: str) -> dict[str, Any]:
    phases = state.phases
    duration = sum(float(getattr(r, "duration", 0.0)) for r in phases.values())
    outcome = "passed"
    for when in ("setup", "call", "teardown"):
        report = phases.get(when)
        if report is None:
            continue
        if report.failed:
            outcome = "failed" if when == "call" else "error"
            break
        if report.skipped:
            outcome = "skipped"
    if nodeid in state.skipped_by_code:
        outcome = "error"
    details = dict(state.details.get(nodeid, {}))
    if state.alarm_fired or details.get("exc_type") == CyclefixTestTimeout.__name__:
        outcome = "timeout"
        details["exc_type"] = "Timeout"
        details["exc_message"] = f"timed out after {state.timeout:g} s"
    # Each phase's report carries the output captured so far: the last one has it all.
    last = phases.get("teardown") or phases.get("call") or phases.get("setup")
    stdout = str(getattr(last, "capstdout", ""))
    stderr = str(getattr(last, "capstderr", ""))
    record: dict[str, Any] = {
        "event": "test",
        "nodeid": nodeid,
        "outcome": outcome,
        "duration": round(duration, 6),
        "stdout": _clean(_bound(stdout, OUTPUT_LIMIT)),
        "stderr": _clean(_bound(stderr, OUTPUT_LIMIT)),
    }
    if outcome == "skipped":
        skip = phases.get("call") or phases.get("setup")
        longrepr = getattr(skip, "longrepr", None)
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            record["exc_message"] = _clean(str(longrepr[2]))
    if outcome in ("failed", "error", "timeout"):
        record.update(details)
        if "exc_message" not in record:  # e.g. a strict xpass: no exception, only a report
            failed = next((r for r in phases.values() if r.failed), None)
            text = str(getattr(failed, "longrepr", "") or "")
            record["exc_message"] = _clean(_bound(text, MESSAGE_LIMIT))
    return record


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<str() of {type(exc).__name__} failed>"


def _failure_details(
    state: _State, item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]
) -> dict[str, Any]:
    exc = excinfo.value
    test_path = Path(str(getattr(item, "path", None) or item.fspath))
    test_rel = state.relative(test_path)
    details: dict[str, Any] = {
        "exc_type": type(exc).__name__,
        "exc_message": _clean(_bound(_message(exc), MESSAGE_LIMIT)),
        "path": test_rel or item.nodeid.split("::")[0],
    }
    frames: list[dict[str, Any]] = []
    test_entry: Any = None
    after_test: list[Any] = []  # frames called from the test's failing line
    raised_in_project = False
    for entry in excinfo.traceback:
        filename = entry.frame.code.raw.co_filename
        rel = state.relative(filename)
        if rel is not None and rel == test_rel:
            test_entry = entry
            after_test = []
            raised_in_project = False
            continue
        after_test.append(entry)
        if rel is None or _is_test_file(Path(rel)):
            continue
        raised_in_project = True
        source = linecache.getline(filename, entry.lineno + 1).strip()
        frames.append(
            {"path": rel, "line": entry.lineno + 1, "function": entry.name, "source": source}
        )
    details["project_frames"] = frames[-20:]
    if test_entry is not None:
        function = _FunctionSource(test_entry)
        details["callees"] = _callees(state, function)
        details["line"] = test_entry.lineno + 1
        parsed = _parsed_file(test_entry.frame.code.raw.co_filename)
        statement = (
            parsed.statement_at(test_entry.lineno + 1) if parsed is not None else None
        ) or (linecache.getline(str(test_path), test_entry.lineno + 1).strip())
        details["line_source"] = _clean(_bound(statement, SOURCE_LIMIT))
        if isinstance(exc, AssertionError) and not raised_in_project:
            _assert_details(state, details, statement, exc, function, after_test)
        else:
            _crash_details(details, statement, function)
    else:
        location_line = item.location[1]
        if location_line is not None:
            details["line"] = location_line + 1
    details["test_source"] = _test_source(item)
    helper = _helper_source(test_entry, item)
    if helper and details["test_source"]:
        details["test_source"] = _clean(
            _bound(f"{helper}\n\n\n{details['test_source']}", SOURCE_LIMIT)
        )
    return details


def _callees(state: _State, function: _FunctionSource) -> dict[str, list[str]]:
    """For each name the failing test function calls: the project file and the name of what it
    was bound to in the test's frame when it failed.

    Names alone mislead: QuixBugs-style tests import a buggy and a correct copy of one name
    behind a flag, and `check(candidate)` helpers call the function under another name.
    """
    found: dict[str, list[str]] = {}
    for call in ast.walk(function.tree) if function.tree is not None else ():
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
            continue
        name = call.func.id
        bound = next((scope[name] for scope in function.scopes if name in scope), None)
        if name in found or bound is None:
            continue
        try:
            target = inspect.unwrap(bound)
            filename = inspect.getsourcefile(target)
            real_name = str(target.__name__)
        except Exception:  # builtins, C functions, objects without a source
            continue
        rel = state.relative(filename) if filename else None
        if rel is not None and not _is_test_file(Path(rel)):
            found[name] = [rel, real_name]
    return found


def _helper_source(test_entry: Any, item: pytest.Item) -> str | None:
    """The test file's helper the failing line is in (`check(candidate)` holding the asserts),
    when that is not the test function itself."""
    if test_entry is None:
        return None
    try:
        code = test_entry.frame.code.raw
        function: Any = getattr(item, "function", None) or getattr(item, "obj", None)
        if code is getattr(inspect.unwrap(function), "__code__", None):
            return None
        parsed = _parsed_file(code.co_filename)
        node = parsed.function_at(code.co_firstlineno) if parsed is not None else None
    except Exception:
        return None
    return parsed.block(node) if parsed is not None and node is not None else None


def _test_source(item: pytest.Item) -> str | None:
    function = getattr(item, "function", None) or getattr(item, "obj", None)
    code = getattr(inspect.unwrap(function), "__code__", None) if function is not None else None
    if code is None:
        return None
    parsed = _parsed_file(code.co_filename)
    node = parsed.function_at(code.co_firstlineno) if parsed is not None else None
    if parsed is None or node is None:
        return None
    return _clean(_bound(parsed.block(node), SOURCE_LIMIT))


class _ParsedFile:
    """A source file read and parsed once per process (failures in one file share it)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines()
        self.tree = ast.parse(text)
        self.functions: dict[int, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.statements: list[ast.stmt] = []
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[node.lineno] = node
                for decorator in node.decorator_list:
                    self.functions.setdefault(decorator.lineno, node)
            if isinstance(node, ast.stmt):
                self.statements.append(node)

    def function_at(self, first_line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        return self.functions.get(first_line)

    def block(self, node: ast.stmt) -> str:
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        end = node.end_lineno or node.lineno
        return textwrap.dedent("\n".join(self.lines[start - 1 : end]))

    def statement_at(self, line: int) -> str | None:
        """The innermost statement on `line`; for a compound one, only its header."""
        best: ast.stmt | None = None
        for node in self.statements:
            end = node.end_lineno or node.lineno
            if node.lineno <= line <= end and (best is None or node.lineno >= best.lineno):
                best = node
        if best is None:
            return None
        end = best.end_lineno or best.lineno
        body = getattr(best, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
            end = max(best.lineno, body[0].lineno - 1)
        return textwrap.dedent("\n".join(self.lines[best.lineno - 1 : end])).strip()


_PARSED: dict[str, _ParsedFile | None] = {}


def _parsed_file(filename: str) -> _ParsedFile | None:
    if filename not in _PARSED:
        try:
            with open(filename, "rb") as handle:
                text = importlib.util.decode_source(handle.read())
            _PARSED[filename] = _ParsedFile(text)
        except (OSError, SyntaxError, ValueError, UnicodeDecodeError, RecursionError):
            _PARSED[filename] = None
    return _PARSED[filename]


def _assert_details(
    state: _State,
    details: dict[str, Any],
    statement: str,
    exc: BaseException,
    function: _FunctionSource,
    after_test: list[Any],
) -> None:
    """Fill assert_source, explanation, input, expected and actual for a failing assert."""
    message = _message(exc)
    if statement.startswith("assert"):
        details["assert_source"] = _clean(_bound(statement, SOURCE_LIMIT))
        details["assert_explanation"] = _clean(_bound(message, MESSAGE_LIMIT))
    try:
        tree = ast.parse(textwrap.dedent(statement))
    except SyntaxError:
        return
    node = tree.body[0] if tree.body else None
    test_locals = function.locals
    if isinstance(node, ast.Assert):
        _compare_details(state, details, node.test, statement, message, test_locals, function)
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        # self.assertEqual(CALL, EXPECTED) and friends: the values are unittest's locals.
        _unittest_details(details, node.value, statement, after_test, test_locals, function)


def _crash_details(details: dict[str, Any], statement: str, function: _FunctionSource) -> None:
    """For a test line that raised: the input the call crashed on, and what the assert on that
    line wanted from it (`assert not search(a, b)` crashing says only where; that it should
    have returned a false value tells the model what the code must do instead)."""
    source = textwrap.dedent(statement)
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a compound statement's header (`with ...:`)
        return
    if not tree.body:
        return
    node = tree.body[0]
    details["input"] = _input_for(node, source, function)
    details["expected"] = _wanted_from_call(node, source, function.locals)


def _wanted_from_call(node: ast.stmt, source: str, test_locals: dict[str, Any]) -> str | None:
    if not isinstance(node, ast.Assert):
        return None
    test = node.test
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        op_text = _op_text(test.ops[0])
        other: ast.AST = test.comparators[0]
        if _call_under_test(other) is not None and _call_under_test(test.left) is None:
            other, op_text = test.left, MIRRORED_OPS.get(op_text, op_text)
        if op_text in ("in", "not in"):
            return None
        value = _local_repr(other, source, test_locals)
        if value is None:
            return None
        return value if op_text == "==" else f"{op_text} {value}"
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return "a false value"
    return "a true value" if _call_under_test(test) is not None else None


def _frame_locals(entry: Any) -> dict[str, Any]:
    try:
        return dict(entry.frame.f_locals)
    except Exception:
        return {}


class _FunctionSource:
    """The failing test function's source and AST, to find how a compared local was computed."""

    def __init__(self, test_entry: Any) -> None:
        self.source = ""
        self.tree: ast.AST | None = None
        self.locals = _frame_locals(test_entry)
        # Where the test's names were bound when it failed: its locals, then its module.
        self.scopes: tuple[dict[str, Any], ...] = (self.locals,)
        self.inputs: dict[str, Any] = {}
        self.failing_line = test_entry.lineno + 1
        try:
            self.scopes = (self.locals, test_entry.frame.f_globals)
            code = test_entry.frame.code.raw
            parsed = _parsed_file(code.co_filename)
            node = parsed.function_at(code.co_firstlineno) if parsed is not None else None
        except Exception:
            return
        if parsed is not None and node is not None:
            self.source = parsed.text
            self.tree = node
            # The test's parameters (parametrize, fixtures) are its inputs: show their values.
            names = [
                a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)
            ]
            self.inputs = {n: self.locals[n] for n in names if n != "self" and n in self.locals}

    def last_call_assigned_to(self, name: str) -> str | None:
        """Arguments of the call under test in the last `name = ...` before the failing line."""
        if self.tree is None:
            return None
        found: ast.Call | None = None
        for sub in ast.walk(self.tree):
            if not isinstance(sub, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                continue
            if sub.lineno >= self.failing_line:
                continue
            targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets) and sub.value:
                inner = _call_under_test(sub.value)
                if inner is not None and (found is None or sub.lineno >= found.lineno):
                    found = inner
        return None if found is None else _call_arguments(self.source, found, self.inputs)


def _segment(source: str, node: ast.AST) -> str:
    text = ast.get_source_segment(source, node)
    return text if text is not None else ast.unparse(node)


def _call_under_test(node: ast.AST) -> ast.Call | None:
    """The call a value comes from, looking through len(...), sorted(...) and such."""
    fallback: ast.Call | None = None
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            name = _call_name(sub)
            if name not in WRAPPER_CALLS:
                return sub
            fallback = fallback or sub
    return fallback


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _call_arguments(source: str, call: ast.Call, inputs: dict[str, Any] | None = None) -> str:
    """The call's argument list; a test parameter (`x`, `*args`) shows its value, not its name."""
    values = inputs or {}

    def given(node: ast.expr) -> Any:
        return values[node.id] if isinstance(node, ast.Name) and node.id in values else _MISSING

    parts: list[str] = []
    for arg in call.args:
        value = given(arg.value if isinstance(arg, ast.Starred) else arg)
        if value is _MISSING:
            parts.append(_segment(source, arg))
        elif isinstance(arg, ast.Starred) and isinstance(value, (list, tuple)):
            parts += [_safe_repr(v) for v in value]
        else:
            parts.append(("*" if isinstance(arg, ast.Starred) else "") + _safe_repr(value))
    for kw in call.keywords:
        value = given(kw.value)
        if value is _MISSING:
            text = _segment(source, kw.value)
            parts.append(f"{kw.arg}={text}" if kw.arg else f"**{text}")
        elif kw.arg is None and isinstance(value, dict):
            parts += [f"{k}={_safe_repr(v)}" for k, v in value.items()]
        else:
            parts.append(f"{kw.arg}={_safe_repr(value)}" if kw.arg else f"**{_safe_repr(value)}")
    return ", ".join(parts)


_MISSING = object()


def _input_for(side: ast.AST, source: str, function: _FunctionSource) -> str | None:
    """The arguments of the call under test: in the assert itself, or where a local was set."""
    call = _call_under_test(side)
    if call is not None:
        return _call_arguments(source, call, function.inputs)
    if isinstance(side, ast.Name):
        return function.last_call_assigned_to(side.id)
    return None


def _local_repr(node: ast.AST, source: str, test_locals: dict[str, Any]) -> str | None:
    if isinstance(node, ast.Name) and node.id in test_locals:
        return _safe_repr(test_locals[node.id])
    if isinstance(node, ast.Constant):
        return repr(node.value)
    try:
        return repr(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _compare_details(
    state: _State,
    details: dict[str, Any],
    test: ast.expr,
    statement: str,
    message: str,
    test_locals: dict[str, Any],
    function: _FunctionSource,
) -> None:
    source = textwrap.dedent(statement)
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right = test.left, test.comparators[0]
        op_text = _op_text(test.ops[0])
        compared = state.last_compare
        if compared is not None and compared[0] == op_text:
            left_value: str | None = compared[1]
            right_value: str | None = compared[2]
        else:  # no rewritten assert: fall back to the test frame's locals
            left_value = _local_repr(left, source, test_locals)
            right_value = _local_repr(right, source, test_locals)
        left_is_call = _call_under_test(left) is not None
        right_is_call = _call_under_test(right) is not None
        if right_is_call and not left_is_call:
            actual_node, actual, expected = right, right_value, left_value
            if op_text == "in":
                expected = None if left_value is None else f"contains {left_value}"
            elif op_text == "not in":
                expected = None if left_value is None else f"does not contain {left_value}"
            elif op_text != "==" and expected is not None:
                expected = f"{MIRRORED_OPS.get(op_text, op_text)} {expected}"
        else:
            actual_node, actual, expected = left, left_value, right_value
            if op_text != "==" and expected is not None:
                expected = f"{op_text} {expected}"
        details["input"] = _input_for(actual_node, source, function)
        details["expected"] = expected
        details["actual"] = actual
        return
    negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
    subject = test.operand if isinstance(test, ast.UnaryOp) and negated else test
    details["input"] = _input_for(subject, source, function)
    details["expected"] = "a false value" if negated else "a true value"
    first = message.split("\n", 1)[0].strip()
    prefix = "assert not " if negated else "assert "
    if first.startswith(prefix):
        details["actual"] = _clean(_bound(first[len(prefix) :], VALUE_LIMIT))
    else:
        details["actual"] = _local_repr(subject, source, test_locals)


def _op_text(op: ast.cmpop) -> str:
    return {
        ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
        ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
    }[type(op)]  # fmt: skip


def _unittest_details(
    details: dict[str, Any],
    call: ast.Call,
    statement: str,
    after_test: list[Any],
    test_locals: dict[str, Any],
    function: _FunctionSource,
) -> None:
    name = _call_name(call)
    if not name.startswith("assert") or not call.args:
        return
    source = textwrap.dedent(statement)
    details["assert_source"] = _clean(_bound(statement, SOURCE_LIMIT))
    details["assert_explanation"] = details.get("exc_message")
    first_value: str | None = None
    second_value: str | None = None
    for entry in after_test:  # unittest's own frames hold both values as locals
        frame_locals = _frame_locals(entry)
        if "first" in frame_locals and "second" in frame_locals:
            first_value = _safe_repr(frame_locals["first"])
            second_value = _safe_repr(frame_locals["second"])
            break
    if first_value is None:
        first_value = _local_repr(call.args[0], source, test_locals)
        if len(call.args) > 1:
            second_value = _local_repr(call.args[1], source, test_locals)
    actual_node = call.args[0]
    actual, expected = first_value, second_value
    if len(call.args) > 1 and _call_under_test(call.args[1]) and not _call_under_test(call.args[0]):
        actual_node, actual, expected = call.args[1], second_value, first_value
    details["input"] = _input_for(actual_node, source, function)
    if name in ("assertTrue", "assertFalse"):
        expected = "a true value" if name == "assertTrue" else "a false value"
    details["actual"] = actual
    details["expected"] = expected
