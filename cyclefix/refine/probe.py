"""What the suspect did: the probe's record of a failing test's calls, as feedback lines.

The traced run (runner.trace) records, for a failing test, the first calls of each project
function it ran: the arguments and what came back. A failing assert names the caller
(`invoice.tax() == 13`, actual 12); the line `percent_of(125, 10) returned 12` beside it shows
the model where the wrong value was made. Only the functions the prompt shows (the ones the
answer may rewrite) are reported, the suspect first, in a few bounded lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from cyclefix.refine.types import Target
from cyclefix.runner.feedback import bound_text, short_test_name
from cyclefix.runner.results import ProbedCall, TestCaseResult

# Calls reported in all (the first target's first), and per function.
MAX_CALLS = 4
CALLS_PER_FUNCTION = 2
# Characters of one reported call, and of the whole section.
CALL_CHARS = 240
SECTION_CHARS = 700
HEADING = "What the code did in {test} (its first calls):"


def call_line(call: ProbedCall) -> str:
    """`percent_of(125, 10) returned 12`, `check(-1) raised ValueError(-1)`, or the call alone
    when it never ended (the test stopped inside it)."""
    if call.raised is not None:
        text = f"{call.call} raised {call.raised}"
    elif call.returned is not None:
        text = f"{call.call} returned {call.returned}"
    else:
        text = f"{call.call} did not return"
    return text if len(text) <= CALL_CHARS else text[: CALL_CHARS - 3] + "..."


def probe_lines(case: TestCaseResult, shown: Sequence[Target]) -> tuple[str, ...]:
    """The recorded calls of the functions `shown`, in their order, at most MAX_CALLS; not
    those the failing line's feedback already tells (`restated`)."""
    calls = {(e.path, e.qualname): e.calls for e in case.executed if e.calls}
    lines: list[str] = []
    for target in shown:
        for call in calls.pop((target.path, target.qualname), ())[:CALLS_PER_FUNCTION]:
            if len(lines) == MAX_CALLS:
                return tuple(lines)
            if not restated(call, case):
                lines.append(call_line(call))
    return tuple(lines)


def restated(call: ProbedCall, case: TestCaseResult) -> bool:
    """Whether the feedback on the failing line already says what `call` did: that line calls
    the function itself, and the feedback's actual output is what it returned, or the test's
    error is what it raised (a test of one function: the line would repeat it, in tokens
    every prompt pays for)."""
    name = call.call.split("(", 1)[0].rpartition(".")[2]
    line = case.assert_source or case.line_source or ""
    if not name or f"{name}(" not in line:
        return False
    if call.returned is not None and case.actual is not None:
        return _shown_as(call.returned, case.actual)
    if call.raised is not None and case.exc_type:
        return call.raised.startswith(f"{case.exc_type}(")
    return False


def _shown_as(short: str, whole: str) -> bool:
    """Whether `short`, a value rendered bounded ("[1, 2, 3, ...]"), is `whole`'s rendering."""
    if short == whole:
        return True
    head, cut, _ = short.partition("...")
    return bool(cut) and len(head) >= 8 and whole.startswith(head)


def with_probe(feedback: str, case: TestCaseResult | None, shown: Sequence[Target]) -> str:
    """`feedback`, then what the functions `shown` did in the failing test `case` (nothing
    to add without a case, or when the run that made `case` recorded no calls of them)."""
    if case is None:
        return feedback
    lines = probe_lines(case, shown)
    if not lines:
        return feedback
    section = "\n".join((HEADING.format(test=short_test_name(case)), *lines))
    return f"{feedback.rstrip()}\n{bound_text(section, SECTION_CHARS)}"
