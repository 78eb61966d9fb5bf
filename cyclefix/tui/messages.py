"""Typed Textual messages that carry the workers' progress to the app's event loop.

Workers run in threads; they post these with `App.post_message` (thread-safe). Each carries
the id of the job that produced it, so the app can drop news from a job it has replaced. The
refinement loop's own events travel as they are, in `RefineNews`.
"""

from __future__ import annotations

from pathlib import Path

from textual.message import Message

from cyclefix.refine import FixFinished, FixResult, RefineEvent, TestRunResult


class JobMessage(Message):
    def __init__(self, job: int) -> None:
        super().__init__()
        self.job = job


class RefineNews(JobMessage):
    """One event of `check` or `fix` (tests started or finished, a round, text, an attempt)."""

    def __init__(self, job: int, event: RefineEvent) -> None:
        super().__init__(job)
        self.event = event


class CheckDone(JobMessage):
    """A test-run job finished; `full` says whether it covered the whole selection."""

    def __init__(self, job: int, run: TestRunResult, full: bool) -> None:
        super().__init__(job)
        self.run = run
        self.full = full


class FixDone(JobMessage):
    """A refinement job returned, with whatever status."""

    def __init__(self, job: int, result: FixResult) -> None:
        super().__init__(job)
        self.result = result


class ModelLoading(JobMessage):
    def __init__(self, job: int, spec: str) -> None:
        super().__init__(job)
        self.spec = spec


class ModelReady(JobMessage):
    def __init__(self, job: int, name: str) -> None:
        super().__init__(job)
        self.name = name


class JobFailed(JobMessage):
    """A job stopped on an error; `message` is one line meant for the user."""

    def __init__(self, job: int, message: str, model_error: bool = False) -> None:
        super().__init__(job)
        self.message = message
        self.model_error = model_error


class FilesChanged(Message):
    """The watcher saw project files change on disk."""

    def __init__(self, paths: tuple[Path, ...]) -> None:
        super().__init__()
        self.paths = paths


def news_for_event(job: int, event: RefineEvent) -> RefineNews | None:
    """The message for one refine event (FixFinished: the job posts FixDone itself)."""
    return None if isinstance(event, FixFinished) else RefineNews(job, event)
