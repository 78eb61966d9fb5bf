"""The cyclefix Textual app: watch, test, refine in workers, review and accept verified fixes."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import ClassVar, Literal

from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import DataTable, Footer, TabbedContent, TabPane, Tree

from cyclefix.errors import CyclefixError
from cyclefix.refine import (
    Backend,
    CollectionError,
    FixResult,
    ModelError,
    RefineEvent,
    StaleFixError,
    Target,
    TestCaseResult,
    TestRunResult,
    apply_and_keep,
    check,
    fix,
    open_backend,
    suspects,
)
from cyclefix.trust import TrustRequest, TrustStore
from cyclefix.tui.formatting import (
    VERDICT_TEXTS,
    model_error_text,
    nodeid_file,
    nodeid_test,
)
from cyclefix.tui.help_screen import HelpScreen
from cyclefix.tui.messages import (
    AttemptDone,
    CheckDone,
    FilesChanged,
    FixDone,
    JobFailed,
    JobMessage,
    ModelLoading,
    ModelReady,
    RoundBegan,
    TestsRan,
    TestsRunning,
    TextStreamed,
    message_for_event,
)
from cyclefix.tui.model_chooser import ModelChooser
from cyclefix.tui.project import (
    OwnWrites,
    RunSelection,
    is_test_file,
    python_files,
    selection_for_changes,
)
from cyclefix.tui.settings import TuiSettings
from cyclefix.tui.trust_dialog import TrustDialog
from cyclefix.tui.watch import watch_project
from cyclefix.tui.widgets.fix_view import FixView
from cyclefix.tui.widgets.model_output import ModelOutput
from cyclefix.tui.widgets.project_tree import FileStatus, ProjectTree
from cyclefix.tui.widgets.results_table import COLLECTION_KEY_PREFIX, ResultsTable
from cyclefix.tui.widgets.source_view import SourceView
from cyclefix.tui.widgets.status_bar import StatusBar, StatusInfo

BackendFactory = Callable[[str], Backend]
Clock = Callable[[], float]

BUSY_STYLE = "bold black on yellow"
FAIL_STYLE = "bold white on red"
GREEN_STYLE = "bold black on green"
WARN_STYLE = "bold black on dark_orange"
IDLE_STYLE = "bold"


@dataclass
class Job:
    """A test run or a refinement running in a worker thread."""

    id: int
    kind: Literal["tests", "refine"]
    cancel: threading.Event
    started: float
    label: str
    full: bool = True


class CyclefixApp(App[None]):
    """Panels: project tree | source + test results | model output / verified fix."""

    TITLE = "cyclefix"
    CSS = """
    #body { height: 1fr; }
    #main { width: 1fr; }
    #panes { height: 1fr; }
    #source { width: 1fr; }
    #right { width: 1fr; }
    #right TabPane { padding: 0; }
    Screen.-narrow #tree { display: none; }
    Screen.-short #results { height: 8; }
    Screen.-short #attempts { height: 6; }
    """
    # Narrow terminals drop the project tree; short ones shrink the tables.
    # (No ClassVar here: Textual declares these as plain attributes.)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # noqa: RUF012
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]  # noqa: RUF012
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run_tests", "Run"),
        Binding("f", "refine", "Refine"),
        Binding("a", "accept", "Accept"),
        Binding("x", "reject", "Reject"),
        Binding("c", "cancel", "Cancel"),
        Binding("d", "toggle_diff", "Diff"),
        Binding("z", "zoom", "Zoom", show=False),
        Binding("m", "choose_model", "Model"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        # Tried when the key's own binding is disabled (dimmed): the action then says why.
        *(
            Binding(key, f"say_why('{action}')", show=False)
            for key, action in (("f", "refine"), ("a", "accept"), ("x", "reject"), ("c", "cancel"))
        ),
    ]

    def __init__(
        self,
        settings: TuiSettings,
        *,
        backend_factory: BackendFactory = open_backend,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.root = settings.root.resolve()
        self.model_spec = settings.model
        self._backend_factory = backend_factory
        self._clock = clock
        self._backend: Backend | None = None
        self._backend_spec: str | None = None
        self._backend_lock = threading.Lock()
        self._next_job = 0
        self._run_job: Job | None = None
        self._refine_job: Job | None = None
        self._refine_stage = ""
        # `f` pressed while the tests ran and no failing test was known yet: refine when they end.
        self._refine_queued = False
        # The idle invite the model panel shows ("": none yet), None once it shows anything else.
        self._invite: str | None = None
        self._round: tuple[int, int] | None = None
        self._stream_started: float | None = None
        self._stream_pieces = 0
        self._tokens_per_second: float | None = None
        self._fix: FixResult | None = None
        # The outcome of the latest refinement, whatever its status.
        self.last_result: FixResult | None = None
        self._notice: Text | None = None
        self._notice_job = 0
        self._cases: dict[str, TestCaseResult] = {}
        self._collection_errors: dict[str, CollectionError] = {}
        self._last_run: TestRunResult | None = None
        self._suspects: tuple[Target, ...] = ()
        self._has_tests = True
        self._own_writes = OwnWrites()
        self._watch_stop = threading.Event()
        self._exiting = False
        self._pinned_source: str | None = None
        # Test files of the run in progress, shown as running in the tree.
        self._running_files: dict[str, FileStatus] = {}
        # Completed jobs, for tests and for the status of cancelled work.
        self.finished_jobs: list[Job] = []

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

    @property
    def pending_fix(self) -> FixResult | None:
        return self._fix

    @property
    def test_results(self) -> tuple[TestCaseResult, ...]:
        """The latest result of every test, in the order they were first seen."""
        return tuple(self._cases.values())

    @property
    def busy(self) -> bool:
        return self._run_job is not None or self._refine_job is not None

    def on_mount(self) -> None:
        self._invite = ""
        self._refresh_tree_files()
        self._has_tests = any(is_test_file(rel) for rel in self.project_tree.files)
        self._show_results()
        self.results.focus()
        if self.settings.show_timings:
            self.set_interval(0.5, self._refresh_status)
        if self.settings.watch:
            self.run_worker(
                partial(watch_project, self.root, self._post_changes, self._watch_stop),
                name="watch",
                group="watch",
                thread=True,
                exit_on_error=False,
            )
        if self.settings.run_on_start and self._has_tests:
            self.action_run_tests()
        self._refresh_status()
        for request in self.settings.untrusted:
            self.push_screen(TrustDialog(request), partial(self._trust_answered, request))

    def _trust_answered(self, request: TrustRequest, trusted: bool | None) -> None:
        """Use the project's model or python from now on if trusted (and remember it)."""
        what = f"{request.setting} = {request.value}"
        if not trusted:
            self._set_notice(f"not trusted: the project's {what}; using the default", "yellow")
            return
        try:
            TrustStore().trust(request.root, request.setting, request.value)
        except OSError as exc:
            self._toast(f"cannot remember the trust: {exc}", severity="warning")
        if request.setting == "model":
            self.model_spec = request.value
        else:
            config = replace(self.settings.config, python=request.value)
            self.settings = replace(self.settings, config=config)
        self._set_notice(f"trusted: {what}; used from the next run", "green")

    def on_resize(self, event: events.Resize) -> None:
        # On narrow terminals every key matters more than the palette hint (ctrl+p still works).
        for footer in self.query(Footer):
            footer.show_command_palette = event.size.width >= 90

    def on_unmount(self) -> None:
        # Thread workers cannot be killed: tell every one to stop so the app can exit.
        self._exiting = True
        self._watch_stop.set()
        for job in (self._run_job, self._refine_job):
            if job is not None:
                job.cancel.set()
        if self._refine_job is None:
            self._close_backend()

    def _close_backend(self) -> None:
        with self._backend_lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None

    # ----- actions ------------------------------------------------------------------------

    def action_run_tests(self) -> None:
        tests = self.settings.tests
        self._start_tests(RunSelection(self.root, tests, full=True), "running tests…")

    def action_refine(self) -> None:
        if self._refine_job is not None:
            self._toast("A refinement is already running (c cancels it).", severity="warning")
            return
        if self._run_job is not None and not self._failing_nodeids():
            self._refine_queued = True
            self._toast("Refining when the tests finish, if one fails.")
            self._changed()
            return
        nodeid = self._refine_target()
        if nodeid is None:
            return
        self._refine_queued = False
        self._invite = None
        self._fix = None
        job = self._new_job("refine", f"refining {nodeid_test(nodeid)}")
        self._refine_job = job
        self._refine_stage = "starting"
        self._round = None
        self._tokens_per_second = None
        self._notice = None
        model_log = self.model_output
        model_log.reset()
        model_log.note(f"Refining {nodeid_test(nodeid)} ({nodeid_file(nodeid)})")
        self.fix_view.show_fix(None, Text("Refining… the verified fix will appear here.", "dim"))
        self.fix_view.attempts.clear()
        self.query_one("#right", TabbedContent).active = "model-tab"
        self.run_worker(
            partial(self._refine_work, job, self.model_spec, self._refine_selection(nodeid)),
            name=f"refine-{job.id}",
            group="refine",
            thread=True,
            exit_on_error=False,
        )
        self._changed()

    def action_accept(self) -> None:
        result = self._fix
        if result is None:
            self._toast("No verified fix to accept.", severity="warning")
            return
        try:
            # gitOnApply: commit or stage the fix too (refused before writing when unclean).
            kept = apply_and_keep(result, self.settings.git_on_apply)
            written = kept.written
        except StaleFixError as exc:
            self._set_notice(f"not accepted: {exc}", "bold red")
            self._toast(str(exc), title="Fix refused", severity="error", timeout=8)
            self.fix_view.show_fix(result, Text(f"Not applied: {exc}", style="bold red"))
            return
        except CyclefixError as exc:
            self._set_notice(f"not accepted: {exc}", "bold red")
            self._toast(str(exc), title="Fix refused", severity="error", timeout=8)
            return
        self._own_writes.record(written)
        self._fix = None
        names = ", ".join(self._relative(path) for path in written)
        self._set_notice(
            f"accepted: wrote {names}" + (f"; {kept.git}" if kept.git else ""), "green"
        )
        self.fix_view.show_fix(None, Text(f"Accepted: wrote {names}.", style="green"))
        self._toast(f"Wrote {names}; re-running the tests.", title="Fix accepted")
        self.source.reload()
        self.action_run_tests()

    def action_reject(self) -> None:
        if self._fix is None:
            self._toast("No fix to reject.", severity="warning")
            return
        self._fix = None
        self._set_notice("fix rejected; files unchanged", "yellow")
        self.fix_view.show_fix(None, Text("Fix rejected; your files are unchanged.", "yellow"))
        self._changed()

    def action_cancel(self) -> None:
        jobs = [job for job in (self._run_job, self._refine_job) if job is not None]
        if not jobs:
            self._toast("Nothing is running.", severity="information")
            return
        self._refine_queued = False
        for job in jobs:
            job.cancel.set()
        if self._refine_job is not None:
            self._refine_stage = "cancelling"
        self._set_notice("cancelling…", "yellow")

    def action_say_why(self, action: str) -> None:
        """A key whose action cannot act now: the action says why, or queues itself."""
        actions: dict[str, Callable[[], None]] = {
            "refine": self.action_refine,
            "accept": self.action_accept,
            "reject": self.action_reject,
            "cancel": self.action_cancel,
        }
        actions[action]()

    def action_toggle_diff(self) -> None:
        mode = self.fix_view.toggle_mode()
        self.query_one("#right", TabbedContent).active = "fix-tab"
        self._toast(f"Diff: {mode}", timeout=2)

    def action_zoom(self) -> None:
        """Give the model output / fix panel the whole screen, or restore the layout."""
        if self.screen.maximized is not None:
            self.screen.minimize()
        else:
            self.screen.maximize(self.query_one("#right", TabbedContent), container=False)

    def action_choose_model(self) -> None:
        self.push_screen(
            ModelChooser(self.settings.model_names, self.model_spec), self._model_chosen
        )

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def _model_chosen(self, spec: str | None) -> None:
        if spec is None or spec == self.model_spec:
            return
        self.model_spec = spec
        self._set_notice(f"model set to {spec}; it loads on the next refinement", "")
        self._toast(f"Model: {spec}", timeout=3)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # None: shown dimmed in the footer, so the keys stay put while the state changes.
        if action in ("accept", "reject"):
            return True if self._fix is not None else None
        if action == "cancel":
            return True if self.busy else None
        if action == "refine":
            failing = bool(self._failing_nodeids())
            return True if failing and self._refine_job is None else None
        return True

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield SystemCommand("Run tests", "Run the project's tests (r)", self.action_run_tests)
        yield SystemCommand(
            "Refine failure",
            "Ask the model to fix the selected failing test (f)",
            self.action_refine,
        )
        yield SystemCommand("Accept fix", "Write the verified fix to disk (a)", self.action_accept)
        yield SystemCommand("Reject fix", "Discard the verified fix (x)", self.action_reject)
        yield SystemCommand(
            "Cancel", "Stop the test run or refinement in progress (c)", self.action_cancel
        )
        yield SystemCommand(
            "Toggle diff view", "Unified or side-by-side diff (d)", self.action_toggle_diff
        )
        yield SystemCommand(
            "Choose model", "Pick the model for refinement (m)", self.action_choose_model
        )
        yield SystemCommand(
            "Zoom panel", "Model output and fix panel full screen, or back (z)", self.action_zoom
        )
        yield SystemCommand("Help", "Keys and panels (?)", self.action_help)
        yield from super().get_system_commands(screen)

    # ----- workers (these run in threads; they only post messages) ------------------------

    def _start_tests(self, selection: RunSelection, label: str) -> None:
        if not self._has_tests:
            self._set_notice(self._no_tests_message(), WARN_STYLE)
            return
        if self._run_job is not None:
            self._run_job.cancel.set()
        job = self._new_job("tests", label)
        job.full = selection.full
        self._run_job = job
        previously_failing = tuple(nodeid for nodeid, c in self._cases.items() if not c.ok)
        self._mark_running(selection)
        self.run_worker(
            partial(self._check_work, job, selection, previously_failing),
            name=f"tests-{job.id}",
            group="tests",
            thread=True,
            exit_on_error=False,
        )
        self._changed()

    def _check_work(
        self, job: Job, selection: RunSelection, previously_failing: tuple[str, ...]
    ) -> None:
        try:
            run = check(
                selection.path,
                selection.tests,
                config=self.settings.config,
                previously_failing=previously_failing,
                on_event=partial(self._post_event, job.id, forward_finished=False),
                cancel=job.cancel,
            )
        except CyclefixError as exc:
            self.post_message(JobFailed(job.id, str(exc)))
        except Exception as exc:
            self.log.error(traceback.format_exc())
            self.post_message(JobFailed(job.id, f"internal error: {type(exc).__name__}: {exc}"))
        else:
            self.post_message(CheckDone(job.id, run, selection.full))

    def _refine_work(self, job: Job, spec: str, tests: tuple[str, ...]) -> None:
        try:
            backend = self._load_backend(job, spec)
            result = fix(
                self.root,
                backend,
                tests=tests,
                config=self.settings.config,
                on_event=partial(self._post_event, job.id, forward_finished=True),
                cancel=job.cancel,
            )
        except ModelError as exc:
            self.post_message(JobFailed(job.id, model_error_text(spec, str(exc)), model_error=True))
        except CyclefixError as exc:
            self.post_message(JobFailed(job.id, str(exc)))
        except Exception as exc:
            self.log.error(traceback.format_exc())
            self.post_message(JobFailed(job.id, f"internal error: {type(exc).__name__}: {exc}"))
        else:
            self.post_message(FixDone(job.id, result))
        finally:
            # The app left while this refinement was using the model: release it here.
            if self._exiting:
                self._close_backend()

    def _load_backend(self, job: Job, spec: str) -> Backend:
        with self._backend_lock:
            if self._backend is not None and self._backend_spec == spec:
                return self._backend
            if self._backend is not None:
                self._backend.close()
                self._backend = None
            self.post_message(ModelLoading(job.id, spec))
            backend = self._backend_factory(spec)
            self._backend, self._backend_spec = backend, spec
            self.post_message(ModelReady(job.id, backend.name))
            return backend

    def _post_event(self, job: int, event: RefineEvent, *, forward_finished: bool) -> None:
        message = message_for_event(job, event)
        if message is None or (isinstance(message, TestsRan) and not forward_finished):
            return
        self.post_message(message)

    def _post_changes(self, paths: tuple[Path, ...]) -> None:
        self.post_message(FilesChanged(paths))

    # ----- messages from the workers ------------------------------------------------------

    def _job_of(self, message: JobMessage) -> Job | None:
        for job in (self._run_job, self._refine_job):
            if job is not None and job.id == message.job:
                return job
        return None

    @on(TestsRunning)
    def _tests_running(self, message: TestsRunning) -> None:
        job = self._job_of(message)
        if job is None or job.kind != "refine":
            return
        self._refine_stage = "verifying candidate" if message.scratch else "running tests"
        self._refresh_status()

    @on(TestsRan)
    def _tests_ran(self, message: TestsRan) -> None:
        job = self._job_of(message)
        if job is None or message.scratch or message.run.cancelled:
            return
        self._merge_run(message.run, full=False)

    @on(CheckDone)
    def _check_done(self, message: CheckDone) -> None:
        job = self._job_of(message)
        if job is None or job is not self._run_job:
            return
        self._finish(job)
        run = message.run
        if run.cancelled:
            self._set_notice("test run cancelled", "yellow")
        else:
            self._merge_run(run, full=message.full)
            if not run.tests and not run.collection_errors:
                self._set_notice(self._no_tests_message(), WARN_STYLE)
            elif run.timed_out:
                self._set_notice("the test run hit its time limit and was stopped", "bold red")
        self._show_results()
        if self._refine_queued:
            self._refine_queued = False
            if not run.cancelled:
                self.action_refine()
            self._changed()

    @on(ModelLoading)
    def _model_loading(self, message: ModelLoading) -> None:
        if self._job_of(message) is None:
            return
        self._refine_stage = "loading model"
        self.model_output.note(f"Loading model {message.spec}…")
        self._refresh_status()

    @on(ModelReady)
    def _model_ready(self, message: ModelReady) -> None:
        if self._job_of(message) is None:
            return
        self._refine_stage = "model loaded"
        self.model_output.note(f"Model ready: {message.name}")
        self._refresh_status()

    @on(RoundBegan)
    def _round_began(self, message: RoundBegan) -> None:
        if self._job_of(message) is None:
            return
        self._round = (message.index, message.total)
        self._refine_stage = "generating"
        self._stream_started = None
        self._stream_pieces = 0
        targets = ", ".join(message.targets) or "?"
        self.model_output.note("")
        self.model_output.note(
            f"── round {message.index}/{message.total} · temperature {message.temperature:.1f}"
            f" · fixing {targets} ──"
        )
        self._refresh_status()

    @on(TextStreamed)
    def _text_streamed(self, message: TextStreamed) -> None:
        if self._job_of(message) is None:
            return
        now = self._clock()
        if self._stream_started is None:
            self._stream_started = now
        self._stream_pieces += 1
        elapsed = now - self._stream_started
        if elapsed > 0.5:
            self._tokens_per_second = self._stream_pieces / elapsed
        self._refine_stage = "generating"
        self.model_output.stream(message.text)

    @on(AttemptDone)
    def _attempt_done(self, message: AttemptDone) -> None:
        if self._job_of(message) is None:
            return
        attempt = message.attempt
        self.fix_view.attempts.add_attempt(attempt)
        self._stream_started = None
        self._stream_pieces = 0
        tests = (
            f" ({attempt.tests_passed}/{attempt.tests_total} tests pass)"
            if attempt.tests_total
            else ""
        )
        model_log = self.model_output
        model_log.note(f"→ {VERDICT_TEXTS.get(attempt.verdict, attempt.verdict)}{tests}")
        self._refresh_status()

    @on(FixDone)
    def _fix_done(self, message: FixDone) -> None:
        job = self._job_of(message)
        if job is None or job is not self._refine_job:
            return
        self._finish(job)
        result = message.result
        self.last_result = result
        tabs = self.query_one("#right", TabbedContent)
        self.fix_view.attempts.show_attempts(result.attempts)
        if result.status == "fixed":
            self._fix = result
            self.fix_view.show_fix(result)
            tabs.active = "fix-tab"
            self._set_notice("", "")
            self.model_output.note("✓ verified fix ready: a accepts, x rejects")
        elif result.status == "not_fixed":
            rounds = len(result.rounds)
            text = f"no verified fix after {rounds} round{'s' if rounds != 1 else ''}"
            self._set_notice(text, "bold red")
            self.fix_view.show_fix(
                None, Text(text.capitalize() + "; the attempts are below.", "red")
            )
            tabs.active = "fix-tab"
        elif result.status == "already_passing":
            self._set_notice("the selected test already passes; running the tests", "green")
            self.fix_view.show_fix(None, Text("Nothing to fix: the test passes now.", "green"))
            self.action_run_tests()
        elif result.status == "cancelled":
            self._set_notice("refinement cancelled", "yellow")
            self.model_output.note("✗ cancelled")
            self.fix_view.show_fix(None, Text("Refinement cancelled.", "yellow"))
        else:
            error = result.error or "refinement failed"
            self._set_notice(error, "bold red")
            self.model_output.note(f"✗ {error}")
            self.fix_view.show_fix(None, Text(error, "red"))
        for note in result.notes:
            self.model_output.note(f"note: {note}")
        self._changed()

    @on(JobFailed)
    def _job_failed(self, message: JobFailed) -> None:
        job = self._job_of(message)
        if job is None:
            return
        self._finish(job)
        if job.kind == "tests":
            self._refine_queued = False
        self._set_notice(message.message, "bold red")
        if job.kind == "refine":
            self.model_output.note(f"✗ {message.message}")
            self.fix_view.show_fix(None, Text(message.message, "red"))
        title = "Model not available" if message.model_error else "Error"
        self._toast(message.message, title=title, severity="error", timeout=10)
        self._changed()

    @on(FilesChanged)
    def _files_changed(self, message: FilesChanged) -> None:
        changed = [path for path in message.paths if not self._own_writes.is_own(path)]
        if not changed:
            return
        if any(not path.exists() for path in changed) or any(
            self._relative(path) not in self.project_tree.files for path in changed
        ):
            self._refresh_tree_files()
        if self.source.path is not None and self.source.path in changed:
            self._show_source(self.source.rel or "")
        if self._fix is not None and any(change.path in changed for change in self._fix.changes):
            self._set_notice(
                "a file in the fix changed on disk; accepting will be refused", WARN_STYLE
            )
        names = ", ".join(self._relative(path) for path in changed[:3])
        selection = selection_for_changes(self.root, changed, self.settings.tests)
        if selection is not None:
            self._start_tests(selection, f"{names} changed: running tests…")

    # ----- results, tree and source -------------------------------------------------------

    def _merge_run(self, run: TestRunResult, *, full: bool) -> None:
        if full:
            self._cases = {case.nodeid: case for case in run.tests}
            self._collection_errors = {error.path: error for error in run.collection_errors}
        else:
            whole_files = {self._normalize(s) for s in run.selected if "::" not in s}
            whole_files |= {error.path for error in run.collection_errors}
            for nodeid in list(self._cases):
                if nodeid_file(nodeid) in whole_files:
                    del self._cases[nodeid]
            for path in list(self._collection_errors):
                if path in whole_files:
                    del self._collection_errors[path]
            self._cases.update((case.nodeid, case) for case in run.tests)
            self._collection_errors.update((e.path, e) for e in run.collection_errors)
        self._last_run = run
        self._suspects = self._find_suspects(tuple(self._cases.values()))
        self._show_results()

    def _find_suspects(self, cases: tuple[TestCaseResult, ...]) -> tuple[Target, ...]:
        if self._last_run is None or all(case.ok for case in cases):
            return ()
        return self._suspects_of(replace(self._last_run, tests=cases, collection_errors=()))

    def _suspects_of(
        self, run: TestRunResult, failures: Sequence[TestCaseResult] | None = None
    ) -> tuple[Target, ...]:
        # Suspects only guide the eye: a failure to localize must not take the app down.
        try:
            return suspects(run, failures)
        except Exception:
            self.log.error(traceback.format_exc())
            return ()

    def _show_results(self) -> None:
        cases = list(self._cases.values())
        errors = list(self._collection_errors.values())
        self.results.show_results(
            cases, errors, "" if self._has_tests else self._no_tests_message()
        )
        status: dict[str, FileStatus] = {}
        failures: dict[str, int] = {}
        for case in cases:
            rel = case.path or nodeid_file(case.nodeid)
            if not case.ok:
                failures[rel] = failures.get(rel, 0) + 1
                status[rel] = "failed"
            else:
                status.setdefault(rel, "passed")
        for error in errors:
            status[error.path] = "failed"
        if self._run_job is not None:
            status.update(self._running_files)
        self.project_tree.set_status(status, failures, {target.path for target in self._suspects})
        if self._pinned_source is not None:
            self._show_source(self._pinned_source, str(self.source.border_subtitle or ""))
        else:
            self._show_selected_case()
        self._changed()

    def _mark_running(self, selection: RunSelection) -> None:
        files = [rel for rel in self.project_tree.files if is_test_file(rel)]
        if not selection.full and selection.tests:
            chosen = {self._normalize(nodeid_file(test)) for test in selection.tests}
            files = [rel for rel in files if rel in chosen]
        self._running_files = dict.fromkeys(files, "running")
        self._show_results()

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
        case = self._cases.get(key)
        if case is None:
            return
        if case.ok:
            self._show_source(case.path or nodeid_file(case.nodeid), subtitle="passing")
            return
        targets = self._case_suspects(case)
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

    def _case_suspects(self, case: TestCaseResult) -> tuple[Target, ...]:
        if self._last_run is None:
            return ()
        # Every known test stays in the run: the passing ones count for the spectrum.
        run = replace(self._last_run, tests=tuple(self._cases.values()), collection_errors=())
        return self._suspects_of(run, (case,))

    def _show_source(
        self, rel: str, subtitle: str = "", targets: Sequence[Target] | None = None
    ) -> None:
        """Show `rel` with failing lines and `targets` (default: every suspect) marked."""
        if not rel:
            return
        failing: set[int] = set()
        for case in self._cases.values():
            if case.ok:
                continue
            if (case.path or nodeid_file(case.nodeid)) == rel and case.line:
                failing.add(case.line)
            failing.update(frame.line for frame in case.project_frames if frame.path == rel)
        error = self._collection_errors.get(rel)
        if error is not None and error.line:
            failing.add(error.line)
        suspect_lines = {
            line
            for target in (self._suspects if targets is None else targets)
            if target.path == rel
            for line in range(target.start_line, target.end_line + 1)
        }
        self.source.show(self.root / rel, rel, failing, suspect_lines, subtitle)
        self.project_tree.select_path(rel)

    def _refresh_tree_files(self) -> None:
        self.project_tree.set_files(python_files(self.root))
        self._has_tests = any(is_test_file(rel) for rel in self.project_tree.files)

    # ----- status -------------------------------------------------------------------------

    def _changed(self) -> None:
        self.refresh_bindings()
        self._refresh_status()
        self._refresh_invite()

    def _refresh_invite(self) -> None:
        """Keep the idle model panel's one line true: it invites `f` only when `f` can act."""
        if self._invite is None:
            return
        invite = self._invite_text()
        if invite != self._invite:
            self._invite = invite
            self.model_output.reset()
            self.model_output.note(invite)

    def _invite_text(self) -> str:
        if self._refine_queued:
            return "Refining the first failing test when the tests finish."
        if self._failing_nodeids():
            return "Press f to refine the selected failing test."
        if self._run_job is not None:
            return "Running the tests… f now refines the first failing test once they finish."
        if not self._has_tests:
            return "No tests found: cyclefix refines code against failing tests."
        if self._collection_errors:
            return "Fix the collection errors first: the tests cannot run."
        if self._cases:
            return "All tests pass: nothing to refine."
        return "Press r to run the tests."

    def _refresh_status(self) -> None:
        for bar in self.query("#status").results(StatusBar):
            bar.show(self.status_info())

    def status_info(self) -> StatusInfo:
        timings = self.settings.show_timings
        state, style = self._state()
        round_index = round_total = None
        rate = elapsed = None
        job = self._refine_job or self._run_job
        if self._refine_job is not None and self._round is not None:
            round_index, round_total = self._round
        if timings and self._refine_job is not None and self._tokens_per_second is not None:
            rate = self._tokens_per_second
        if timings and job is not None:
            elapsed = self._clock() - job.started
        return StatusInfo(
            state, style, self.model_spec, round_index, round_total, rate, elapsed, self._notice
        )

    def _state(self) -> tuple[str, str]:
        if self._refine_job is not None:
            return f"{self._refine_job.label}: {self._refine_stage}…", BUSY_STYLE
        if self._run_job is not None:
            if self._refine_queued:
                return f"{self._run_job.label} · refining when the tests finish", BUSY_STYLE
            return self._run_job.label, BUSY_STYLE
        if self._fix is not None:
            return "✓ verified fix ready: a accept · x reject", GREEN_STYLE
        if not self._has_tests:
            return "no tests found", WARN_STYLE
        failing = sum(1 for case in self._cases.values() if not case.ok)
        failing += len(self._collection_errors)
        total = len(self._cases)
        if failing:
            return f"✗ {failing} of {total} tests failing", FAIL_STYLE
        if total:
            return f"✓ all {total} tests pass", GREEN_STYLE
        return "ready: r runs the tests", IDLE_STYLE

    def _set_notice(self, text: str, style: str) -> None:
        self._notice = Text(text, style=style) if text else None
        self._notice_job = self._next_job
        self._changed()

    # ----- helpers ------------------------------------------------------------------------

    def _new_job(self, kind: Literal["tests", "refine"], label: str) -> Job:
        self._next_job += 1
        return Job(self._next_job, kind, threading.Event(), self._clock(), label)

    def _finish(self, job: Job) -> None:
        # A notice lasts until a job started after it finishes.
        if self._notice is not None and self._notice_job < job.id:
            self._notice = None
        if job is self._run_job:
            self._run_job = None
            self._running_files = {}
        if job is self._refine_job:
            self._refine_job = None
            self._round = None
        self.finished_jobs.append(job)

    def _no_tests_message(self) -> str:
        return (
            f"No tests found in {self.root.name}: add pytest tests (test_*.py) "
            "so cyclefix can verify fixes."
        )

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

    def _relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def _normalize(self, selected: str) -> str:
        """A selection entry (absolute or project-relative) as a project-relative path."""
        path = Path(selected)
        return self._relative(path) if path.is_absolute() else path.as_posix()

    def _refine_selection(self, nodeid: str) -> tuple[str, ...]:
        """The failing test to fix plus every passing one, so a fix may not break them."""
        passing = [other for other, case in self._cases.items() if case.outcome == "passed"]
        return (nodeid, *passing)

    def _failing_nodeids(self) -> list[str]:
        return [nodeid for nodeid, case in self._cases.items() if not case.ok]

    def _refine_target(self) -> str | None:
        """The selected failing test, else the first failing one; None (with a notice) if none."""
        failing = self._failing_nodeids()
        if not failing:
            if not self._has_tests:
                self._toast(self._no_tests_message(), severity="warning")
            elif self._collection_errors:
                self._toast(
                    "Fix the collection errors first: the tests cannot run.", severity="warning"
                )
            elif self._cases:
                self._toast("All tests pass: nothing to refine.")
            else:
                self._toast("Run the tests first (r).", severity="warning")
            return None
        selected = self.results.selected_nodeid
        return selected if selected in failing else failing[0]


__all__ = ["BackendFactory", "CyclefixApp", "Job"]
