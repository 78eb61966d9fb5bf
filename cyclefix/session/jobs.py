"""Work in flight for a session: one job per key (a project, "tests", "refine"), newest wins.

The board lives on the front-end's event loop; the work itself runs in worker threads that
watch `Job.cancel`. Superseding cancels the old job and forgets it, so whatever it reports
later is recognised as stale (`is_current` is False) and dropped.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

_ids = itertools.count(1)


def next_job_id() -> int:
    return next(_ids)


@dataclass(eq=False)
class Job:
    """One test run or refinement; `cancel` is what its worker thread watches."""

    key: Hashable
    label: str = ""
    started: float = field(default_factory=time.monotonic)
    id: int = field(default_factory=next_job_id)
    cancel: threading.Event = field(default_factory=threading.Event)
    # Why it was cancelled ("" while it was not).
    cancel_reason: str = ""


J = TypeVar("J", bound=Job)


class JobBoard(Generic[J]):
    """The current job of each key, the pending paths a debounced job will take, and history."""

    def __init__(self, on_cancel: Callable[[J, str], None] | None = None) -> None:
        self.jobs: dict[Hashable, J] = {}
        # Completed jobs, in the order they finished (for the status of cancelled work).
        self.finished: list[J] = []
        self._pending: dict[Hashable, set[Path]] = {}
        # What a front-end does besides setting the event (cancel a task, end its progress).
        self._on_cancel = on_cancel

    def current(self, key: Hashable) -> J | None:
        return self.jobs.get(key)

    def is_current(self, job: J) -> bool:
        return self.jobs.get(job.key) is job

    def running(self) -> list[J]:
        return list(self.jobs.values())

    def start(self, job: J, reason: str = "superseded by a newer one") -> J | None:
        """Make `job` its key's current job, cancelling the one it supersedes (returned)."""
        old = self.jobs.get(job.key)
        if old is not None:
            self.cancel(old, reason)
        self.jobs[job.key] = job
        return old

    def stop(self, job: J, reason: str) -> None:
        """Ask `job` to stop; it stays current until its worker reports back."""
        if not job.cancel.is_set():
            logger.info("cancelling job %s (%s): %s", job.id, job.key, reason)
            job.cancel_reason = reason
        job.cancel.set()

    def cancel(self, job: J, reason: str) -> None:
        """Stop `job` and forget it: whatever it reports from now on is stale."""
        self.stop(job, reason)
        if self._on_cancel is not None:
            self._on_cancel(job, reason)
        if self.is_current(job):
            del self.jobs[job.key]

    def cancel_all(self, reason: str) -> int:
        jobs = self.running()
        for job in jobs:
            self.cancel(job, reason)
        return len(jobs)

    def finish(self, job: J) -> None:
        """The job ended (done, failed or cancelled): no longer current, kept in `finished`."""
        if self.is_current(job):
            del self.jobs[job.key]
        self.finished.append(job)

    def add_pending(self, key: Hashable, paths: Iterable[Path]) -> None:
        """Paths a debounced job of `key` will take: every save of a burst counts."""
        self._pending.setdefault(key, set()).update(paths)

    def take_pending(self, key: Hashable) -> frozenset[Path]:
        return frozenset(self._pending.pop(key, set()))
