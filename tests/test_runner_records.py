"""records.py: the plugin's verified records checked into typed records, then into results."""

from __future__ import annotations

import pytest

from cyclefix.runner.protocol import DECOY_FAILED
from cyclefix.runner.records import (
    MAX_CALLS,
    MAX_FRAMES,
    MAX_FUNCTIONS,
    MAX_LINES,
    TEXT_LIMIT,
    ProcessReport,
    case_result,
    collection_error,
    out_of_place,
    parse_record,
)
from cyclefix.runner.results import Callee, ExecutedFunction, Frame, ProbedCall, TestCaseResult
from cyclefix.runner.sandbox import SandboxResult


def test_a_test_record_becomes_a_test_case_result() -> None:
    record = parse_record(
        {
            "event": "test",
            "nodeid": "tests/test_calc.py::test_add",
            "outcome": "failed",
            "duration": 0.25,
            "stdout": "out",
            "stderr": "",
            "t": 12.5,
            "line": 7,
            "expected": "3",
            "actual": "4",
            "project_frames": [{"path": "calc.py", "line": 3, "function": "add", "source": "x"}],
            "callees": {"add": ["calc.py", "add"]},
            "executed": [
                {
                    "path": "calc.py",
                    "qualname": "add",
                    "line": 1,
                    "lines": [2, 3],
                    "calls": [{"call": "add(1, 2)", "returned": "4"}],
                }
            ],
        }
    )
    assert record is not None and record["event"] == "test"
    case = case_result(record)
    assert (case.outcome, case.duration, case.line) == ("failed", 0.25, 7)
    assert (case.expected, case.actual, case.stdout) == ("3", "4", "out")
    assert case.project_frames == (Frame("calc.py", 3, "add", "x"),)
    assert case.callees == (Callee("add", "calc.py", "add"),)
    probe = (ProbedCall("add(1, 2)", "4", None),)
    assert case.executed == (ExecutedFunction("calc.py", "add", 1, (2, 3), probe),)


def test_fields_of_the_wrong_type_are_dropped() -> None:
    record = parse_record(
        {
            "event": "test",
            "nodeid": "t.py::x",
            "outcome": "error",
            "duration": "slow",
            "line": "7",
            "exc_type": 3,
            "project_frames": [{"line": 3}, "frame"],
            "callees": {"f": ["only-one"]},
            "executed": [{"path": "a.py", "qualname": "f"}],
        }
    )
    assert record is not None and record["event"] == "test"
    case = case_result(record)
    assert (case.duration, case.line, case.exc_type) == (0.0, None, None)
    assert (case.project_frames, case.callees, case.executed) == ((), (), ())


def test_a_test_record_without_node_id_or_known_outcome_is_refused() -> None:
    assert parse_record({"event": "test", "nodeid": "t.py::x", "outcome": "won"}) is None
    assert parse_record({"event": "test", "outcome": "passed"}) is None


def test_unknown_events_are_refused() -> None:
    assert parse_record({"event": "celebrate"}) is None


def test_a_session_finish_needs_an_integer_status() -> None:
    assert parse_record({"event": "session_finish", "exitstatus": "0"}) is None
    finish = parse_record({"event": "session_finish", "exitstatus": 1})
    assert finish == {"event": "session_finish", "exitstatus": 1}


def test_a_collection_error_without_a_path_is_placed_at_its_node() -> None:
    record = parse_record(
        {"event": "collect_error", "nodeid": "tests/test_x.py", "message": "SyntaxError"}
    )
    assert record is not None and record["event"] == "collect_error"
    error = collection_error(record)
    assert (error.path, error.nodeid, error.message) == (
        "tests/test_x.py",
        "tests/test_x.py",
        "SyntaxError",
    )


def test_the_collected_selection_keeps_its_order_and_time() -> None:
    record = parse_record({"event": "collected", "nodeids": ["b", "a"], "t": 3.0, "decoy": True})
    assert record == {"event": "collected", "nodeids": ["b", "a"], "t": 3.0, "decoy": True}


def test_a_decoy_is_announced_only_by_true() -> None:
    record = parse_record({"event": "collected", "nodeids": ["a"], "t": 1.0, "decoy": "yes"})
    assert record is not None and record["event"] == "collected" and record["decoy"] is False


