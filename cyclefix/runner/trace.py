"""Per-test execution tracing inside the project's own interpreter: which project lines ran.

Shipped next to the pytest plugin (as ``_cyclefix_trace``, see launch.plugin_directory) and
imported by it only when a traced run is asked for, so, like the plugin, it may import nothing
but the standard library and must run on Python 3.9.

Only project non-test files are traced. On Python 3.12+ ``sys.monitoring`` is used: a function
start event, once per code object and test, turns on line events for project code only, and
each line reports once per test (``DISABLE``, re-armed by ``restart_events`` between tests).
Elsewhere ``sys.settrace`` returns a line tracer only for frames of project code, so library
and test code cost one call event each and no line events; and, as line events in hot project
code would multiply its run time, only the first calls of each function in a test are traced
line by line, each for a bounded number of lines (every call still marks the function as run),
and a test stops being traced after its first CALL_EVENTS_PER_TEST calls (a computation-heavy
test has shown every function it runs long before that).

The probe: the first PROBED_CALLS calls of each project function in a test also record their
arguments and what they returned or raised, rendered by inert_repr.py, which never runs code of
the project.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cyclefix.runner.inert_repr import call_text, inert_repr
else:
    try:  # the runner's private copy, in the test process
        from _cyclefix_inert_repr import call_text, inert_repr
    except ImportError:
        from cyclefix.runner.inert_repr import call_text, inert_repr

# Folders whose files are never project code, whatever the root (environments, VCS data).
FOREIGN_PARTS = frozenset(
    {".venv", "venv", ".tox", ".nox", "site-packages", "dist-packages", "node_modules", ".git"}
)
# A test that executed more project functions than this reports only the first ones (bounds
# the record of one test; a spectrum needs far fewer).
MAX_FUNCTIONS_PER_TEST = 2000

# A code object not looked at yet (None in the cache means "not project code").
_UNSEEN: Any = object()
# Calls of one function per test traced line by line (settrace), and line events per call.
LINE_TRACED_CALLS = 3
LINE_EVENTS_PER_CALL = 200
CALL_EVENTS_PER_TEST = 50_000
# (path relative to the root, qualified name, first line of the code object)
CodeInfo = tuple[str, str, int]
# Calls of one function per test whose arguments and result the probe records.
PROBED_CALLS = 2
# Frames of pytest writing a failed assert's message (repr() of its values, a diff): project
# code it runs there (a __repr__) is not what the test exercised.
_FORMATTING = tuple(
    os.sep + os.path.join("_pytest", part) + os.sep for part in ("assertion", "_io")
)
# unittest writes a failed assert's message with these (safe_repr, pprint.pformat of the
# compared values), called from its asserts in case.py, which also run the project's __eq__.
_UNITTEST_ASSERTS = os.sep + os.path.join("unittest", "case.py")
_REPR_HELPERS = (
    os.sep + os.path.join("unittest", "util.py"),
    os.sep + "pprint.py",
    os.sep + "reprlib.py",
)
# Callers looked through for those frames (repr() reaches __repr__ a few frames down).
_FORMATTING_DEPTH = 12
# Flags of code objects the probe skips: a call only creates a generator or coroutine.
_SUSPENDING = 0x20 | 0x80 | 0x100 | 0x200  # GENERATOR, COROUTINE, ITERABLE_COROUTINE, ASYNC_GEN


def _is_test_file(relative: str) -> bool:
    parts = relative.split("/")
    name = parts[-1]
    return (
        name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
        or any(part in ("tests", "test") for part in parts[:-1])
    )


class ProjectFiles:
    """Decides, once per file name, whether code from it is project non-test code."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self._prefix = self.root.rstrip(os.sep) + os.sep
        self._by_filename: dict[str, str | None] = {}

    def relative(self, filename: str) -> str | None:
        """The project-relative path of a non-test source file, else None."""
        if filename in self._by_filename:
            return self._by_filename[filename]
        result: str | None = None
        if filename.endswith(".py") and os.path.isabs(filename):
            real = os.path.realpath(filename)
            if real.startswith(self._prefix):
                relative = real[len(self._prefix) :].replace(os.sep, "/")
                parts = relative.split("/")
                if not any(part in FOREIGN_PARTS for part in parts) and not _is_test_file(relative):
                    result = relative
        self._by_filename[filename] = result
        return result


