"""Per-test execution tracing inside the project's own interpreter: which project lines ran.

Shipped next to the pytest plugin (as ``_cyclefix_trace``, see run.plugin_directory) and
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
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

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
        # Per code object, calls traced line by line in this test (settrace).
        self._traced_calls: dict[Any, int] = {}
        # Call events this test may still cost (settrace); at 0 the tracer steps aside.
        self._calls_left = CALL_EVENTS_PER_TEST
        self._active = False
        self.backend = ""
        # Why tracing is off for this process ("" while it works).
        self.unavailable = ""
        # Whether the last test replaced our tracer for a while (its record is incomplete).
        self.incomplete = False
        self._monitoring_tool: int | None = None
        # One bound method, so that sys.gettrace() can tell whether it is still ours.
        self._hook = self._on_call

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
        self._traced_calls = {}
        self._calls_left = CALL_EVENTS_PER_TEST
        self._active = True
        self.incomplete = False
        tool = self._monitoring_tool
        if tool is not None:
            monitoring = sys.monitoring  # type: ignore[attr-defined]
            monitoring.set_events(tool, monitoring.events.PY_START)
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
        if sys.gettrace() is not self._hook and self._calls_left > 0:
            self.incomplete = True
        sys.settrace(None)
        threading.settrace(None)

    def take(self) -> list[dict[str, Any]]:
        """The recorded functions of the last test, as JSON-ready dicts, and forget them."""
        self.pause()
        by_function: dict[CodeInfo, set[int]] = {}
        for code, lines in self._lines.items():
            info = self._codes.get(code)
            if info is not None:
                by_function.setdefault(info, set()).update(lines)
        self._lines = {}
        records = [
            {"path": path, "qualname": qualname, "line": first, "lines": sorted(lines)}
            for (path, qualname, first), lines in sorted(by_function.items())
        ]
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

    # ---- sys.settrace

    def _on_call(self, frame: Any, event: str, arg: Any) -> Callable[..., Any] | None:
        self._calls_left -= 1
        if self._calls_left <= 0:
            sys.settrace(None)  # enough of this test seen: the rest runs at full speed
            return None
        code = frame.f_code
        info = self._codes.get(code, _UNSEEN)
        if info is _UNSEEN:
            info = self._info(code)
        if info is None:
            return None  # library or test code: no line events
        lines = self._lines.get(code)
        if lines is None:
            lines = self._lines[code] = set()
            self._traced_calls[code] = 0
        calls = self._traced_calls[code]
        if calls >= LINE_TRACED_CALLS:
            return None  # seen enough of this function in this test: calls cost nothing more
        self._traced_calls[code] = calls + 1
        add = lines.add
        budget = LINE_EVENTS_PER_CALL

        def on_line(frame: Any, event: str, arg: Any) -> Any:
            nonlocal budget
            if event == "line":
                add(frame.f_lineno)
                budget -= 1
                if budget <= 0:
                    return None  # a hot loop: stop this frame's line events
            return on_line

        return on_line

    # ---- sys.monitoring (3.12+)

    def _on_start(self, code: Any, offset: int) -> Any:
        monitoring = sys.monitoring  # type: ignore[attr-defined]
        if self._active and self._info(code) is not None and code not in self._lines:
            self._lines[code] = set()
            tool = self._monitoring_tool
            monitoring.set_local_events(tool, code, monitoring.events.LINE)
        return monitoring.DISABLE

    def _on_line(self, code: Any, line: int) -> Any:
        lines = self._lines.get(code)
        if lines is not None and self._active:
            lines.add(line)
        return sys.monitoring.DISABLE  # type: ignore[attr-defined]
