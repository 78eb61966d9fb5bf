"""What a failing test or test module says: where it failed, the project frames on the way,
the functions the test called, its source; the failing statement itself is assertions.py's.

Like the plugin it runs in the user's interpreter from the runner's private folder (as
``_cyclefix_failures``), so it imports only the standard library, pytest and its sibling
copies, and runs on Python 3.9.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import os
import re
import unittest.case
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:
    from cyclefix.runner import assertions, protocol, testfiles
else:
    try:  # the runner's private copies, in the test process
        import _cyclefix_assertions as assertions
        import _cyclefix_testfiles as testfiles
    except ImportError:
        from cyclefix.runner import assertions, testfiles


# The tracebacks of exceptions unittest's assertRaises caught in the running test, by the
# exception's id: unittest drops them (`with_traceback(None)`) before the test's asserts.
_caught_tracebacks: dict[int, tuple[BaseException, Any]] = {}
# Kept per test at most: a loop of subTests catching thousands keeps the first ones.
MAX_CAUGHT = 256
# Characters of a test's captured stdout and stderr kept in its record, each.
OUTPUT_LIMIT = 4096


def keep_caught_tracebacks() -> None:
    """Have assertRaises keep the traceback of what it caught for this test's record."""
    context: Any = unittest.case._AssertRaisesContext
    original = context.__exit__
    if getattr(original, "_cyclefix_keeps", False):
        return

    def __exit__(self: Any, exc_type: Any, exc_value: Any, tb: Any) -> Any:
        if exc_value is not None and tb is not None and len(_caught_tracebacks) < MAX_CAUGHT:
            _caught_tracebacks[id(exc_value)] = (exc_value, tb)
        return original(self, exc_type, exc_value, tb)

    __exit__._cyclefix_keeps = True  # type: ignore[attr-defined]
    context.__exit__ = __exit__


def forget_caught_tracebacks() -> None:
    _caught_tracebacks.clear()


