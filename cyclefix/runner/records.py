"""What a test process said, as results: its signed records checked into protocol's TypedDicts,
then turned into TestCaseResult and CollectionError; and pytest's own output for what happened
before the plugin could speak (pytest missing, a conftest that does not import); and what a
process's end means for its records (believed or not, the test it stopped in)."""

from __future__ import annotations

import math
import re
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cyclefix.runner import protocol, trace
from cyclefix.runner.project import project_relative
from cyclefix.runner.protocol import (
    CaseRecord,
    CollectedRecord,
    CollectErrorRecord,
    CollectStartRecord,
    DecoyRecord,
    ExecutedRecord,
    ProbedCallRecord,
    SessionFinishRecord,
    SessionStartRecord,
    StartRecord,
    TraceRecord,
    WatchdogRecord,
)
from cyclefix.runner.protocol import Frame as FrameRecord
from cyclefix.runner.results import (
    Callee,
    CollectionError,
    ExecutedFunction,
    Frame,
    ProbedCall,
    RunPhases,
    TestCaseResult,
)
from cyclefix.runner.sandbox import SandboxResult

Record = (
    CaseRecord
    | StartRecord
    | CollectStartRecord
    | CollectErrorRecord
    | CollectedRecord
    | SessionStartRecord
    | WatchdogRecord
    | TraceRecord
    | DecoyRecord
    | SessionFinishRecord
)
# Characters of one text field kept (the plugin's longest, a test's source, is far shorter).
TEXT_LIMIT = 64 << 10
# Entries of one list kept, at the plugin's own bounds (failures.py, trace.py): a record signed
# by someone else cannot make this side hold millions of small objects.
MAX_FRAMES = 20
MAX_FUNCTIONS = trace.MAX_FUNCTIONS_PER_TEST
MAX_LINES = 1000
MAX_CALLS = trace.PROBED_CALLS
OUTCOMES: frozenset[str] = frozenset({"passed", "failed", "error", "skipped", "timeout"})


def parse_record(raw: Mapping[str, Any]) -> Record | None:
    """The typed record of one verified line, fields of the wrong type dropped or defaulted;
    None for an event this side does not know or a test record without its node id/outcome."""
    event = raw.get("event")
    nodeid = str(raw.get("nodeid", ""))
    if event == "test":
        return _case_record(raw)
    if event == "start":
        return StartRecord(event="start", nodeid=nodeid)
    if event == "collect_start":
        return CollectStartRecord(event="collect_start", nodeid=nodeid)
    if event == "collect_error":
        return CollectErrorRecord(
            event="collect_error",
            nodeid=nodeid,
            message=str(raw.get("message", "")),
            path=project_relative(raw.get("path")) or project_relative(nodeid.split("::")[0]) or "",
            line=_int_or_none(raw.get("line")),
            exc_type=_str_or_none(raw.get("exc_type")),
            project_frames=_frame_records(raw.get("project_frames")),
        )
    if event == "collected":
        nodeids = raw.get("nodeids")
        names = [str(n) for n in nodeids] if isinstance(nodeids, list) else []
        decoy = raw.get("decoy") is True
        return CollectedRecord(event="collected", nodeids=names, t=_time(raw), decoy=decoy)
    if event == "session_start":
        return SessionStartRecord(event="session_start", t=_time(raw))
    if event == "watchdog":
        seconds = _float_or_none(raw.get("seconds")) or 0.0
        return WatchdogRecord(event="watchdog", nodeid=nodeid, seconds=seconds)
    if event == "trace":
        reason = str(raw.get("reason") or "tracing is unavailable")
        return TraceRecord(event="trace", active=raw.get("active") is True, reason=reason)
    if event == "decoy":
        return DecoyRecord(event="decoy", outcome=str(raw.get("outcome", "")))
    if event == "session_finish":
        status = _int_or_none(raw.get("exitstatus"))
        return None if status is None else SessionFinishRecord(event=event, exitstatus=status)
    return None


def _case_record(raw: Mapping[str, Any]) -> CaseRecord | None:
    nodeid, outcome = raw.get("nodeid"), raw.get("outcome")
    if not isinstance(nodeid, str) or outcome not in OUTCOMES:
        return None
    text = _texts(raw)
    return CaseRecord(
        event="test",
        nodeid=nodeid,
        outcome=outcome,
        duration=_float_or_none(raw.get("duration")) or 0.0,
        stdout=_str_or_none(raw.get("stdout")) or "",
        stderr=_str_or_none(raw.get("stderr")) or "",
        t=_time(raw),
        line=_int_or_none(raw.get("line")),
        project_frames=_frame_records(raw.get("project_frames")),
        caught_frames=_frame_records(raw.get("caught_frames")),
        callees=_callee_records(raw.get("callees")),
        executed=_executed_records(raw.get("executed")),
        trace_incomplete=raw.get("trace_incomplete") is True,
        path=project_relative(raw.get("path")),
        exc_type=text("exc_type"),
        exc_message=text("exc_message"),
        assert_source=text("assert_source"),
        assert_explanation=text("assert_explanation"),
        input=text("input"),
        expected=text("expected"),
        actual=text("actual"),
        test_source=text("test_source"),
        line_source=text("line_source"),
    )


