"""The app's panels and what they show: the layout, the results, the source, the status line.

CyclefixApp (app.py) builds on this class with the keys' actions and the workers' messages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.widgets import DataTable, Footer, TabbedContent, TabPane, Tree

from cyclefix.refine import (
    AttemptFinished,
    FixResult,
    RoundStarted,
    Target,
    TestCaseResult,
    TestsFinished,
    TestsStarted,
    TextGenerated,
    open_backend,
)
from cyclefix.tui.formatting import VERDICT_TEXTS, nodeid_file, nodeid_test
from cyclefix.tui.messages import JobMessage, RefineNews
from cyclefix.tui.session import BackendFactory, Clock, TuiJob, TuiSession
from cyclefix.tui.settings import TuiSettings
from cyclefix.tui.widgets.fix_view import FixView
from cyclefix.tui.widgets.model_output import ModelOutput
from cyclefix.tui.widgets.project_tree import FileStatus, ProjectTree
from cyclefix.tui.widgets.results_table import COLLECTION_KEY_PREFIX, ResultsTable
from cyclefix.tui.widgets.source_view import SourceView
from cyclefix.tui.widgets.status_bar import StatusBar, StatusInfo


class Panels(App[None]):
    """Panels: project tree | source + test results | model output / verified fix."""

    def __init__(
        self,
        settings: TuiSettings,
        *,
        backend_factory: BackendFactory = open_backend,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__()
        self.session = TuiSession(settings, backend_factory, clock)
        self.root = self.session.root
        self._clock = clock
        self._refine_stage = ""
        # The idle invite the model panel shows ("": none yet), None once it shows anything else.
        self._invite: str | None = None
        self._round: tuple[int, int] | None = None
        self._stream_started: float | None = None
        self._stream_pieces = 0
        self._tokens_per_second: float | None = None
        self._notice: Text | None = None
        # The id of the newest job when the notice was set: it lasts until a later job ends.
        self._notice_job = 0
        self._newest_job = 0
        self._watch_stop = threading.Event()
        self._pinned_source: str | None = None
        # Test files of the run in progress, shown as running in the tree.
        self._running_files: dict[str, FileStatus] = {}

    # ----- state, as tests and the status bar read it -------------------------------------

    @property
    def settings(self) -> TuiSettings:
        return self.session.settings

    @settings.setter
    def settings(self, settings: TuiSettings) -> None:
        self.session.settings = settings

    @property
    def model_spec(self) -> str:
        return self.session.model_spec

    @property
    def pending_fix(self) -> FixResult | None:
        return self.session.fix.result if self.session.fix is not None else None

    @property
    def last_result(self) -> FixResult | None:
        return self.session.last_result

    @property
    def finished_jobs(self) -> list[TuiJob]:
        """Completed jobs, for tests and for the status of cancelled work."""
        return self.session.board.finished

    @property
    def test_results(self) -> tuple[TestCaseResult, ...]:
        """The latest result of every test, in the order they were first seen."""
        return tuple(self.session.ledger.cases.values())

    @property
    def busy(self) -> bool:
        return self.session.busy

    # ----- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield ProjectTree(self.root.name, id="tree")
            with Vertical(id="main"):
                with Horizontal(id="panes"):
                    yield SourceView(id="source")
                    with TabbedContent(id="right", initial="model-tab"):
                        with TabPane("Model", id="model-tab"):
                            yield ModelOutput(id="model-output")
                        with TabPane("Fix", id="fix-tab"):
                            yield FixView(self.root, id="fix")
                yield ResultsTable(show_timings=self.settings.show_timings, id="results")
        yield StatusBar(id="status")
        yield Footer(compact=True)

    @property
    def project_tree(self) -> ProjectTree:
        return self.query_one("#tree", ProjectTree)

    @property
    def source(self) -> SourceView:
        return self.query_one("#source", SourceView)

    @property
    def results(self) -> ResultsTable:
        return self.query_one("#results", ResultsTable)

    @property
    def model_output(self) -> ModelOutput:
        return self.query_one("#model-output", ModelOutput)

    @property
    def fix_view(self) -> FixView:
        return self.query_one("#fix", FixView)

    def _job_of(self, message: JobMessage) -> TuiJob | None:
        """The job `message` is news of; None once the app is shutting down (its panels go
        while the workers' last messages are still being handled)."""
        if not self.is_running:
            return None
        return self.session.job_of(message.job)

    # ----- messages from the workers ------------------------------------------------------

    @on(RefineNews)
    def _refine_news(self, message: RefineNews) -> None:
        job = self._job_of(message)
        if job is None:
            return
        event = message.event
        if isinstance(event, TestsStarted):
            if job.kind == "refine":
                self._refine_stage = "verifying candidate" if event.scratch else "running tests"
                self._refresh_status()
        elif isinstance(event, TestsFinished):
            if not event.scratch and not event.run.cancelled:
                self.session.merge(event.run, full=False)
                self._show_results()
        elif isinstance(event, RoundStarted):
            self._round_began(event)
        elif isinstance(event, TextGenerated):
            self._text_streamed(event.text)
        elif isinstance(event, AttemptFinished):
            self._attempt_done(event)

    def _round_began(self, event: RoundStarted) -> None:
        self._round = (event.index, event.total)
        self._refine_stage = "generating"
        self._stream_started = None
        self._stream_pieces = 0
        targets = ", ".join(event.targets) or "?"
        self.model_output.note("")
        self.model_output.note(
            f"── round {event.index}/{event.total} · temperature {event.temperature:.1f}"
            f" · fixing {targets} ──"
        )
        self._refresh_status()

    def _text_streamed(self, text: str) -> None:
        now = self._clock()
        if self._stream_started is None:
            self._stream_started = now
        self._stream_pieces += 1
        elapsed = now - self._stream_started
        if elapsed > 0.5:
            self._tokens_per_second = self._stream_pieces / elapsed
        self._refine_stage = "generating"
        self.model_output.stream(text)

    def _attempt_done(self, event: AttemptFinished) -> None:
        attempt = event.attempt
        self.fix_view.attempts.add_attempt(attempt)
        self._stream_started = None
        self._stream_pieces = 0
        tests = (
            f" ({attempt.tests_passed}/{attempt.tests_total} tests pass)"
            if attempt.tests_total
            else ""
        )
        self.model_output.note(f"→ {VERDICT_TEXTS.get(attempt.verdict, attempt.verdict)}{tests}")
        self._refresh_status()

    # ----- results, tree and source -------------------------------------------------------

    def _show_results(self) -> None:
        session = self.session
        cases = list(session.ledger.cases.values())
        errors = list(session.ledger.collection_errors.values())
        self.results.show_results(
            cases, errors, "" if session.has_tests else session.no_tests_message()
        )
        status, failures = session.file_status()
        if session.run_job is not None:
            status.update(self._running_files)
        self.project_tree.set_status(status, failures, {t.path for t in session.suspects})
        if self._pinned_source is not None:
            self._show_source(self._pinned_source, str(self.source.border_subtitle or ""))
        else:
            self._show_selected_case()
        self._changed()

    @on(DataTable.RowHighlighted, "#results")
    def _result_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.results.has_focus:
            self._pinned_source = None
        if self._pinned_source is None:
            self._show_selected_case()

    @on(Tree.NodeSelected, "#tree")
    def _file_selected(self, event: Tree.NodeSelected[str]) -> None:
        rel = event.node.data
        if rel:
            # A file picked in the tree stays shown until a test is picked again.
            self._pinned_source = rel
            self._show_source(rel)

    def _show_selected_case(self) -> None:
        key = self.results.selected_nodeid
        if key is None:
            return
        if key.startswith(COLLECTION_KEY_PREFIX):
            rel = key[len(COLLECTION_KEY_PREFIX) :]
            self._show_source(rel, subtitle="cannot be collected")
            return
        case = self.session.ledger.cases.get(key)
        if case is None:
            return
        if case.ok:
            self._show_source(case.path or nodeid_file(case.nodeid), subtitle="passing")
            return
        targets = self.session.case_suspects(case)
        if targets:
            rel = targets[0].path
            subtitle = "suspect: " + ", ".join(t.qualname for t in targets if t.path == rel)
            self._show_source(rel, subtitle=subtitle, targets=targets)
            return
        if case.project_frames:
            rel = case.project_frames[-1].path
            subtitle = f"raised in {case.project_frames[-1].function}"
        else:
            rel = case.path or nodeid_file(case.nodeid)
            subtitle = f"{nodeid_test(case.nodeid)} failed here"
        self._show_source(rel, subtitle=subtitle)

    def _show_source(
        self, rel: str, subtitle: str = "", targets: Sequence[Target] | None = None
    ) -> None:
        """Show `rel` with failing lines and `targets` (default: every suspect) marked."""
        if not rel:
            return
        suspect_lines = {
            line
            for target in (self.session.suspects if targets is None else targets)
            if target.path == rel
            for line in range(target.start_line, target.end_line + 1)
        }
        failing = self.session.failing_lines(rel)
        self.source.show(self.root / rel, rel, failing, suspect_lines, subtitle)
        self.project_tree.select_path(rel)

    def _refresh_tree_files(self) -> None:
        self.session.refresh_files()
        self.project_tree.set_files(self.session.files)

    # ----- status -------------------------------------------------------------------------

    def _changed(self) -> None:
        self.refresh_bindings()
        self._refresh_status()
        self._refresh_invite()

    def _refresh_invite(self) -> None:
        """Keep the idle model panel's one line true: it invites `f` only when `f` can act."""
        if self._invite is None:
            return
        invite = self.session.invite_text()
        if invite != self._invite:
            self._invite = invite
            self.model_output.reset()
            self.model_output.note(invite)

    def _refresh_status(self) -> None:
        for bar in self.query("#status").results(StatusBar):
            bar.show(self.status_info())

    def status_info(self) -> StatusInfo:
        timings = self.settings.show_timings
        state, style = self.session.state(self._refine_stage)
        round_index = round_total = None
        rate = elapsed = None
        refine_job = self.session.refine_job
        job = refine_job or self.session.run_job
        if refine_job is not None and self._round is not None:
            round_index, round_total = self._round
        if timings and refine_job is not None and self._tokens_per_second is not None:
            rate = self._tokens_per_second
        if timings and job is not None:
            elapsed = self._clock() - job.started
        return StatusInfo(
            state, style, self.model_spec, round_index, round_total, rate, elapsed, self._notice
        )

    def _set_notice(self, text: str, style: str) -> None:
        self._notice = Text(text, style=style) if text else None
        self._notice_job = self._newest_job
        self._changed()

    # ----- helpers ------------------------------------------------------------------------

    def _toast(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
    ) -> None:
        # Messages quote code and paths: never read them as markup.
        self.notify(message, title=title, severity=severity, timeout=timeout, markup=False)
