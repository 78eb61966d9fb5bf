"""The cyclefix Textual app: watch, test, refine in workers, review and accept verified fixes.

What the app knows and the work it starts live in TuiSession (tui/session.py); the app shows
them and turns keys into actions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events, on
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent

from cyclefix.errors import CyclefixError
from cyclefix.refine import StaleFixError, apply_and_keep
from cyclefix.session.fixes import VerifiedFix
from cyclefix.trust import TrustRequest, TrustStore
from cyclefix.tui.commands import palette_commands
from cyclefix.tui.formatting import nodeid_file, nodeid_test
from cyclefix.tui.help_screen import HelpScreen
from cyclefix.tui.messages import (
    CheckDone,
    FilesChanged,
    FixDone,
    JobFailed,
    ModelLoading,
    ModelReady,
)
from cyclefix.tui.model_chooser import ModelChooser
from cyclefix.tui.panels import Panels
from cyclefix.tui.project import RunSelection, selection_for_changes
from cyclefix.tui.session import WARN_STYLE, BackendFactory, JobKind, TuiJob
from cyclefix.tui.trust_dialog import TrustDialog
from cyclefix.tui.watch import watch_project


class CyclefixApp(Panels):
    """The keys' actions, the jobs they start and what the workers report back."""

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

    def on_mount(self) -> None:
        self._invite = ""
        self._refresh_tree_files()
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
        if self.settings.run_on_start and self.session.has_tests:
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
            self.session.model_spec = request.value
        else:
            config = replace(self.settings.config, python=request.value)
            self.session.settings = replace(self.settings, config=config)
        self._set_notice(f"trusted: {what}; used from the next run", "green")

    def on_resize(self, event: events.Resize) -> None:
        # On narrow terminals every key matters more than the palette hint (ctrl+p still works).
        for footer in self.query(Footer):
            footer.show_command_palette = event.size.width >= 90

    def on_unmount(self) -> None:
        # Thread workers cannot be killed: tell every one to stop so the app can exit.
        self.session.exiting = True
        self._watch_stop.set()
        for job in self.session.board.running():
            job.cancel.set()
        if self.session.refine_job is None:
            self.session.models.close_when_free(timeout=10)
        self.session.warm.close()

    # ----- actions ------------------------------------------------------------------------

    def action_run_tests(self) -> None:
        tests = self.settings.tests
        self._start_tests(RunSelection(self.root, tests, full=True), "running tests…")

    def action_refine(self) -> None:
        session = self.session
        if session.refine_job is not None:
            self._toast("A refinement is already running (c cancels it).", severity="warning")
            return
        if session.run_job is not None and not session.failing_nodeids():
            session.refine_queued = True
            self._toast("Refining when the tests finish, if one fails.")
            self._changed()
            return
        nodeid = self._refine_target()
        if nodeid is None:
            return
        session.refine_queued = False
        self._invite = None
        session.fix = None
        job = self._start_job("refine", f"refining {nodeid_test(nodeid)}")
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
        tests = session.refine_selection(nodeid)
        # What is known of these tests already is the refinement's first run: not run twice.
        work = partial(
            session.refine_work,
            job,
            session.model_spec,
            tests,
            session.initial_run(tests),
            self.post_message,
        )
        self.run_worker(
            work, name=f"refine-{job.id}", group="refine", thread=True, exit_on_error=False
        )
        self._changed()

    def action_accept(self) -> None:
        result = self.pending_fix
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
        self.session.own_writes.record(written)
        self.session.fix = None
        names = ", ".join(self.session.relative(path) for path in written)
        self._set_notice(
            f"accepted: wrote {names}" + (f"; {kept.git}" if kept.git else ""), "green"
        )
        self.fix_view.show_fix(None, Text(f"Accepted: wrote {names}.", style="green"))
        self._toast(f"Wrote {names}; re-running the tests.", title="Fix accepted")
        self.source.reload()
        self.action_run_tests()

    def action_reject(self) -> None:
        if self.session.fix is None:
            self._toast("No fix to reject.", severity="warning")
            return
        self.session.fix = None
        self._set_notice("fix rejected; files unchanged", "yellow")
        self.fix_view.show_fix(None, Text("Fix rejected; your files are unchanged.", "yellow"))
        self._changed()

    def action_cancel(self) -> None:
        jobs = self.session.board.running()
        if not jobs:
            self._toast("Nothing is running.", severity="information")
            return
        self.session.refine_queued = False
        for job in jobs:
            self.session.board.stop(job, "cancelled by the user")
        if self.session.refine_job is not None:
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
        self.session.model_spec = spec
        self._set_notice(f"model set to {spec}; it loads on the next refinement", "")
        self._toast(f"Model: {spec}", timeout=3)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # None: shown dimmed in the footer, so the keys stay put while the state changes.
        if action in ("accept", "reject"):
            return True if self.session.fix is not None else None
        if action == "cancel":
            return True if self.busy else None
        if action == "refine":
            failing = bool(self.session.failing_nodeids())
            return True if failing and self.session.refine_job is None else None
        return True

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from palette_commands(self)
        yield from super().get_system_commands(screen)

    # ----- jobs ---------------------------------------------------------------------------

    def _start_job(self, kind: JobKind, label: str) -> TuiJob:
        job = self.session.start_job(kind, label)
        self._newest_job = job.id
        return job

    def _start_tests(self, selection: RunSelection, label: str) -> None:
        session = self.session
        if not session.has_tests:
            self._set_notice(session.no_tests_message(), WARN_STYLE)
            return
        job = self._start_job("tests", label)
        job.full = selection.full
        previously_failing = tuple(session.failing_nodeids())
        self._running_files = dict.fromkeys(session.running_files(selection), "running")
        self._show_results()
        work = partial(session.check_work, job, selection, previously_failing, self.post_message)
        self.run_worker(
            work, name=f"tests-{job.id}", group="tests", thread=True, exit_on_error=False
        )
        self._changed()

    def _post_changes(self, paths: tuple[Path, ...]) -> None:
        self.post_message(FilesChanged(paths))

    def _finish(self, job: TuiJob) -> None:
        # A notice lasts until a job started after it finishes.
        if self._notice is not None and self._notice_job < job.id:
            self._notice = None
        if job.kind == "tests":
            self._running_files = {}
        else:
            self._round = None
        self.session.board.finish(job)

    @on(CheckDone)
    def _check_done(self, message: CheckDone) -> None:
        job = self._job_of(message)
        session = self.session
        if job is None or job is not session.run_job:
            return
        self._finish(job)
        run = message.run
        if run.cancelled:
            self._set_notice("test run cancelled", "yellow")
        else:
            session.merge(run, full=message.full)
            if not run.tests and not run.collection_errors:
                self._set_notice(session.no_tests_message(), WARN_STYLE)
            elif run.timed_out:
                self._set_notice("the test run hit its time limit and was stopped", "bold red")
        self._show_results()
        if session.refine_queued:
            session.refine_queued = False
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

    @on(FixDone)
    def _fix_done(self, message: FixDone) -> None:
        job = self._job_of(message)
        if job is None or job is not self.session.refine_job:
            return
        self._finish(job)
        result = message.result
        self.session.last_result = result
        tabs = self.query_one("#right", TabbedContent)
        self.fix_view.attempts.show_attempts(result.attempts)
        if result.status == "fixed":
            self.session.fix = VerifiedFix(result)
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
            self.session.refine_queued = False
        self._set_notice(message.message, "bold red")
        if job.kind == "refine":
            self.model_output.note(f"✗ {message.message}")
            self.fix_view.show_fix(None, Text(message.message, "red"))
        title = "Model not available" if message.model_error else "Error"
        self._toast(message.message, title=title, severity="error", timeout=10)
        self._changed()

    @on(FilesChanged)
    def _files_changed(self, message: FilesChanged) -> None:
        session = self.session
        if not self.is_running:
            return
        changed = [path for path in message.paths if not session.own_writes.is_own(path)]
        if not changed:
            return
        if any(not path.exists() for path in changed) or any(
            session.relative(path) not in self.project_tree.files for path in changed
        ):
            self._refresh_tree_files()
        if self.source.path is not None and self.source.path in changed:
            self._show_source(self.source.rel or "")
        if session.fix is not None and session.fix.touches(changed):
            self._set_notice(
                "a file in the fix changed on disk; accepting will be refused", WARN_STYLE
            )
        names = ", ".join(session.relative(path) for path in changed[:3])
        selection = selection_for_changes(self.root, changed, self.settings.tests)
        if selection is not None:
            self._start_tests(selection, f"{names} changed: running tests…")

    def _refine_target(self) -> str | None:
        """The selected failing test, else the first failing one; None (with a notice) if none."""
        failing = self.session.failing_nodeids()
        if not failing:
            reason, warning = self.session.nothing_to_refine()
            self._toast(reason, severity="warning" if warning else "information")
            return None
        selected = self.results.selected_nodeid
        return selected if selected in failing else failing[0]


__all__ = ["BackendFactory", "CyclefixApp", "TuiJob"]
