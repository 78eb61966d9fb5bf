"""Short, styled texts for test outcomes, feedback and attempt verdicts shown in the TUI."""

from __future__ import annotations

from rich.text import Text

from cyclefix.refine import Attempt, TestCaseResult, Verdict
from cyclefix.refine.console import visible

OUTCOME_STYLES: dict[str, str] = {
    "passed": "green",
    "failed": "bold red",
    "error": "bold red",
    "skipped": "yellow",
    "timeout": "bold magenta",
}

VERDICT_TEXTS: dict[Verdict, str] = {
    "passed": "verified fix",
    "tests_failed": "tests still failing",
    "regressed": "broke a test that passed before",
    "copy": "copy of the faulty code",
    "duplicate": "repeats an earlier attempt",
    "syntax_error": "syntax error",
    "undefined_names": "undefined names",
    "rigged": "equal to anything: tests cannot judge it",
    "tampering": "reaches into the test run: refused",
    "no_code": "no code in the answer",
    "wrong_target": "does not define the function to fix",
    "cancelled": "cancelled",
}

FEEDBACK_WIDTH = 70


def outcome_text(outcome: str) -> Text:
    return Text(outcome, style=OUTCOME_STYLES.get(outcome, ""))


def first_line(text: str, width: int = FEEDBACK_WIDTH) -> str:
    """The first non-blank line of `text`, shortened to `width` characters, with control
    characters shown as escapes (`visible`): it goes to the screen."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = visible(line)
    return line if len(line) <= width else line[: width - 1] + "…"


def short_feedback(case: TestCaseResult, width: int = FEEDBACK_WIDTH) -> str:
    """One line saying why a test failed: expected vs actual, the assert, or the exception."""
    if case.ok:
        return ""
    if case.outcome == "timeout":
        return "timed out"
    if case.expected is not None and case.actual is not None:
        return first_line(f"expected {case.expected}, got {case.actual}", width)
    if case.assert_explanation:
        return first_line(case.assert_explanation, width)
    if case.exc_type:
        message = f"{case.exc_type}: {case.exc_message}" if case.exc_message else case.exc_type
        return first_line(message, width)
    return first_line(case.stderr or case.stdout, width)


def nodeid_file(nodeid: str) -> str:
    """The file part of a pytest node id ("tests/test_x.py::test_y" -> "tests/test_x.py")."""
    return nodeid.split("::", 1)[0]


def nodeid_test(nodeid: str) -> str:
    """The test part of a node id, or the whole id when it names a file, as shown on screen
    (control characters as escapes: a parametrized id holds the values it was given)."""
    return visible(nodeid.split("::", 1)[1] if "::" in nodeid else nodeid)


def verdict_text(attempt: Attempt) -> Text:
    """The verdict in words, green for a verified fix and red for every kind of rejection."""
    label = VERDICT_TEXTS.get(attempt.verdict, attempt.verdict)
    style = "bold green" if attempt.verdict == "passed" else "red"
    if attempt.verdict == "cancelled":
        style = "yellow"
    return Text(label, style=style)


def attempt_tests_text(attempt: Attempt) -> str:
    return f"{attempt.tests_passed}/{attempt.tests_total}" if attempt.tests_total else "-"


def format_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"