class ProjectPaths:
    """Which files are the project's: relative to its root, outside installed-code folders."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, str | None] = {}

    def relative(self, path: Path | str) -> str | None:
        """Path relative to the project root, or None when it is outside or not a project file."""
        key = str(path)
        if key in self._cache:
            return self._cache[key]
        result = None
        if os.path.isabs(key):
            try:
                rel = Path(key).resolve().relative_to(self.root)
            except (ValueError, OSError, RuntimeError):
                rel = None
            if rel is not None and not any(part in testfiles.FOREIGN_DIRS for part in rel.parts):
                result = rel.as_posix()
        self._cache[key] = result
        return result


def collect_error(
    paths: ProjectPaths,
    nodeid: str,
    excinfo: pytest.ExceptionInfo[BaseException],
    collect_timeout: float,
) -> protocol.CollectErrorRecord:
    """Where a test module failed to import, and the project frames of a bug found doing so
    (`collect_timeout`: the import's time limit, for the message when it ran out)."""
    exc = excinfo.value
    cause: BaseException = exc
    # pytest wraps the real error (CollectError from ..., ConftestImportFailure.cause).
    inner = getattr(exc, "cause", None) or exc.__cause__
    if isinstance(inner, BaseException):
        cause = inner
    record: protocol.CollectErrorRecord = {
        "event": "collect_error",
        "nodeid": nodeid,
        "message": "",
    }
    if isinstance(cause, assertions.CyclefixTestTimeout):
        took = f"{collect_timeout:g} s"
        record["message"] = f"TimeoutError: importing the module took over {took}"
        return record
    record["exc_type"] = type(cause).__name__
    if isinstance(cause, SyntaxError):
        text = f"{type(cause).__name__}: {cause.msg}"
        if cause.text:
            text += f": {cause.text.strip()}"
        path = paths.relative(cause.filename) if cause.filename else None
        record["path"], record["line"] = path, cause.lineno
        record["message"] = assertions.clean(assertions.bound(text, assertions.MESSAGE_LIMIT))
        if path is not None and cause.lineno and not testfiles.is_pytest_file(path):
            # A project module that does not parse: a bug at that line, not a broken test.
            source = assertions.clean((cause.text or "").strip())
            frame: protocol.Frame = {
                "path": path, "line": cause.lineno, "function": "<module>", "source": source,
            }  # fmt: skip
            record["project_frames"] = [frame]
        return record
    record["path"], record["line"] = None, None
    # Frames in project non-test files, deepest last: where project code failed at import.
    frames: list[protocol.Frame] = []
    tb = cause.__traceback__
    while tb is not None:  # deepest frame that is a project file (source or test)
        filename = tb.tb_frame.f_code.co_filename
        rel = paths.relative(filename)
        if rel is not None:
            record["path"], record["line"] = rel, tb.tb_lineno
            if not testfiles.is_pytest_file(rel):
                source = assertions.clean(linecache.getline(filename, tb.tb_lineno).strip())
                function = tb.tb_frame.f_code.co_name
                frames.append(
                    {"path": rel, "line": tb.tb_lineno, "function": function, "source": source}
                )
        tb = tb.tb_next
    text = f"{type(cause).__name__}: {assertions.message_of(cause)}"
    record["message"] = assertions.clean(assertions.bound(text, assertions.MESSAGE_LIMIT))
    record["project_frames"] = frames[-20:]
    return record


def failure_details(
    paths: ProjectPaths,
    item: pytest.Item,
    excinfo: pytest.ExceptionInfo[BaseException],
    compared: assertions.Compared | None,
) -> protocol.Details:
    """Why `item` failed with `excinfo`: where, the statement, and for an assert its values
    (`compared`: what pytest showed of the failing comparison, when it rewrote the assert)."""
    exc = excinfo.value
    test_path = Path(str(getattr(item, "path", None) or item.fspath))
    test_rel = paths.relative(test_path)
    details: protocol.Details = {
        "exc_type": type(exc).__name__,
        "exc_message": assertions.clean(
            assertions.bound(assertions.message_of(exc), assertions.MESSAGE_LIMIT)
        ),
        "path": test_rel or item.nodeid.split("::")[0],
    }
    frames: list[protocol.Frame] = []
    test_entry: Any = None
    after_test: list[Any] = []  # frames called from the test's failing line
    raised_in_project = False
    for entry in excinfo.traceback:
        filename = entry.frame.code.raw.co_filename
        rel = paths.relative(filename)
        if rel is not None and rel == test_rel:
            test_entry = entry
            after_test = []
            raised_in_project = False
            continue
        after_test.append(entry)
        if rel is None or testfiles.is_pytest_file(rel):
            continue
        raised_in_project = True
        source = linecache.getline(filename, entry.lineno + 1).strip()
        frames.append(
            {"path": rel, "line": entry.lineno + 1, "function": entry.name, "source": source}
        )
    details["project_frames"] = frames[-20:]
    if test_entry is not None:
        function = assertions.FunctionSource(test_entry)
        details["callees"] = _callees(paths, function)
        details["line"] = test_entry.lineno + 1
        parsed = assertions.parsed_file(test_entry.frame.code.raw.co_filename)
        statement = (
            parsed.statement_at(test_entry.lineno + 1) if parsed is not None else None
        ) or (linecache.getline(str(test_path), test_entry.lineno + 1).strip())
        details["line_source"] = assertions.clean(
            assertions.bound(statement, assertions.SOURCE_LIMIT)
        )
        details["caught_frames"] = _caught_frames(paths, test_entry, statement)
        if isinstance(exc, AssertionError) and not raised_in_project:
            assertions.assert_details(compared, details, statement, exc, function, after_test)
        else:
            assertions.crash_details(details, statement, function)
    else:
        location_line = item.location[1]
        if location_line is not None:
            details["line"] = location_line + 1
    details["test_source"] = _test_source(item)
    helper = _helper_source(test_entry, item)
    if helper and details["test_source"]:
        details["test_source"] = assertions.clean(
            assertions.bound(f"{helper}\n\n\n{details['test_source']}", assertions.SOURCE_LIMIT)
        )
    return details


def _caught_frames(paths: ProjectPaths, test_entry: Any, statement: str) -> list[protocol.Frame]:
    """Where project code raised the exceptions the failing statement inspects: a test that
    caught one (`ctx.exception`, `excinfo.value`, `except E as err`) and asserts on it
    checks values made where it was raised (the deepest project non-test frame)."""
    frames: list[protocol.Frame] = []
    try:
        local_values = test_entry.frame.f_locals
        for name in dict.fromkeys(re.findall(r"[A-Za-z_]\w*", statement)):
            held = _held_exception(local_values.get(name))
            frame = _raise_site(paths, _traceback_of(held)) if held is not None else None
            if frame is not None and frame not in frames:
                frames.append(frame)
    except Exception:  # a frame without locals, an odd object: no evidence, not an error
        return frames
    return frames[:5]


def _held_exception(value: object) -> BaseException | None:
    """The exception a test variable holds, looking only at types pytest and unittest define
    (never at the project's own attributes, which could run its code)."""
    # By the type's own MRO: isinstance() would read a project object's `__class__`.
    kinds = type(value).__mro__
    if BaseException in kinds:
        return value  # type: ignore[return-value]
    if unittest.case._AssertRaisesContext in kinds:
        held = vars(value).get("exception")
    elif pytest.ExceptionInfo in kinds:
        info = vars(value).get("_excinfo")
        held = info[1] if info else None
    else:
        return None
    return held if BaseException in type(held).__mro__ else None


def _traceback_of(exc: BaseException) -> Any:
    kept = _caught_tracebacks.get(id(exc))
    if kept is not None and kept[0] is exc:
        return kept[1]
    # BaseException's own slot: a project class's `__traceback__` property never runs here.
    return _TRACEBACK_SLOT.__get__(exc, type(exc))


_TRACEBACK_SLOT: Any = vars(BaseException)["__traceback__"]


def _raise_site(paths: ProjectPaths, tb: Any) -> protocol.Frame | None:
    """The deepest frame of a traceback in a project non-test file."""
    found: protocol.Frame | None = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        rel = paths.relative(filename)
        if rel is not None and not testfiles.is_pytest_file(rel):
            source = assertions.clean(linecache.getline(filename, tb.tb_lineno).strip())
            function = tb.tb_frame.f_code.co_name
            found = {"path": rel, "line": tb.tb_lineno, "function": function, "source": source}
        tb = tb.tb_next
    return found


def _callees(paths: ProjectPaths, function: assertions.FunctionSource) -> dict[str, list[str]]:
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
        rel = paths.relative(filename) if filename else None
        if rel is not None and not testfiles.is_pytest_file(rel):
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
        parsed = assertions.parsed_file(code.co_filename)
        node = parsed.function_at(code.co_firstlineno) if parsed is not None else None
    except Exception:
        return None
    return parsed.block(node) if parsed is not None and node is not None else None


def _test_source(item: pytest.Item) -> str | None:
    function = getattr(item, "function", None) or getattr(item, "obj", None)
    code = getattr(inspect.unwrap(function), "__code__", None) if function is not None else None
    if code is None:
        return None
    parsed = assertions.parsed_file(code.co_filename)
    node = parsed.function_at(code.co_firstlineno) if parsed is not None else None
    if parsed is None or node is None:
        return None
    return assertions.clean(assertions.bound(parsed.block(node), assertions.SOURCE_LIMIT))


def case_record(
    nodeid: str,
    reports: Mapping[str, pytest.TestReport],
    details: protocol.Details,
    *,
    timeout: float | None,
    skipped_by_code: bool,
) -> protocol.CaseRecord:
    """The record of one test from pytest's reports of its phases and what its failure says
    (`details`); `timeout`: the seconds it was given when it ran out of them, else None;
    `skipped_by_code`: the code under test skipped it (an error in a candidate's run)."""
    duration = sum(float(getattr(r, "duration", 0.0)) for r in reports.values())
    outcome: Any = "passed"
    for when in ("setup", "call", "teardown"):
        report = reports.get(when)
        if report is None:
            continue
        if report.failed:
            outcome = "failed" if when == "call" else "error"
            break
        if report.skipped:
            outcome = "skipped"
    if skipped_by_code:
        outcome = "error"
    if timeout is not None:
        outcome = "timeout"
        details["exc_type"] = "Timeout"
        details["exc_message"] = f"timed out after {timeout:g} s"
    # Each phase's report carries the output captured so far: the last one has it all.
    last = reports.get("teardown") or reports.get("call") or reports.get("setup")
    stdout = str(getattr(last, "capstdout", ""))
    stderr = str(getattr(last, "capstderr", ""))
    record: protocol.CaseRecord = {
        "event": "test",
        "nodeid": nodeid,
        "outcome": outcome,
        "duration": round(duration, 6),
        "stdout": assertions.clean(assertions.bound(stdout, OUTPUT_LIMIT)),
        "stderr": assertions.clean(assertions.bound(stderr, OUTPUT_LIMIT)),
    }
    if outcome == "skipped":
        skip = reports.get("call") or reports.get("setup")
        longrepr = getattr(skip, "longrepr", None)
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            record["exc_message"] = assertions.clean(str(longrepr[2]))
    if outcome in ("failed", "error", "timeout"):
        record.update(cast("protocol.CaseRecord", details))  # its own optional part
        if "exc_message" not in record:  # e.g. a strict xpass: no exception, only a report
            failed = next((r for r in reports.values() if r.failed), None)
            text = str(getattr(failed, "longrepr", "") or "")
            record["exc_message"] = assertions.clean(
                assertions.bound(text, assertions.MESSAGE_LIMIT)
            )
    return record
