"""A test made to fail, run last in a candidate's run: its reports are believed only when they
say that test failed.

Code under test that makes pytest report what did not happen (a report rewritten to "passed",
assertions that never raise, every test's record forged alike) makes this test pass too. So the
plugin appends it, with a name no one can guess, after every other test of a candidate's run,
and sends what pytest reported for it: the runner believes a run whose tests all pass only when
this one failed, by its own exception, in its call. Its failure is then turned into a skip, so
that pytest's session and exit status stay those of the project's own tests.

Shipped next to the pytest plugin (as ``_cyclefix_decoy``), so it may import nothing but the
standard library, pytest and its siblings, and must run on Python 3.9.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from cyclefix.runner import protocol
else:
    try:  # the runner's private copy, in the test process
        import _cyclefix_protocol as protocol
    except ImportError:
        from cyclefix.runner import protocol

FAILED = protocol.DECOY_FAILED


class Decoy:
    """The decoy of one session: its test item, its exception, and what pytest reported."""

    def __init__(self, item: pytest.Function) -> None:
        self.item = item
        self.error = AssertionError("cyclefix: this check fails on purpose")
        self.raised = False  # its call ended in its own exception
        # What the setup, call and teardown reports said, in that order.
        self.phases: list[str] = []

    def raise_error(self) -> None:
        raise self.error

    def made(self, when: str, error: BaseException | None) -> None:
        """Note, as pytest makes a phase's report, whether its call raised the decoy's own
        exception (the report itself is read once it is final)."""
        if when == "call":
            self.raised = error is self.error

    def logged(self, report: pytest.TestReport) -> None:
        """Note what the final report of one phase says, then keep the decoy's failure out of
        the session's tally (called before pytest's own hooks read it): it is a skip there."""
        if report.when == "call":
            ours = report.failed and self.raised
            self.phases.append(FAILED if ours else f"call {report.outcome}")
            if ours:
                report.outcome = "skipped"
                report.longrepr = (str(self.item.path), 0, "cyclefix: a check test")
        elif not report.passed:
            self.phases.append(f"{report.when} {report.outcome}")

    @property
    def outcome(self) -> str:
        """FAILED when pytest reported exactly its failure; else what it reported instead."""
        return FAILED if self.phases == [FAILED] else "; ".join(self.phases) or "not run"


def append(session: pytest.Session, items: list[pytest.Item]) -> Decoy:
    """Append a decoy after `items`. Its parent is the session, so that the project's modules
    and classes are torn down after their own last tests, as without it."""
    name = f"test_cyclefix_check_{os.urandom(6).hex()}"
    holder: list[Decoy] = []
    item = pytest.Function.from_parent(session, name=name, callobj=lambda: holder[0].raise_error())
    decoy = Decoy(item)
    holder.append(decoy)
    items.append(item)
    return decoy