class Tracer:
    """Records, between begin() and pause(), the project lines each test executed."""

    def __init__(self, root: str) -> None:
        self.files = ProjectFiles(root)
        # Code objects seen so far: their place in the project, or None when not project code.
        self._codes: dict[Any, CodeInfo | None] = {}
        self._lines: dict[Any, set[int]] = {}
        # Per code object, calls traced line by line in this test (settrace); cleared in
        # place, as the call hook holds it.
        self._traced_calls: dict[Any, int] = {}
        # Call events this test may still cost (settrace); at 0 the tracer steps aside.
        self._calls_left = [CALL_EVENTS_PER_TEST]
        self._active = False
        self.backend = ""
        # Why tracing is off for this process ("" while it works).
        self.unavailable = ""
        # Whether the last test replaced our tracer for a while (its record is incomplete).
        self.incomplete = False
        self._monitoring_tool: int | None = None
        # The probe: per code object, its calls recorded in this test (JSON-ready dicts), and
        # the record of each probed call still running (sys.monitoring), by its frame's id.
        self._probed: dict[Any, list[dict[str, str]]] = {}
        self._running: dict[int, dict[str, str]] = {}
        # One function, so that sys.gettrace() can tell whether it is still ours.
        self._hook = self._call_hook()

    # ---- life cycle

    def install(self) -> bool:
        """Claim the interpreter's tracing hook; False (with `unavailable` set) when taken."""
        if sys.gettrace() is not None:
            self.unavailable = "a tracer is already installed (a debugger or coverage plugin)"
            return False
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is not None:
            for tool in (monitoring.COVERAGE_ID, monitoring.OPTIMIZER_ID):
                if monitoring.get_tool(tool) is None:
                    monitoring.use_tool_id(tool, "cyclefix")
                    self._monitoring_tool = tool
                    events = monitoring.events
                    monitoring.register_callback(tool, events.PY_START, self._on_start)
                    monitoring.register_callback(tool, events.LINE, self._on_line)
                    monitoring.register_callback(tool, events.PY_RETURN, self._on_return)
                    monitoring.register_callback(tool, events.PY_UNWIND, self._on_unwind)
                    self.backend = "sys.monitoring"
                    return True
            self.unavailable = "every sys.monitoring tool id is taken (coverage is running)"
            return False
        self.backend = "sys.settrace"
        return True

    def uninstall(self) -> None:
        """Give the tracing hook back (the tests of this module run it in-process)."""
        self.pause()
        tool = self._monitoring_tool
        if tool is not None:
            sys.monitoring.free_tool_id(tool)  # type: ignore[attr-defined]
            self._monitoring_tool = None

    def begin(self) -> None:
        """Start recording a test (its setup)."""
        self._lines = {}
        self._traced_calls.clear()
        self._probed = {}
        self._running = {}
        self._calls_left[0] = CALL_EVENTS_PER_TEST
        self._active = True
        self.incomplete = False
        tool = self._monitoring_tool
        if tool is not None:
            monitoring = sys.monitoring  # type: ignore[attr-defined]
            # PY_UNWIND is a global event: it ends a probed call that raised.
            monitoring.set_events(tool, monitoring.events.PY_START | monitoring.events.PY_UNWIND)
            monitoring.restart_events()
        else:
            sys.settrace(self._hook)
            threading.settrace(self._hook)

    def pause(self) -> None:
        """Stop recording (the test's teardown is not its behaviour)."""
        if not self._active:
            return
        self._active = False
        tool = self._monitoring_tool
        if tool is not None:
            monitoring = sys.monitoring  # type: ignore[attr-defined]
            monitoring.set_events(tool, 0)
            for code in self._lines:
                monitoring.set_local_events(tool, code, 0)
            return
        if sys.gettrace() is not self._hook and self._calls_left[0] > 0:
            self.incomplete = True
        sys.settrace(None)
        threading.settrace(None)

    def take(self, calls: bool = False) -> list[dict[str, Any]]:
        """The recorded functions of the last test, as JSON-ready dicts, and forget them;
        `calls`: with the probe's calls of each (a failing test's record carries them)."""
        self.pause()
        by_function: dict[CodeInfo, set[int]] = {}
        probed: dict[CodeInfo, list[dict[str, str]]] = {}
        for code, lines in self._lines.items():
            info = self._codes.get(code)
            if info is not None:
                by_function.setdefault(info, set()).update(lines)
                if calls and self._probed.get(code):
                    probed.setdefault(info, []).extend(self._probed[code])
        self._lines = {}
        self._probed = {}
        self._running = {}
        records: list[dict[str, Any]] = []
        for info, lines in sorted(by_function.items()):
            path, qualname, first = info
            record: dict[str, Any] = {
                "path": path,
                "qualname": qualname,
                "line": first,
                "lines": sorted(lines),
            }
            if info in probed:
                record["calls"] = probed[info][:PROBED_CALLS]
            records.append(record)
        return records[:MAX_FUNCTIONS_PER_TEST]

    # ---- what code is ours

    def _info(self, code: Any) -> CodeInfo | None:
        try:
            return self._codes[code]
        except KeyError:
            pass
        info: CodeInfo | None = None
        if code.co_name != "<module>":
            relative = self.files.relative(code.co_filename)
            if relative is not None:
                qualname = getattr(code, "co_qualname", code.co_name)
                info = (relative, qualname, code.co_firstlineno)
        self._codes[code] = info
        return info

    # ---- the probe

    def _probe_start(self, code: Any, frame: Any) -> dict[str, str] | None:
        """A new record of this call's arguments, or None past the first calls of `code`."""
        if code.co_flags & _SUSPENDING:
            return None  # the call only makes a generator: what it yields is not a return
        calls = self._probed.setdefault(code, [])
        if len(calls) >= PROBED_CALLS:
            return None
        try:
            text = call_text(code, frame.f_locals)
        except Exception as exc:  # f_locals of an odd frame: the call is still worth naming
            text = f"{code.co_name}(<arguments not shown: {type(exc).__name__}>)"
        entry = {"call": text}
        calls.append(entry)
        return entry

    # ---- sys.settrace

    def _call_hook(self) -> Callable[..., Callable[..., Any] | None]:
        """The call event handler: a plain function (a bound method costs twice as much a
        call, and it runs for every call a test makes) whose common cases return first."""
        codes, traced_calls, calls_left = self._codes, self._traced_calls, self._calls_left
        info_of, line_tracer = self._info, self._line_tracer

        def on_call(frame: Any, event: str, arg: Any) -> Callable[..., Any] | None:
            calls_left[0] -= 1
            if calls_left[0] <= 0:
                sys.settrace(None)  # enough of this test seen: the rest runs at full speed
                return None
            code = frame.f_code
            info = codes.get(code, _UNSEEN)
            if info is None:
                return None  # library or test code: no line events
            if info is _UNSEEN and info_of(code) is None:
                return None
            if traced_calls.get(code, 0) >= LINE_TRACED_CALLS:
                return None  # seen enough of this function in this test: calls cost nothing more
            return line_tracer(frame, code)

        return on_call

    def _line_tracer(self, frame: Any, code: Any) -> Callable[..., Any] | None:
        """The line events of one of a project function's first calls in this test."""
        if _formatting_failure(frame):
            return None  # pytest writing a failure: not yet a function the test ran
        lines = self._lines.get(code)
        if lines is None:
            lines = self._lines[code] = set()
        # The call hook let it through: under LINE_TRACED_CALLS calls so far.
        self._traced_calls[code] = self._traced_calls.get(code, 0) + 1
        add = lines.add
        budget = LINE_EVENTS_PER_CALL
        entry = self._probe_start(code, frame)
        # The exception passing through this frame, until a line of it runs (it was caught).
        raised: Any = None

        def on_line(frame: Any, event: str, arg: Any) -> Any:
            nonlocal budget, raised
            if event == "line":
                raised = None
                add(frame.f_lineno)
                budget -= 1
                if budget <= 0:
                    if entry is None:
                        return None  # a hot loop: stop this frame's line events
                    frame.f_trace_lines = False  # the probe still waits for the return
            elif entry is not None and event == "exception":
                raised = arg[1]
            elif entry is not None and event == "return":
                if raised is not None and arg is None:
                    entry["raised"] = inert_repr(raised)
                else:
                    entry["returned"] = inert_repr(arg)
            return on_line

        return on_line

    # ---- sys.monitoring (3.12+)

    def _on_start(self, code: Any, offset: int) -> Any:
        monitoring = sys.monitoring  # type: ignore[attr-defined]
        if not self._active or self._info(code) is None:
            return monitoring.DISABLE
        frame = _frame_of(code)
        if frame is not None and code not in self._lines and _formatting_failure(frame):
            return None  # pytest writing a failure: not yet a function the test ran
        if code not in self._lines:
            self._lines[code] = set()
            events = monitoring.events.LINE | monitoring.events.PY_RETURN
            monitoring.set_local_events(self._monitoring_tool, code, events)
        entry = self._probe_start(code, frame) if frame is not None else None
        if entry is None:
            return monitoring.DISABLE  # this test's first calls are recorded: no more starts
        self._running[id(frame)] = entry
        return None

    def _on_return(self, code: Any, offset: int, value: Any) -> Any:
        if self._running:
            frame = _frame_of(code)
            entry = self._running.pop(id(frame), None) if frame is not None else None
            if entry is not None:
                entry["returned"] = inert_repr(value)
                return None
        if not self._running and len(self._probed.get(code, ())) >= PROBED_CALLS:
            return sys.monitoring.DISABLE  # type: ignore[attr-defined]
        return None

    def _on_unwind(self, code: Any, offset: int, exception: BaseException) -> None:
        if self._running:
            frame = _frame_of(code)
            entry = self._running.pop(id(frame), None) if frame is not None else None
            if entry is not None:
                entry["raised"] = inert_repr(exception)

    def _on_line(self, code: Any, line: int) -> Any:
        lines = self._lines.get(code)
        if lines is not None and self._active:
            lines.add(line)
        return sys.monitoring.DISABLE  # type: ignore[attr-defined]


