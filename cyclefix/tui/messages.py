"""Typed Textual messages that carry the workers' progress to the app's event loop.

Workers run in threads; they post these with `App.post_message` (thread-safe). Each carries
the id of the job that produced it, so the app can drop news from a job it has replaced.
"""

from __future__ import annotations

from pathlib import Path

from textual.message import Message

from cyclefix.refine import (
    Attempt,
    AttemptFinished,
    FixResult,
    RefineEvent,
    RoundStarted,
    TestRunResult,
    TestsFinished,
    TestsStarted,
    TextGenerated,
)


class JobMessage(Message):
    def __init__(self, job: int) -> None:
        super().__init__()
        self.job = job


class TestsRunning(JobMessage):
    """pytest started, on the user's files or (scratch) on a candidate in a scratch copy."""

    def __init__(self, job: int, tests: tuple[str, ...], scratch: bool) -> None:
        super().__init__(job)
        self.tests = tests
        self.scratch = scratch


class TestsRan(JobMessage):
    """A pytest run inside a refinement finished."""

    def __init__(self, job: int, run: TestRunResult, scratch: bool) -> None:
        super().__init__(job)
        self.run = run
        self.scratch = scratch


class CheckDone(JobMessage):
    """A test-run job finished; `full` says whether it covered the whole selection."""

    def __init__(self, job: int, run: TestRunResult, full: bool) -> None:
        super().__init__(job)
        self.run = run
        self.full = full


class RoundBegan(JobMessage):
    def __init__(
        self, job: int, index: int, total: int, targets: tuple[str, ...], temperature: float
    ) -> None:
        super().__init__(job)
        self.index = index
        self.total = total
        self.targets = targets
        self.temperature = temperature


class TextStreamed(JobMessage):
    """A piece of the model's answer, as it is generated."""

    def __init__(self, job: int, text: str) -> None:
        super().__init__(job)
        self.text = text


class AttemptDone(JobMessage):
    def __init__(self, job: int, attempt: Attempt) -> None:
        super().__init__(job)
        self.attempt = attempt


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


def message_for_event(job: int, event: RefineEvent) -> JobMessage | None:
    """The message for one refine progress event (FixFinished: the job posts FixDone itself)."""
    if isinstance(event, TestsStarted):
        return TestsRunning(job, event.tests, event.scratch)
    if isinstance(event, TestsFinished):
        return TestsRan(job, event.run, event.scratch)
    if isinstance(event, RoundStarted):
        return RoundBegan(job, event.index, event.total, event.targets, event.temperature)
    if isinstance(event, TextGenerated):
        return TextStreamed(job, event.text)
    if isinstance(event, AttemptFinished):
        return AttemptDone(job, event.attempt)
    return None