def _texts(raw: Mapping[str, Any]) -> Callable[[str], str | None]:
    """A reader of the record's optional text fields: the string, or None."""
    return lambda name: _str_or_none(raw.get(name))


def _frame_records(items: object) -> list[FrameRecord]:
    """Project frames; malformed entries and paths outside the project are dropped."""
    if not isinstance(items, list):
        return []
    return [
        FrameRecord(
            path=path,
            line=_int_or_none(item.get("line")) or 0,
            function=str(item.get("function", "")),
            source=str(item.get("source", "")),
        )
        for item in items[-MAX_FRAMES:]
        if isinstance(item, dict) and (path := project_relative(item.get("path"))) is not None
    ]


def _callee_records(value: object) -> dict[str, list[str]]:
    """name -> [file, function]; malformed entries are dropped."""
    if not isinstance(value, dict):
        return {}
    return {
        name: list(where)
        for name, where in list(value.items())[:MAX_FUNCTIONS]
        if isinstance(name, str)
        and isinstance(where, list)
        and len(where) == 2
        and project_relative(where[0]) is not None
        and isinstance(where[1], str)
    }


def _executed_records(items: object) -> list[ExecutedRecord]:
    """The traced functions of a test record; malformed entries are dropped."""
    if not isinstance(items, list):
        return []
    found: list[ExecutedRecord] = []
    for item in items[:MAX_FUNCTIONS]:
        if not isinstance(item, dict):
            continue
        path, qualname, first = item.get("path"), item.get("qualname"), item.get("line")
        lines = item.get("lines")
        line = _int_or_none(first)
        path = project_relative(path)
        if not (path is not None and isinstance(qualname, str) and line is not None):
            continue
        numbers = (
            [n for n in lines[:MAX_LINES] if _int_or_none(n) is not None]
            if isinstance(lines, list)
            else []
        )
        found.append(
            ExecutedRecord(
                path=path,
                qualname=qualname,
                line=line,
                lines=numbers,
                calls=_probed_call_records(item.get("calls")),
            )
        )
    return found


def _probed_call_records(items: object) -> list[ProbedCallRecord]:
    """The probe's calls of one traced function; malformed entries are dropped."""
    if not isinstance(items, list):
        return []
    return [
        ProbedCallRecord(
            call=item["call"][:TEXT_LIMIT],
            returned=_str_or_none(item.get("returned")),
            raised=_str_or_none(item.get("raised")),
        )
        for item in items[:MAX_CALLS]
        if isinstance(item, dict) and isinstance(item.get("call"), str)
    ]


def case_result(record: CaseRecord) -> TestCaseResult:
    """The TestCaseResult of a parsed test record."""
    return TestCaseResult(
        nodeid=record["nodeid"],
        outcome=record["outcome"],
        duration=record["duration"],
        path=record.get("path"),
        line=record.get("line"),
        exc_type=record.get("exc_type"),
        exc_message=record.get("exc_message"),
        assert_source=record.get("assert_source"),
        assert_explanation=record.get("assert_explanation"),
        input=record.get("input"),
        expected=record.get("expected"),
        actual=record.get("actual"),
        test_source=record.get("test_source"),
        project_frames=_frames(record.get("project_frames", [])),
        caught_frames=_frames(record.get("caught_frames", [])),
        stdout=record["stdout"],
        stderr=record["stderr"],
        line_source=record.get("line_source"),
        callees=tuple(
            Callee(name, where[0], where[1]) for name, where in record.get("callees", {}).items()
        ),
        executed=tuple(_executed(f) for f in record.get("executed", [])),
    )


def collection_error(record: CollectErrorRecord) -> CollectionError:
    """The CollectionError of a parsed collect_error record."""
    return CollectionError(
        path=record.get("path") or "",
        message=record["message"],
        line=record.get("line"),
        nodeid=record["nodeid"],
        exc_type=record.get("exc_type"),
        project_frames=_frames(record.get("project_frames", [])),
    )


def _executed(record: ExecutedRecord) -> ExecutedFunction:
    calls = tuple(
        ProbedCall(c["call"], c.get("returned"), c.get("raised")) for c in record.get("calls", [])
    )
    return ExecutedFunction(
        record["path"], record["qualname"], record["line"], tuple(record["lines"]), calls
    )


