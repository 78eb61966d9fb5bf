"""Feedback a person (and the model) reads: no empty Input, a string value keeps its own quotes."""

from __future__ import annotations

import dataclasses

from cyclefix.runner import TestCaseResult, feedback_text

SUMMARY_CASE = TestCaseResult(
    nodeid="tests/test_report.py::test_summary",
    outcome="failed",
    path="tests/test_report.py",
    line=5,
    exc_type="AssertionError",
    exc_message="assert '2 line(s)' == '1 line(s)'",
    assert_source="assert summary() == '1 line(s)'",
    input="",
    expected="'1 line(s)'",
    actual="'2 line(s)'",
)


def test_a_test_without_arguments_shows_no_input() -> None:
    assert feedback_text(SUMMARY_CASE) == (
        "Test Case Failed: assert summary() == '1 line(s)', "
        "Expected output: '1 line(s)', Actual output: '2 line(s)'"
    )


def test_a_string_value_is_not_double_quoted_and_a_number_still_is() -> None:
    case = dataclasses.replace(SUMMARY_CASE, input="3", expected="3.0", actual='"x"')
    assert feedback_text(case).endswith('Input: "3", Expected output: "3.0", Actual output: "x"')