def test_paths_that_lead_out_of_the_project_are_dropped() -> None:
    """A record is written by the process that runs the model's code: a forged path must not
    make cyclefix read or write outside the project (or read a device that never ends)."""
    outside = ["/etc/passwd", "../victim.py", "pkg/../../victim.py", "calc\0.py", "C:\\x.py"]
    frames = [{"path": p, "line": 1, "function": "f", "source": ""} for p in outside]
    record = parse_record(
        {
            "event": "test",
            "nodeid": "test_calc.py::test_add",
            "outcome": "failed",
            "path": "/dev/stdin",
            "project_frames": [*frames, {"path": "pkg/calc.py", "line": 2, "function": "add"}],
            "caught_frames": frames,
            "callees": {"add": ["/etc/passwd", "add"], "sub": ["calc.py", "sub"]},
            "executed": [{"path": p, "qualname": "f", "line": 1, "lines": []} for p in outside],
        }
    )
    assert record is not None and record["event"] == "test"
    case = case_result(record)
    assert case.project_frames == (Frame("pkg/calc.py", 2, "add", ""),)
    assert case.caught_frames == ()
    assert case.callees == (Callee("sub", "calc.py", "sub"),)
    assert case.executed == ()
    assert case.path is None


def test_a_collection_error_outside_the_project_names_no_file() -> None:
    record = parse_record(
        {"event": "collect_error", "nodeid": "/etc/passwd", "message": "boom", "path": "/etc"}
    )
    assert record is not None and record["event"] == "collect_error"
    assert collection_error(record).path == ""


def test_numbers_past_a_float_and_texts_past_the_limit_are_bounded() -> None:
    # A record signed by whoever holds the key (red-team pass 4): cyclefix crashed on 10**400.
    raw = {"event": "test", "nodeid": "t.py::x", "outcome": "passed", "duration": 10**400}
    record = parse_record({**raw, "t": float("inf"), "stdout": "x" * (TEXT_LIMIT + 10)})
    assert record is not None and record["event"] == "test"
    assert (record["duration"], record["t"], len(record["stdout"])) == (0.0, 0.0, TEXT_LIMIT)


def test_lists_past_the_plugin_s_own_bounds_are_cut() -> None:
    # Forged records of a million frames held cyclefix's memory at ten times their size.
    frame = {"path": "calc.py", "line": 3, "function": "add", "source": "x"}
    call = {"call": "add(1, 2)", "returned": "4"}
    executed = {"path": "calc.py", "qualname": "add", "line": 1, "lines": list(range(5000)),
                "calls": [call] * 10}  # fmt: skip
    record = parse_record(
        {"event": "test", "nodeid": "t.py::x", "outcome": "failed",
         "project_frames": [frame] * 5000, "executed": [executed] * 5000}
    )  # fmt: skip
    assert record is not None and record["event"] == "test"
    assert len(record["project_frames"]) == MAX_FRAMES
    assert len(record["executed"]) == MAX_FUNCTIONS
    assert len(record["executed"][0]["lines"]) == MAX_LINES
    assert len(record["executed"][0]["calls"]) == MAX_CALLS


def passing_process(decoy: str | None, session_exit: int | None) -> ProcessReport:
    """A process that collected one test, reported it passed and announced a decoy."""
    report = ProcessReport(collected=["t"], decoy_expected=True, decoy=decoy)
    report.finished["t"] = TestCaseResult(nodeid="t", outcome="passed")
    report.session_exit = session_exit
    return report


def exited(returncode: int | None) -> SandboxResult:
    return SandboxResult(returncode, "", 1.0, False, False, True, "none")


@pytest.mark.parametrize("session_exit", [0, None], ids=["session-ended", "process-stopped"])
@pytest.mark.parametrize("decoy", [None, "call passed", "call skipped", "setup error"])
def test_passing_records_are_not_believed_unless_the_decoy_failed(
    decoy: str | None, session_exit: int | None
) -> None:
    reason = passing_process(decoy, session_exit).disagreement(exited(0), False)
    assert reason.startswith("a test made to fail was reported as")


def test_passing_records_with_a_failed_decoy_are_believed() -> None:
    assert passing_process(DECOY_FAILED, 0).disagreement(exited(0), False) == ""


def test_a_decoy_record_nobody_announced_is_out_of_place() -> None:
    report = ProcessReport(collected=["t"])
    assert out_of_place(report, {"event": "decoy", "outcome": DECOY_FAILED})
    report.decoy_expected = True
    assert out_of_place(report, {"event": "decoy", "outcome": DECOY_FAILED}) == ""
    report.decoy = DECOY_FAILED
    assert out_of_place(report, {"event": "decoy", "outcome": DECOY_FAILED})