def _frames(records: list[FrameRecord]) -> tuple[Frame, ...]:
    return tuple(Frame(f["path"], f["line"], f["function"], f["source"]) for f in records)


def _time(raw: Mapping[str, Any]) -> float:
    """A record's monotonic time stamp; 0.0 (no stamp) when missing."""
    return _float_or_none(raw.get("t")) or 0.0


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float_or_none(value: object) -> float | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int past a float's range
        return None
    return number if math.isfinite(number) else None


def _str_or_none(value: object) -> str | None:
    """The text, cut to TEXT_LIMIT: the plugin bounds what it sends; a forged record may not."""
    return value[:TEXT_LIMIT] if isinstance(value, str) else None


# ---------------------------------------------------------------- one process


@dataclass
class ProcessReport:
    """What one pytest process reported, as far as run.py has read it."""

    collected: list[str] | None = None
    # `collected` as a set, kept beside it: every start and test record is looked up in it.
    collected_ids: frozenset[str] = frozenset()
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
    # Bytes read from its results pipe.
    received: int = 0
    # Monotonic times: spawn and reap (this side), session start, collection end and the
    # last test's end (the test process's records; the same clock on one machine).
    spawned: float = 0.0
    reaped: float = 0.0
    session_started: float | None = None
    collected_at: float | None = None
    last_test_at: float | None = None
    # The plugin runs a decoy after the tests (runner.decoy), and what it said pytest reported.
    decoy_expected: bool = False
    decoy: str | None = None

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

    def disagreement(self, ended: SandboxResult, collection_failed: bool) -> str:
        """Why a process whose records all pass is not believed ("" when it is): its decoy
        (runner.decoy) was not reported failed, or its session's exit status or collected tests
        disagree with its records."""
        if ended.cancelled or ended.timed_out:
            return ""
        records_pass = all(case.ok for case in self.finished.values()) and not collection_failed
        missing = [n for n in self.collected or () if n not in self.finished]
        # Whether or not the session's end came: an exit after forged records skips the decoy.
        decoy_failed = self.decoy == protocol.DECOY_FAILED
        if records_pass and not missing and self.decoy_expected and not decoy_failed:
            said = "nothing" if self.decoy is None else repr(self.decoy)
            return f"a test made to fail was reported as {said}: the reports are not what ran"
        status = self.session_exit
        if status is None:
            return ""
        if ended.returncode != status and not self.killed_after_session:
            return (
                f"pytest's session ended with status {status}, its process with {ended.returncode}"
            )
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

    def interrupted_case(self, nodeid: str, ended: SandboxResult, timeout: float) -> TestCaseResult:
        """The result of the test `nodeid`, running when the process ended."""
        path = nodeid.split("::", 1)[0]
        if self.hung == nodeid or self.watchdog == nodeid:
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
            exc_message=f"the test process {death(ended.returncode)} while this test was running",
        )


def out_of_place(report: ProcessReport, record: Record) -> str:
    """Why a signed record is one no plugin sends at this point ("" when it could): only the
    key's holder, code under test included, signs such."""
    if report.session_exit is not None and record["event"] != "watchdog":
        return "the test process sent records after its session ended"
    if record["event"] == "decoy" and (not report.decoy_expected or report.decoy is not None):
        return "the test process reported a decoy test it did not announce"
    if report.collected is None or not (record["event"] == "start" or record["event"] == "test"):
        return ""
    if record["nodeid"] not in report.collected_ids:
        return f"the test process reported {record['nodeid']!r:.80}, not collected"
    return ""


def sum_phases(phases: Sequence[RunPhases]) -> RunPhases | None:
    """The phases of a run's processes added up; None when none was started."""
    if not phases:
        return None
    return RunPhases(
        startup_s=sum(p.startup_s for p in phases),
        collect_s=sum(p.collect_s for p in phases),
        tests_s=sum(p.tests_s for p in phases),
        total_s=sum(p.total_s for p in phases),
    )


# ---------------------------------------------------------------- pytest's own output


def death(returncode: int | None) -> str:
    """How a process ended, for a message: "was killed by SIGKILL", "exited with code 3"."""
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


def first_error_line(output: str) -> str:
    """The line of pytest's output that best says what went wrong."""
    for line in output.splitlines():
        if line.startswith(("ERROR:", "E ")) or "Error" in line:
            return line.strip()[:300]
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "(no output)"


NO_PYTEST = re.compile(r"No module named '?pytest'?(?:\s|$)")
_CONFTEST = re.compile(r"ImportError while loading conftest '([^']+)'")
_FILE_LINE = re.compile(r'File "([^"]+)", line (\d+)')
_ERROR_LINE = re.compile(r"^E\s+(\w+(?:Error|Exception|Exit)\b.*)$", re.MULTILINE)


def conftest_failure(output: str, root: Path) -> CollectionError | None:
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
