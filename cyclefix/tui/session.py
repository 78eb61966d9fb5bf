"""The TUI's project session: what the app knows and does, apart from how it is shown.

Built on cyclefix.session (run ledger, jobs, model holder, verified fixes); the workers here
run in threads and only post messages, which the app handles on its event loop.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal, cast

from textual.message import Message

from cyclefix.errors import CyclefixError
from cyclefix.refine import (
    Backend,
    FixResult,
    ModelError,
    RefineEvent,
    Target,
    TestCaseResult,
    TestRunResult,
    TestsFinished,
    WarmWorkers,
    check,
    fix,
    open_backend,
    suspects,
)
from cyclefix.runner.testfiles import is_test_file
from cyclefix.session.fixes import VerifiedFix
from cyclefix.session.jobs import Job, JobBoard
from cyclefix.session.ledger import RunLedger
from cyclefix.session.models import ModelHolder, install_hint
from cyclefix.tui.formatting import nodeid_file
from cyclefix.tui.messages import (
    CheckDone,
    FixDone,
    JobFailed,
    ModelLoading,
    ModelReady,
    news_for_event,
)
from cyclefix.tui.project import OwnWrites, RunSelection, python_files
from cyclefix.tui.settings import TuiSettings
from cyclefix.tui.widgets.project_tree import FileStatus

logger = logging.getLogger(__name__)

BackendFactory = Callable[[str], Backend]
Clock = Callable[[], float]
Post = Callable[[Message], object]
JobKind = Literal["tests", "refine"]

BUSY_STYLE = "bold black on yellow"
FAIL_STYLE = "bold white on red"
GREEN_STYLE = "bold black on green"
WARN_STYLE = "bold black on dark_orange"
IDLE_STYLE = "bold"


@dataclass(eq=False)
class TuiJob(Job):
    """A test run or a refinement running in a worker thread; its key is its kind."""

    full: bool = True

    @property
    def kind(self) -> JobKind:
        return cast(JobKind, self.key)


class TuiSession:
    """One project open in the TUI: its tests' results, the jobs in flight, the model, the fix."""

    def __init__(
        self,
        settings: TuiSettings,
        backend_factory: BackendFactory = open_backend,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self.root = settings.root.resolve()
        self.model_spec = settings.model
        self.clock = clock
        self.ledger = RunLedger(self.root)
        self.board: JobBoard[TuiJob] = JobBoard()
        # The factory already carries the hardware settings (threads, gpuLayers).
        self.models = ModelHolder(lambda spec, **_hardware: backend_factory(spec))
        # pytest and its plugins kept started across runs: each run is a fork (runner.warm).
        self.warm = WarmWorkers()
        self.fix: VerifiedFix | None = None
        # The outcome of the latest refinement, whatever its status.
        self.last_result: FixResult | None = None
        # `f` pressed while the tests ran and no failing test was known yet: refine when they end.
        self.refine_queued = False
        self.has_tests = True
        self.files: tuple[str, ...] = ()
        self.suspects: tuple[Target, ...] = ()
        self.own_writes = OwnWrites()
        # Set when the app leaves: a refinement still using the model releases it when done.
        self.exiting = False

    # ----- jobs ---------------------------------------------------------------------------

    @property
    def run_job(self) -> TuiJob | None:
        return self.board.current("tests")

    @property
    def refine_job(self) -> TuiJob | None:
        return self.board.current("refine")

    @property
    def busy(self) -> bool:
        return bool(self.board.jobs)

    def job_of(self, job_id: int) -> TuiJob | None:
        return next((job for job in self.board.running() if job.id == job_id), None)

    def start_job(self, kind: JobKind, label: str) -> TuiJob:
        job = TuiJob(key=kind, label=label, started=self.clock())
        self.board.start(job)
        return job

    # ----- what is known ------------------------------------------------------------------

    def refresh_files(self) -> None:
        self.files = python_files(self.root)
        self.has_tests = any(is_test_file(rel) for rel in self.files)

    def merge(self, run: TestRunResult, *, full: bool) -> None:
        """Merge a run into what is known; the suspects of every known failure are renewed."""
        if full:
            self.ledger.replace_all(run)
        else:
            self.ledger.record(run)
        self.suspects = self._all_suspects()

    def failing_nodeids(self) -> list[str]:
        return list(self.ledger.failing_nodeids())

    def _all_suspects(self) -> tuple[Target, ...]:
        spectrum = self.ledger.spectrum()
        if spectrum is None or not spectrum.failures:
            return ()
        return self.suspects_of(spectrum)

    def case_suspects(self, case: TestCaseResult) -> tuple[Target, ...]:
        # Every known test stays in the run: the passing ones count for the spectrum.
        spectrum = self.ledger.spectrum()
        return () if spectrum is None else self.suspects_of(spectrum, (case,))

    def suspects_of(
        self, run: TestRunResult, failures: Sequence[TestCaseResult] | None = None
    ) -> tuple[Target, ...]:
        # Suspects only guide the eye: a failure to localize must not take the app down.
        try:
            return suspects(run, failures)
        except Exception:
            logger.error(traceback.format_exc())
            return ()

    def file_status(self) -> tuple[dict[str, FileStatus], dict[str, int]]:
        """Each test file's status (failed, passed) and its number of failing tests."""
        status: dict[str, FileStatus] = {}
        failures: dict[str, int] = {}
        for case in self.ledger.cases.values():
            rel = case.path or nodeid_file(case.nodeid)
            if not case.ok:
                failures[rel] = failures.get(rel, 0) + 1
                status[rel] = "failed"
            else:
                status.setdefault(rel, "passed")
        for path in self.ledger.collection_errors:
            status[path] = "failed"
        return status, failures

    def failing_lines(self, rel: str) -> set[int]:
        """Lines of `rel` where a failing test failed, raised, or could not be collected."""
        failing: set[int] = set()
        for case in self.ledger.failures:
            if (case.path or nodeid_file(case.nodeid)) == rel and case.line:
                failing.add(case.line)
            failing.update(frame.line for frame in case.project_frames if frame.path == rel)
        error = self.ledger.collection_errors.get(rel)
        if error is not None and error.line:
            failing.add(error.line)
        return failing

    def running_files(self, selection: RunSelection) -> list[str]:
        """The test files a run of `selection` runs, shown as running in the tree."""
        files = [rel for rel in self.files if is_test_file(rel)]
        if not selection.full and selection.tests:
            chosen = {self.normalize(nodeid_file(test)) for test in selection.tests}
            files = [rel for rel in files if rel in chosen]
        return files

    # ----- refinement ---------------------------------------------------------------------

    def refine_selection(self, nodeid: str) -> tuple[str, ...]:
        """The failing test chosen, then the other failing ones (as on the command line: a
        fix that passes one weak test and leaves the bug for the rest is no fix), then every
        passing one, so a fix may not break them."""
        cases = self.ledger.cases
        failing = [other for other, case in cases.items() if not case.ok and other != nodeid]
        passing = [other for other, case in cases.items() if case.outcome == "passed"]
        return (nodeid, *failing, *passing)

    def initial_run(self, tests: tuple[str, ...]) -> TestRunResult | None:
        """What is known of `tests` as the refinement's first run, so they do not run twice;
        None while a test run is under way (what is known may be out of date)."""
        return None if self.run_job is not None else self.ledger.run_of(tests)

    def no_tests_message(self) -> str:
        return (
            f"No tests found in {self.root.name}: add pytest tests (test_*.py) "
            "so cyclefix can verify fixes."
        )

    def nothing_to_refine(self) -> tuple[str, bool]:
        """Why `f` cannot refine now, and whether that is a warning."""
        if not self.has_tests:
            return self.no_tests_message(), True
        if self.ledger.collection_errors:
            return "Fix the collection errors first: the tests cannot run.", True
        if self.ledger.cases:
            return "All tests pass: nothing to refine.", False
        return "Run the tests first (r).", True

    # ----- status -------------------------------------------------------------------------

    def state(self, refine_stage: str) -> tuple[str, str]:
        """The status bar's first part and its style."""
        refine_job, run_job = self.refine_job, self.run_job
        if refine_job is not None:
            return f"{refine_job.label}: {refine_stage}…", BUSY_STYLE
        if run_job is not None:
            if self.refine_queued:
                return f"{run_job.label} · refining when the tests finish", BUSY_STYLE
            return run_job.label, BUSY_STYLE
        if self.fix is not None:
            return "✓ verified fix ready: a accept · x reject", GREEN_STYLE
        if not self.has_tests:
            return "no tests found", WARN_STYLE
        failing = len(self.ledger.failures) + len(self.ledger.collection_errors)
        total = len(self.ledger.cases)
        if failing:
            return f"✗ {failing} of {total} tests failing", FAIL_STYLE
        if total:
            return f"✓ all {total} tests pass", GREEN_STYLE
        return "ready: r runs the tests", IDLE_STYLE

    def invite_text(self) -> str:
        """The idle model panel's one line: it invites `f` only when `f` can act."""
        if self.refine_queued:
            return "Refining the first failing test when the tests finish."
        if self.failing_nodeids():
            return "Press f to refine the selected failing test."
        if self.run_job is not None:
            return "Running the tests… f now refines the first failing test once they finish."
        if not self.has_tests:
            return "No tests found: cyclefix refines code against failing tests."
        if self.ledger.collection_errors:
            return "Fix the collection errors first: the tests cannot run."
        if self.ledger.cases:
            return "All tests pass: nothing to refine."
        return "Press r to run the tests."

    # ----- paths --------------------------------------------------------------------------

    def relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def normalize(self, selected: str) -> str:
        """A selection entry (absolute or project-relative) as a project-relative path."""
        path = Path(selected)
        return self.relative(path) if path.is_absolute() else path.as_posix()

    # ----- workers (these run in threads; they only post messages) ------------------------

    def check_work(
        self, job: TuiJob, selection: RunSelection, previously_failing: tuple[str, ...], post: Post
    ) -> None:
        try:
            run = check(
                selection.path,
                selection.tests,
                config=self.settings.config,
                previously_failing=previously_failing,
                on_event=partial(_post_event, post, job.id, forward_finished=False),
                cancel=job.cancel,
                warm=self.warm,
            )
        except CyclefixError as exc:
            post(JobFailed(job.id, str(exc)))
        except Exception as exc:
            logger.error(traceback.format_exc())
            post(JobFailed(job.id, f"internal error: {type(exc).__name__}: {exc}"))
        else:
            post(CheckDone(job.id, run, selection.full))

    def refine_work(
        self,
        job: TuiJob,
        spec: str,
        tests: tuple[str, ...],
        initial: TestRunResult | None,
        post: Post,
    ) -> None:
        try:
            with self.models.hold(job.cancel) as held:
                if not held:
                    post(FixDone(job.id, _cancelled(self.root, spec, initial)))
                    return
                loading = not self.models.is_loaded(spec)
                if loading:
                    post(ModelLoading(job.id, spec))
                backend = self.models.get(spec)
                if loading:
                    post(ModelReady(job.id, backend.name))
                result = fix(
                    self.root,
                    backend,
                    tests=tests,
                    config=self.settings.config,
                    initial_run=initial,
                    on_event=partial(_post_event, post, job.id, forward_finished=True),
                    cancel=job.cancel,
                    warm=self.warm,
                )
        except ModelError as exc:
            post(JobFailed(job.id, install_hint(spec, str(exc)), model_error=True))
        except CyclefixError as exc:
            post(JobFailed(job.id, str(exc)))
        except Exception as exc:
            logger.error(traceback.format_exc())
            post(JobFailed(job.id, f"internal error: {type(exc).__name__}: {exc}"))
        else:
            post(FixDone(job.id, result))
        finally:
            # The app left while this refinement was using the model: release it here.
            if self.exiting:
                self.models.close_when_free(timeout=10)


def _cancelled(root: Path, spec: str, initial: TestRunResult | None) -> FixResult:
    """The result of a refinement cancelled while it waited for the model."""
    return FixResult("cancelled", root, (), "", (), initial, None, 0.0, spec)


def _post_event(post: Post, job: int, event: RefineEvent, *, forward_finished: bool) -> None:
    """Forward a refine event; a test run's own TestsFinished is not (CheckDone carries it)."""
    message = news_for_event(job, event)
    if message is not None and (forward_finished or not isinstance(event, TestsFinished)):
        post(message)


__all__ = ["BackendFactory", "Clock", "TuiJob", "TuiSession"]
