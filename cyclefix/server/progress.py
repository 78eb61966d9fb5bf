"""One `$/progress` report per job, or nothing when the client cannot show it, and its texts."""

from __future__ import annotations

import asyncio
import logging
import uuid

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.lsp.server import LanguageServer

from cyclefix.refine import (
    AttemptFinished,
    RefineEvent,
    RoundStarted,
    TestRunResult,
    TestsFinished,
    TestsStarted,
)

logger = logging.getLogger(__name__)

# How long to wait for the client to accept a progress token.
CREATE_TIMEOUT = 5.0


def client_supports_progress(server: LanguageServer) -> bool:
    return bool(get_capability(server.client_capabilities, "window.work_done_progress", False))


class JobProgress:
    """begin / report / end of one job; every call is a no-op once ended or when unsupported."""

    def __init__(self, server: LanguageServer) -> None:
        self._server = server
        self.token: str | None = None
        self._ended = False
        self._last: tuple[str | None, int | None] = (None, None)

    async def begin(self, title: str, message: str | None = None) -> None:
        if not client_supports_progress(self._server):
            return
        token = f"cyclefix-{uuid.uuid4().hex[:12]}"
        try:
            # Shielded: a job cancelled meanwhile must not cancel the request whose answer
            # pygls still expects (it would fail to deliver it and report an error).
            create = asyncio.ensure_future(self._server.work_done_progress.create_async(token))
            await asyncio.wait_for(asyncio.shield(create), CREATE_TIMEOUT)
        except Exception as exc:  # a client that refuses or never answers gets no progress
            logger.info("client refused progress token: %s", exc)
            return
        self.token = token
        self._server.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title=title, message=message, cancellable=True, percentage=None
            ),
        )

    def report(self, message: str, percentage: int | None = None) -> None:
        if self.token is None or self._ended or self._last == (message, percentage):
            return
        self._last = (message, percentage)
        self._server.work_done_progress.report(
            self.token, types.WorkDoneProgressReport(message=message, percentage=percentage)
        )

    def end(self, message: str) -> None:
        if self.token is None or self._ended:
            return
        self._ended = True
        self._server.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))


def event_text(event: RefineEvent) -> tuple[str, int | None] | None:
    """The progress message (and percentage) a refine event shows; None: nothing to show."""
    if isinstance(event, TestsStarted):
        if event.scratch:
            return "testing a candidate fix", None
        if len(event.tests) == 1:
            return f"running {event.tests[0]}", None
        return f"running {len(event.tests) or 'all'} test selections", None
    if isinstance(event, TestsFinished) and not event.scratch:
        run = event.run
        return f"{len(run.passed)}/{len(run.tests)} tests pass", None
    if isinstance(event, RoundStarted):
        names = ", ".join(f"`{name}()`" for name in event.targets) or "the code"
        percentage = int(100 * (event.index - 1) / max(1, event.total))
        return f"Refining {names}: round {event.index}/{event.total}", percentage
    if isinstance(event, AttemptFinished):
        attempt = event.attempt
        tests = (
            f" ({attempt.tests_passed}/{attempt.tests_total} tests)" if attempt.tests_total else ""
        )
        return f"round {attempt.round}: {attempt.verdict.replace('_', ' ')}{tests}", None
    return None


def run_status_line(run: TestRunResult) -> str:
    """One line for the log and the progress end; the run's notes (tests not run after hangs,
    the interpreter used) are part of it, or the editor would not know tests were skipped."""
    counts = _counts(run)
    return "; ".join((counts, *run.notes))


def _counts(run: TestRunResult) -> str:
    if run.collection_errors:
        return f"{len(run.collection_errors)} file(s) could not be collected"
    if run.timed_out:
        return f"the test run timed out after {run.duration:.0f}s"
    failed = len(run.failures)
    if not run.tests:
        return "no tests ran"
    if failed == 0:
        return f"{len(run.tests)}/{len(run.tests)} tests pass"
    return f"{len(run.passed)}/{len(run.tests)} tests pass, {failed} failing"