def _formatting_failure(frame: Any) -> bool:
    """Whether `frame` was called by pytest or this plugin, or by one of unittest's asserts
    through its repr helpers, writing a failed assert's message."""
    caller = frame.f_back
    in_repr_helper = False
    looked = 0
    while looked < _FORMATTING_DEPTH:
        if caller is None:
            return False
        filename: str = caller.f_code.co_filename
        if any(part in filename for part in _FORMATTING) or _is_ours(filename):
            return True
        if filename.endswith(_REPR_HELPERS):
            # Not counted: pprint recurses two frames per level of a nested value.
            in_repr_helper = True
            looked -= 1
        elif in_repr_helper:
            # The helper's caller: unittest's assert, or code of the test or project (a repr
            # it asked for is what it exercised).
            return filename.endswith(_UNITTEST_ASSERTS)
        elif filename.endswith(_UNITTEST_ASSERTS):
            return False  # called by the assert itself (an __eq__): exercised
        caller = caller.f_back
        looked += 1
    return False


def _is_ours(filename: str) -> bool:
    """A file of the plugin's (protocol.PRIVATE_COPIES): it renders the failed assert's values
    for the feedback."""
    return os.path.basename(filename).startswith("_cyclefix_")


def _frame_of(code: Any) -> Any:
    """The running frame of `code`, seen from a sys.monitoring callback (None if not found)."""
    frame: Any = sys._getframe(2)
    for _ in range(4):
        if frame is None or frame.f_code is code:
            return frame
        frame = frame.f_back
    return None
