"""Execution feedback in the CYCLE form: what one failing test tells the model (SEEDS.md).

Test Case Failed: <assert>, Input: "<args>", Expected output: "<e>", Actual output: "<a>"
Failed at line: <line source> (<file>:<n>); Error: <ExcType: message>; Input: "<args>"
Test <name> timed out after N s
A string value keeps its own quotes (Expected output: 'ab'); a test without arguments has no Input.
"""

from __future__ import annotations

from cyclefix.runner.results import TestCaseResult, TestRunResult

# Each value (input, expected, actual, message) is cut to this before the whole is bounded.
VALUE_LIMIT = 400


def bound_text(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters: head and tail kept, a marker in between."""
    if limit <= 0 or len(text) <= limit:
        return text
    marker = "\n... [{} characters cut] ...\n"
    room = limit - len(marker.format(len(text)))
    if room < 2:
        return text[:limit]
    head = (room + 1) // 2
    tail = room - head
    cut = len(text) - head - tail
    return text[:head] + marker.format(cut) + (text[-tail:] if tail else "")


def _one_line(text: str, limit: int = VALUE_LIMIT) -> str:
    """Source or a value on one line (a multi-line statement's lines joined), bounded."""
    joined = ""
    for line in (part.strip() for part in text.strip().splitlines()):
        glue = "" if not joined or joined.endswith(("(", "[", "{")) or line[:1] in ")]}" else " "
        joined += glue + line
    return bound_text(joined, limit)


def _quoted(text: str) -> str:
    """A value in double quotes, unless it is a string literal already (`'a'` stays `'a'`)."""
    value = _one_line(text)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value
    return f'"{value}"'


def _has_input(case: TestCaseResult) -> bool:
    """A test that calls with arguments; a test without parameters shows no `Input: ""`."""
    return case.input is not None and bool(case.input.strip())


def short_test_name(case: TestCaseResult) -> str:
    """The test's own name: `test_median[2-3]` from `tests/test_x.py::Class::test_median[2-3]`."""
    return case.nodeid.rsplit("::", 1)[-1]


def _location(path: str | None, line: int | None) -> str:
    if path and line:
        return f"{path}:{line}"
    return path or "?"


def _error(case: TestCaseResult) -> str:
    kind = case.exc_type or "Error"
    message = (case.exc_message or "").strip()
    return _one_line(f"{kind}: {message}" if message else kind)


def feedback_text(case: TestCaseResult, limit: int = 1500) -> str:
    """The CYCLE feedback for one test, at most `limit` characters."""
    if case.outcome == "timeout":
        text = _timeout_text(case)
    elif case.outcome in ("passed", "skipped"):
        text = f"Test {short_test_name(case)} {case.outcome}"
    elif (
        case.assert_source
        and case.exc_type == "AssertionError"
        and (case.expected is not None or case.actual is not None)
    ):
        text = _assert_text(case)
    else:
        text = _crash_text(case)
    return bound_text(text, limit)


def _assert_text(case: TestCaseResult) -> str:
    parts = [f"Test Case Failed: {_one_line(case.assert_source or '')}"]
    if _has_input(case):
        parts.append(f'Input: "{_one_line(case.input or "")}"')
    if case.expected is not None:
        parts.append(f"Expected output: {_quoted(case.expected)}")
    if case.actual is not None:
        parts.append(f"Actual output: {_quoted(case.actual)}")
    return ", ".join(parts)


def _crash_text(case: TestCaseResult) -> str:
    """Where it failed: the deepest project frame if the error came from project code."""
    if case.project_frames:
        frame = case.project_frames[-1]
        text = (
            f"Failed at line: {_one_line(frame.source or '?')} "
            f"({_location(frame.path, frame.line)}); Error: {_error(case)}"
        )
        if case.line_source:
            text += (
                f"; Test line: {_one_line(case.line_source)} ({_location(case.path, case.line)})"
            )
        return text + _input_text(case)
    source = case.line_source or case.assert_source
    if source:
        return (
            f"Failed at line: {_one_line(source)} ({_location(case.path, case.line)}); "
            f"Error: {_error(case)}" + _input_text(case)
        )
    return f"Test {short_test_name(case)} failed; Error: {_error(case)}"


def _input_text(case: TestCaseResult) -> str:
    text = f'; Input: "{_one_line(case.input or "")}"' if _has_input(case) else ""
    if case.expected is not None:  # what the test's assert wanted from the call that raised
        text += f"; Expected output: {_quoted(case.expected)}"
    return text


def _timeout_text(case: TestCaseResult) -> str:
    message = case.exc_message or "timed out"
    seconds = message.removeprefix("timed out after ").split(" s", 1)[0]
    text = f"Test {short_test_name(case)} " + (
        f"timed out after {seconds} s" if message.startswith("timed out after ") else "timed out"
    )
    if case.project_frames:  # where it was stuck
        frame = case.project_frames[-1]
        where = _location(frame.path, frame.line)
        text += f"; it was running: {_one_line(frame.source or '?')} ({where})"
    elif case.line_source:
        text += (
            f"; it was running: {_one_line(case.line_source)} ({_location(case.path, case.line)})"
        )
    return text


def _short_reason(case: TestCaseResult) -> str:
    if case.outcome == "timeout":
        return (case.exc_message or "timed out").split(" (", 1)[0]
    if case.assert_explanation:
        return case.assert_explanation.strip().splitlines()[0]
    first = (case.exc_message or "").strip().splitlines()
    return f"{case.exc_type or 'Error'}: {first[0]}" if first else case.exc_type or "failed"


def run_summary(run: TestRunResult, limit: int = 4000) -> str:
    """A count line, then one short line per failing test and per collection error."""
    counts: dict[str, int] = {}
    for case in run.tests:
        counts[case.outcome] = counts.get(case.outcome, 0) + 1
    words = [f"{n} {outcome}" for outcome, n in sorted(counts.items(), key=lambda kv: kv[0])]
    if run.collection_errors:
        words.append(f"{len(run.collection_errors)} collection error(s)")
    head = ", ".join(words) if words else "no tests ran"
    if run.timed_out:
        head += "; the run hit its time limit"
    if run.cancelled:
        head += "; cancelled"
    lines = [head]
    for error in run.collection_errors:
        where = _location(error.path, error.line)
        first = error.message.strip().splitlines()[0] if error.message.strip() else "error"
        lines.append(f"ERROR {where} - {_one_line(first, 200)}")
    for case in run.failures:
        label = {"timeout": "TIMEOUT", "error": "ERROR"}.get(case.outcome, "FAILED")
        lines.append(f"{label} {case.nodeid} - {_one_line(_short_reason(case), 200)}")
    return bound_text("\n".join(lines), limit)
