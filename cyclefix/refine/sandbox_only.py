"""Tests that fail only in the sandbox: proven on the user's unchanged code, then excused.

The user's run of the tests is in place and unconfined; candidates run confined on a scratch
copy. A test that passes in the user's run but fails confined for a reason outside the code
(the network, a path outside the copy, a file the copy leaves out, a device) would make every
candidate "break a test that passed before", so no fix could ever be shown. When a candidate's
run fails such tests, `BaseFailures` runs the ones not yet checked, once per fix, confined, on a
fresh copy of the user's project that no candidate has run in and holding no candidate's code
(a hostile candidate cannot plant a file there to get a test excused). Those that fail there
too did not fail because of the candidate: among the tests that passed in the user's run they
are "sandbox-only" and no longer judge the fix. The tests the fix is for never are: they did
not pass in the user's run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence

from cyclefix.runner.results import TestRunResult

# Tests checked in a first base run: when one of them passes there the candidate broke it, and
# the rest need no run (a candidate that breaks a whole suite costs one short run, not two).
FIRST_CHECKS = 5
# Tests named in the note; the rest are counted.
NOTE_NAMES = 3


class BaseFailures:
    """Which tests fail confined on the user's unchanged code, each run at most once per fix.

    `run_on_base` runs the given node ids confined on a fresh copy of the user's project; None
    when that could not be done (nothing is then excused)."""

    def __init__(self, run_on_base: Callable[[tuple[str, ...]], TestRunResult | None]) -> None:
        self._run_on_base = run_on_base
        self._fails: dict[str, bool] = {}  # node id -> it failed confined on the user's code
        self.checks = 0  # base runs made so far

    def failing(self, nodeids: Iterable[str]) -> frozenset[str]:
        """Those of `nodeids` proven to fail confined on the user's code. Unchecked ones run
        now: the first FIRST_CHECKS, then, only when all of those fail there, the rest."""
        wanted = tuple(dict.fromkeys(nodeids))
        unchecked = [n for n in wanted if n not in self._fails]
        first, rest = unchecked[:FIRST_CHECKS], unchecked[FIRST_CHECKS:]
        if first and self._check(first) and rest:
            self._check(rest)
        return frozenset(n for n in wanted if self._fails.get(n, False))

    def _check(self, nodeids: Sequence[str]) -> bool:
        """Run `nodeids` on the user's code and remember each verdict; whether all failed."""
        self.checks += 1
        run = self._run_on_base(tuple(nodeids))
        if run is not None and run.cancelled:
            return False  # stopped: proves nothing, and the fix is ending anyway
        # A test the base run did not report (not run after hangs, not collected) proves nothing.
        failed = {t.nodeid for t in run.failures} if run is not None else set()
        for nodeid in nodeids:
            self._fails[nodeid] = nodeid in failed
        return all(self._fails[n] for n in nodeids)


def without_tests(run: TestRunResult, nodeids: Iterable[str]) -> TestRunResult:
    """`run` without the results of `nodeids` (excused tests no longer judge it)."""
    drop = frozenset(nodeids)
    if not any(t.nodeid in drop for t in run.tests):
        return run
    return dataclasses.replace(run, tests=tuple(t for t in run.tests if t.nodeid not in drop))


def sandbox_only_note(nodeids: Sequence[str]) -> str:
    """What the user is told of the excused tests, once per fix; "" when there are none."""
    if not nodeids:
        return ""
    names = ", ".join(nodeids[:NOTE_NAMES])
    more = f" and {len(nodeids) - NOTE_NAMES} more" if len(nodeids) > NOTE_NAMES else ""
    count = "1 test fails" if len(nodeids) == 1 else f"{len(nodeids)} tests fail"
    they = "it passes" if len(nodeids) == 1 else "they pass"
    return (
        f"{count} in the sandbox even with your code unchanged, so "
        f"{'it' if len(nodeids) == 1 else 'they'} could not judge the fix: {names}{more} "
        f"({they} in your own run)"
    )
