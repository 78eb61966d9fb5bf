"""feedback_text, bound_text and run_summary: the CYCLE feedback forms, bounded."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cyclefix.runner import (
    CollectionError,
    Frame,
    TestCaseResult,
    TestRunResult,
    bound_text,
    feedback_text,
    run_summary,
)

ASSERT_CASE = TestCaseResult(
    nodeid="tests/test_stats.py::test_median_even",
    outcome="failed",
    path="tests/test_stats.py",
    line=12,
    exc_type="AssertionError",
    exc_message="assert 3.5 == 2.5\n +  where 3.5 = median([1, 2, 3, 4])",
    assert_source="assert median([1, 2, 3, 4]) == 2.5",
    assert_explanation="assert 3.5 == 2.5\n +  where 3.5 = median([1, 2, 3, 4])",
    input="[1, 2, 3, 4]",
    expected="2.5",
    actual="3.5",
    line_source="assert median([1, 2, 3, 4]) == 2.5",
)

CRASH_CASE = TestCaseResult(
    nodeid="tests/test_stats.py::test_mean_empty",
    outcome="failed",
    path="tests/test_stats.py",
    line=24,
    exc_type="ZeroDivisionError",
    exc_message="division by zero",
    project_frames=(
        Frame("calc/report.py", 5, "describe", "return f'{mean(values)}'"),
        Frame("calc/stats.py", 15, "mean", "return sum(values) / len(values)"),
    ),
    line_source="assert mean([]) is None",
)

TIMEOUT_CASE = TestCaseResult(
    nodeid="tests/test_stats.py::test_count_bits",
    outcome="timeout",
    path="tests/test_stats.py",
    line=40,
    exc_type="Timeout",
    exc_message="timed out after 3 s",
    project_frames=(Frame("calc/stats.py", 28, "count_bits", "while n:"),),
    line_source="assert count_bits(5) == 2",
)


def test_assert_failure_in_cycle_form() -> None:
    assert feedback_text(ASSERT_CASE) == (
        'Test Case Failed: assert median([1, 2, 3, 4]) == 2.5, Input: "[1, 2, 3, 4]", '
        'Expected output: "2.5", Actual output: "3.5"'
    )


def test_crash_names_the_deepest_project_line_and_the_test_line() -> None:
    assert feedback_text(CRASH_CASE) == (
        "Failed at line: return sum(values) / len(values) (calc/stats.py:15); "
        "Error: ZeroDivisionError: division by zero; "
        "Test line: assert mean([]) is None (tests/test_stats.py:24)"
    )


def test_crash_in_the_test_itself() -> None:
    case = TestCaseResult(
        nodeid="tests/test_x.py::test_key",
        outcome="failed",
        path="tests/test_x.py",
        line=3,
        exc_type="KeyError",
        exc_message="'b'",
        line_source="value = {'a': 1}['b']",
    )
    assert feedback_text(case) == (
        "Failed at line: value = {'a': 1}['b'] (tests/test_x.py:3); Error: KeyError: 'b'"
    )


def test_multi_line_statements_are_joined_on_one_line() -> None:
    case = TestCaseResult(
        nodeid="t.py::test_call",
        outcome="failed",
        path="t.py",
        line=4,
        exc_type="TypeError",
        exc_message="bad",
        line_source='result = compute(\n    "a  b",\n    2,\n)',
    )
    assert feedback_text(case) == (
        'Failed at line: result = compute("a  b", 2,) (t.py:4); Error: TypeError: bad'
    )


def test_timeout_says_timed_out_and_where() -> None:
    assert feedback_text(TIMEOUT_CASE) == (
        "Test test_count_bits timed out after 3 s; it was running: while n: (calc/stats.py:28)"
    )
    bare = TestCaseResult(nodeid="t.py::test_hang", outcome="timeout")
    assert feedback_text(bare) == "Test test_hang timed out"


def test_process_exit_is_reported_as_an_error() -> None:
    case = TestCaseResult(
        nodeid="t.py::test_exit",
        outcome="error",
        exc_type="ProcessExit",
        exc_message="the test process exited with code 0 while this test was running",
    )
    assert feedback_text(case) == (
        "Test test_exit failed; Error: ProcessExit: the test process exited with code 0 "
        "while this test was running"
    )


def test_assert_without_known_values_falls_back_to_the_error_form() -> None:
    case = TestCaseResult(
        nodeid="t.py::test_a",
        outcome="failed",
        path="t.py",
        line=2,
        exc_type="AssertionError",
        exc_message="assert False",
        assert_source="assert check()",
        line_source="assert check()",
    )
    assert (
        feedback_text(case)
        == "Failed at line: assert check() (t.py:2); Error: AssertionError: assert False"
    )


def test_passed_case() -> None:
    assert feedback_text(TestCaseResult(nodeid="t.py::test_ok", outcome="passed")) == (
        "Test test_ok passed"
    )


def test_huge_values_are_bounded_with_head_and_tail() -> None:
    case = TestCaseResult(
        nodeid="t.py::test_big",
        outcome="failed",
        exc_type="AssertionError",
        assert_source="assert f() == expected",
        expected="[" + "1, " * 5000 + "2]",
        actual="[" + "1, " * 5000 + "3]",
    )
    text = feedback_text(case, limit=1500)
    assert len(text) <= 1500
    assert text.startswith("Test Case Failed: assert f() == expected")
    assert "characters cut" in text
    assert text.endswith('3]"')


@given(st.text(), st.integers(min_value=0, max_value=5000))
def test_bound_text_keeps_head_and_tail_within_the_limit(text: str, limit: int) -> None:
    bounded = bound_text(text, limit)
    if limit == 0 or len(text) <= limit:
        assert bounded == text
        return
    assert len(bounded) <= limit
    if "characters cut" in bounded:
        head, _, tail = bounded.partition("\n... [")
        tail = tail.split("] ...\n", 1)[1]
        assert text.startswith(head)
        assert text.endswith(tail)
        cut = len(text) - len(head) - len(tail)
        assert f"[{cut} characters cut]" in bounded


def test_bound_text_marker() -> None:
    assert bound_text("a" * 100 + "b" * 100, 80) == (
        "a" * 25 + "\n... [150 characters cut] ...\n" + "b" * 25
    )


def test_run_summary_lists_each_failure_on_one_line() -> None:
    run = TestRunResult(
        root=Path("/p"),
        tests=(ASSERT_CASE, CRASH_CASE, TIMEOUT_CASE, TestCaseResult("t.py::ok", "passed")),
        exit_code=1,
        duration=1.0,
        collection_errors=(
            CollectionError("calc/bad.py", "SyntaxError: invalid syntax", 3, "tests/test_bad.py"),
        ),
    )
    assert run_summary(run).splitlines() == [
        "2 failed, 1 passed, 1 timeout, 1 collection error(s)",
        "ERROR calc/bad.py:3 - SyntaxError: invalid syntax",
        "FAILED tests/test_stats.py::test_median_even - assert 3.5 == 2.5",
        "FAILED tests/test_stats.py::test_mean_empty - ZeroDivisionError: division by zero",
        "TIMEOUT tests/test_stats.py::test_count_bits - timed out after 3 s",
    ]


@pytest.mark.parametrize(
    ("timed_out", "cancelled", "suffix"),
    [(True, False, "; the run hit its time limit"), (False, True, "; cancelled")],
)
def test_run_summary_says_when_the_run_was_cut_short(
    timed_out: bool, cancelled: bool, suffix: str
) -> None:
    run = TestRunResult(
        root=Path("/p"),
        tests=(),
        exit_code=2,
        duration=1.0,
        timed_out=timed_out,
        cancelled=cancelled,
    )
    assert run_summary(run) == "no tests ran" + suffix
