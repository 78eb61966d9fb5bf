"""refine.probe: the feedback says what the functions a prompt shows did in the failing test."""

from __future__ import annotations

from cyclefix.refine.probe import MAX_CALLS, SECTION_CHARS, call_line, with_probe
from cyclefix.refine.types import Target
from cyclefix.runner.results import ExecutedFunction, ProbedCall, TestCaseResult

FEEDBACK = (
    'Test Case Failed: assert invoice.tax() == 13, Expected output: "13", Actual output: "12"'
)
PERCENT_OF = Target("invoicing/money.py", "percent_of", 4, 6, "def percent_of(c, p): ...")
TAX = Target("invoicing/invoice.py", "Invoice.tax", 29, 31, "def tax(self): ...")


def failing(*executed: ExecutedFunction) -> TestCaseResult:
    return TestCaseResult(
        nodeid="tests/test_invoice.py::test_tax_rounds_half_up",
        outcome="failed",
        executed=executed,
    )


def ran(target: Target, *calls: ProbedCall) -> ExecutedFunction:
    return ExecutedFunction(target.path, target.qualname, target.start_line, (), calls)


def test_the_suspects_call_follows_the_failing_assert() -> None:
    case = failing(ran(PERCENT_OF, ProbedCall("percent_of(125, 10)", returned="12")))
    assert with_probe(FEEDBACK, case, [PERCENT_OF]) == (
        FEEDBACK + "\nWhat the code did in test_tax_rounds_half_up (its first calls):\n"
        "percent_of(125, 10) returned 12"
    )


def test_the_suspect_comes_first_whatever_order_the_test_ran_them() -> None:
    case = failing(
        ran(TAX, ProbedCall("Invoice.tax(Invoice(tax_percent=10))", returned="12")),
        ran(PERCENT_OF, ProbedCall("percent_of(125, 10)", returned="12")),
    )
    lines = with_probe(FEEDBACK, case, [PERCENT_OF, TAX]).splitlines()
    assert lines[-2:] == [
        "percent_of(125, 10) returned 12",
        "Invoice.tax(Invoice(tax_percent=10)) returned 12",
    ]


def test_functions_the_prompt_does_not_show_are_not_reported() -> None:
    case = failing(ran(TAX, ProbedCall("Invoice.tax(Invoice(tax_percent=10))", returned="12")))
    assert with_probe(FEEDBACK, case, [PERCENT_OF]) == FEEDBACK


def test_without_recorded_calls_the_feedback_is_unchanged() -> None:
    assert with_probe(FEEDBACK, failing(ran(PERCENT_OF)), [PERCENT_OF]) == FEEDBACK
    assert with_probe(FEEDBACK, None, [PERCENT_OF]) == FEEDBACK


def test_a_raised_exception_and_an_unfinished_call_are_told_apart() -> None:
    assert call_line(ProbedCall("check(-1)", raised="ValueError(-1)")) == (
        "check(-1) raised ValueError(-1)"
    )
    assert call_line(ProbedCall("spin(1)")) == "spin(1) did not return"


def test_the_section_is_bounded() -> None:
    calls = [ProbedCall(f"f{n}({'x' * 500})", returned="1") for n in range(10)]
    targets = [Target("m.py", f"f{n}", n, n, "") for n in range(10)]
    case = failing(*(ran(t, c) for t, c in zip(targets, calls, strict=True)))
    section = with_probe("", case, targets)
    assert len(section) <= SECTION_CHARS
    assert section.count("\nf") <= MAX_CALLS


REMOVE = Target("solution.py", "remove_elements", 1, 3, "def remove_elements(a, b): ...")
REMOVE_FEEDBACK = (
    "Test Case Failed: assert remove_elements([1,2,3,4,5,6,7,8,9,10],[2,4,6,8])==[1, 3, 5, 7, 9, "
    '10], Input: "[1,2,3,4,5,6,7,8,9,10], [2,4,6,8]", Expected output: "[1, 3, 5, 7, 9, 10]", '
    'Actual output: "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"'
)


def assert_failed(
    *executed: ExecutedFunction, actual: str = "", raised: str = ""
) -> TestCaseResult:
    return TestCaseResult(
        nodeid="tests/test_solution.py::test_case_1",
        outcome="failed",
        assert_source="assert remove_elements([1,2,3,4,5,6,7,8,9,10],[2,4,6,8])==[1, 3, 5, 7, 9, 10]",
        exc_type=raised or "AssertionError",
        actual=actual or None,
        executed=executed,
    )


def test_the_call_the_failing_assert_makes_is_not_told_twice() -> None:
    # The feedback already gives its input and actual output (the probe shows lists cut short).
    call = ProbedCall(
        "remove_elements([1, 2, 3, 4, 5, 6, ...], [2, 4, 6, 8])", "[1, 2, 3, 4, 5, 6, ...]"
    )
    case = assert_failed(ran(REMOVE, call), actual="[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]")
    assert with_probe(REMOVE_FEEDBACK, case, [REMOVE]) == REMOVE_FEEDBACK


def test_the_exception_the_failing_line_raised_is_not_told_twice() -> None:
    call = ProbedCall("remove_elements([1, 2, 3], [2])", raised="TypeError('unhashable')")
    case = assert_failed(ran(REMOVE, call), raised="TypeError")
    assert with_probe(REMOVE_FEEDBACK, case, [REMOVE]) == REMOVE_FEEDBACK


def test_a_call_that_returned_other_than_the_actual_output_is_told() -> None:
    # Called twice by the test: the second call's value is not the one the assert shows.
    first = ProbedCall(
        "remove_elements([1, 2, 3, 4, 5, 6, ...], [2, 4, 6, 8])", "[1, 2, 3, 4, 5, 6, ...]"
    )
    second = ProbedCall("remove_elements([], [1])", returned="None")
    case = assert_failed(ran(REMOVE, first, second), actual="[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]")
    assert with_probe(REMOVE_FEEDBACK, case, [REMOVE]).splitlines()[-1] == (
        "remove_elements([], [1]) returned None"
    )


def test_a_helper_the_assert_does_not_call_is_told_though_it_returned_the_actual_value() -> None:
    case = TestCaseResult(
        nodeid="tests/test_invoice.py::test_tax_rounds_half_up",
        outcome="failed",
        assert_source="assert invoice.tax() == 13",
        exc_type="AssertionError",
        actual="12",
        executed=(ran(PERCENT_OF, ProbedCall("percent_of(125, 10)", returned="12")),),
    )
    assert with_probe(FEEDBACK, case, [PERCENT_OF]).endswith("percent_of(125, 10) returned 12")
