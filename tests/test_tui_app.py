"""The TUI driven with Pilot on a fixture project, with scripted models instead of a real one."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList
from tui_support import (
    BUGGY_MEAN,
    COPY_REPLY,
    FIX_REPLY,
    FIXED_MEAN,
    SIZE,
    GatedBackend,
    copy_project,
    idle_with_results,
    make_app,
    scripted_factory,
    status_plain,
    wait_for,
)

from cyclefix.models.backend import ChatMessage, GenerationOptions, GenerationResult, TextCallback
from cyclefix.models.scripted import ScriptedBackend
from cyclefix.tui.help_screen import HelpScreen
from cyclefix.tui.messages import CheckDone, FilesChanged
from cyclefix.tui.model_chooser import ModelChooser


def outcomes(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {case.nodeid.split("::")[-1]: case.outcome for case in app.test_results}


async def test_opens_runs_tests_and_marks_failures(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        assert outcomes(app) == {
            "test_add": "passed",
            "test_mean": "failed",
            "test_mean_single": "failed",
        }
        # Failures come first in the table, and the status bar says how many fail.
        assert app.results.nodeids[0].endswith(("test_mean", "test_mean_single"))
        assert "2 of 3 tests failing" in status_plain(app)
        # The tree marks the failing test file; the source panel shows the suspect function.
        label = str(app.project_tree._file_nodes["tests/test_calc.py"].label)
        assert label.startswith("✗") and "(2)" in label
        assert app.source.rel == "calc.py"
        assert "mean" in str(app.source.border_subtitle)


async def test_refine_then_accept_writes_the_fix_and_tests_pass(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    app = make_app(project, factory=scripted_factory([COPY_REPLY, FIX_REPLY]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await pilot.press("f")
        await wait_for(pilot, lambda: app.pending_fix is not None, "a verified fix")
        result = app.pending_fix
        assert result is not None and "len(values)" in result.diff
        # The model's answer was streamed into the output panel, the copy was rejected.
        output = "\n".join(app.model_output.lines)
        assert "The denominator counts one value too many." in output
        verdicts = [attempt.verdict for attempt in result.attempts]
        assert verdicts[0] == "copy" and verdicts[-1] == "passed"
        assert app.fix_view.attempts.row_count == len(verdicts)
        assert "verified fix ready" in status_plain(app)
        # Nothing is written before accepting.
        assert BUGGY_MEAN in (project / "calc.py").read_text()
        await pilot.press("a")
        await wait_for(
            pilot,
            lambda: not app.busy and all(c.outcome == "passed" for c in app.test_results),
            "the tests to pass after accepting",
        )
        assert FIXED_MEAN in (project / "calc.py").read_text()
        assert app.pending_fix is None
        assert "all 3 tests pass" in status_plain(app)


async def test_reject_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    before = (project / "calc.py").read_text()
    app = make_app(project, factory=scripted_factory([FIX_REPLY]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await pilot.press("f")
        await wait_for(pilot, lambda: app.pending_fix is not None, "a verified fix")
        await pilot.press("x")
        await pilot.pause()
        assert app.pending_fix is None
        assert (project / "calc.py").read_text() == before
        assert "fix rejected" in status_plain(app)
        # Accept after reject has nothing to write.
        await pilot.press("a")
        await pilot.pause()
        assert (project / "calc.py").read_text() == before


async def test_cancel_stops_generation_and_the_worker(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    backend = GatedBackend(["def mean(values):\n", "    return"], FIX_REPLY)
    app = make_app(project, factory=lambda spec: backend)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await pilot.press("f")
        await wait_for(
            pilot, lambda: any("    return" in line for line in app.model_output.lines), "streaming"
        )
        assert app.busy and "refining" in status_plain(app)
        started = time.monotonic()
        await pilot.press("c")
        await wait_for(pilot, lambda: not app.busy, "the refinement to stop", timeout=15)
        assert time.monotonic() - started < 10
        # The generation itself saw the cancel, and no refine worker is left running.
        assert backend.returned.is_set() and backend.finish_reasons == ["cancelled"]
        assert all(w.is_finished for w in app.workers if w.group == "refine")
        assert app.pending_fix is None
        assert "refinement cancelled" in status_plain(app)
        assert (project / "calc.py").read_text().count("(len(values) + 1)") == 1


async def test_cancel_stops_a_slow_test_run(tmp_path: Path) -> None:
    project = tmp_path / "slow"
    (project / "tests").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.pytest.ini_options]\ntestpaths = ['tests']\n")
    (project / "tests" / "test_slow.py").write_text(
        "import time\n\n\ndef test_slow():\n    time.sleep(60)\n"
    )
    app = make_app(project, per_test_timeout=120.0)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.busy, "the test run to start")
        await pilot.pause(1.0)
        started = time.monotonic()
        await pilot.press("c")
        await wait_for(pilot, lambda: not app.busy, "the run to stop", timeout=30)
        assert time.monotonic() - started < 20
        assert "test run cancelled" in status_plain(app)
        assert all(w.is_finished for w in app.workers if w.group == "tests")


class EditDuringGeneration:
    """A scripted model whose first generation is interrupted by the user saving calc.py."""

    def __init__(self, target: Path, replies: Sequence[str]) -> None:
        self.target = target
        self.inner = ScriptedBackend(list(replies), name="editing")

    @property
    def name(self) -> str:
        return self.inner.name

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_text: TextCallback | None = None,
        cancel: object = None,
        until: object = None,
    ) -> GenerationResult:
        if not self.inner.calls:
            self.target.write_text(self.target.read_text() + "\n# edited by the user\n")
        return self.inner.generate(messages, options, on_text=on_text)

    def forks_along(self, *args: object, **kwargs: object) -> None:
        """No logits to score an answer with."""
        return None

    def close(self) -> None:
        self.inner.close()


async def test_file_changed_during_refinement_refuses_accept(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    backend = EditDuringGeneration(project / "calc.py", [FIX_REPLY])
    app = make_app(project, factory=lambda spec: backend)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await pilot.press("f")
        await wait_for(pilot, lambda: app.pending_fix is not None, "a verified fix")
        edited = (project / "calc.py").read_text()
        assert edited.endswith("# edited by the user\n")
        await pilot.press("a")
        await pilot.pause()
        assert (project / "calc.py").read_text() == edited
        assert "changed since the fix was computed" in status_plain(app)


async def test_missing_model_shows_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CYCLEFIX_MODELS_DIR", str(tmp_path / "no-models"))
    project = copy_project(tmp_path)
    app = make_app(project, model="qwen2.5-coder-0.5b", factory=None)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await pilot.press("f")
        await wait_for(pilot, lambda: not app.busy, "the model error")
        assert "cyclefix models install qwen2.5-coder-0.5b" in status_plain(app)
        assert any("cyclefix models install" in line for line in app.model_output.lines)
        assert app.is_running


async def test_project_without_tests_says_so(tmp_path: Path) -> None:
    project = copy_project(tmp_path, "notests")
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "no tests found" in status_plain(app)
        assert not app.busy
        await pilot.press("r")
        await pilot.pause()
        assert not app.busy
        assert "No tests found in notests" in status_plain(app)
        await pilot.press("f")
        await pilot.pause()
        assert not app.busy and app.is_running


async def test_saving_a_file_reruns_the_tests(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    app = make_app(project, watch=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        runs = len([job for job in app.finished_jobs if job.kind == "tests"])
        await pilot.pause(0.5)  # let the watcher start before the save
        source = project / "calc.py"
        source.write_text(source.read_text().replace("(len(values) + 1)", "len(values)"))
        await wait_for(
            pilot,
            lambda: all(c.outcome == "passed" for c in app.test_results) and not app.busy,
            "the watcher's re-run",
            timeout=30,
        )
        assert len([job for job in app.finished_jobs if job.kind == "tests"]) > runs


async def test_accepted_fix_does_not_trigger_the_watcher(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    app = make_app(project, watch=True, factory=scripted_factory([FIX_REPLY]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await pilot.press("f")
        await wait_for(pilot, lambda: app.pending_fix is not None, "a verified fix")
        runs = len([job for job in app.finished_jobs if job.kind == "tests"])
        await pilot.press("a")
        await wait_for(pilot, lambda: not app.busy, "the re-run after accepting")
        await pilot.pause(2.0)  # longer than the watcher's debounce
        await wait_for(pilot, lambda: not app.busy, "any further run")
        assert len([job for job in app.finished_jobs if job.kind == "tests"]) == runs + 1


async def test_model_chooser_sets_the_model(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    app = make_app(project, run_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, ModelChooser)
        options = app.screen.query_one(OptionList)
        assert options.option_count == 2
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.model_spec == "qwen2.5-coder-1.5b"
        # Free text: any spec, e.g. a GGUF path.
        await pilot.press("m")
        await pilot.pause()
        app.screen.query_one(Input).focus()
        await pilot.press(*"my.gguf", "enter")
        await pilot.pause()
        assert app.model_spec == "my.gguf"
        # Escape keeps the model.
        await pilot.press("m", "escape")
        await pilot.pause()
        assert app.model_spec == "my.gguf" and not isinstance(app.screen, ModelChooser)


async def test_help_screen_and_diff_toggle(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    app = make_app(project, factory=scripted_factory([FIX_REPLY]))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await pilot.press("f")
        await wait_for(pilot, lambda: app.pending_fix is not None, "a verified fix")
        assert app.fix_view.mode == "unified"
        await pilot.press("d")
        assert app.fix_view.mode == "side-by-side"
        await pilot.press("d")
        assert app.fix_view.mode == "unified"


async def test_command_palette_offers_every_action(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    app = make_app(project, run_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for title in (
            "Run tests",
            "Refine failure",
            "Accept fix",
            "Reject fix",
            "Cancel",
            "Toggle diff view",
            "Choose model",
            "Help",
        ):
            assert title in titles
        # Running one from the palette works like its key.
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Run tests")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: idle_with_results(app), "the palette's test run")


def notifications(app) -> list[str]:  # type: ignore[no-untyped-def]
    # Textual keeps every notification here, also while run_test does not draw them.
    return [notification.message for notification in app._notifications]


def slow_first_run_project(tmp_path: Path) -> tuple[Path, Path]:
    """The calc project with a passing test that keeps the first run busy until the test
    creates the returned gate file (at most 60 s; give the app `GATED_TIMEOUT`)."""
    project = copy_project(tmp_path)
    gate = tmp_path / "gate"
    (project / "tests" / "test_wait.py").write_text(
        "import pathlib\nimport time\n\n\ndef test_wait():\n"
        "    deadline = time.monotonic() + 60\n"
        f"    while not pathlib.Path({str(gate)!r}).exists() and time.monotonic() < deadline:\n"
        "        time.sleep(0.02)\n"
    )
    return project, gate


# The gated test's own timeout: it waits for the test, not for the clock.
GATED_TIMEOUT = 90.0


async def test_invite_to_refine_waits_for_a_failing_test(tmp_path: Path) -> None:
    project, gate = slow_first_run_project(tmp_path)
    app = make_app(project, per_test_timeout=GATED_TIMEOUT)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.busy, "the first test run to start")
        assert not app.test_results
        assert "Press f to refine" not in app.model_output.text
        gate.touch()
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        assert "Press f to refine the selected failing test." in app.model_output.text


async def test_refine_pressed_during_the_first_run_starts_when_it_ends(tmp_path: Path) -> None:
    project, gate = slow_first_run_project(tmp_path)
    app = make_app(project, factory=scripted_factory([FIX_REPLY]), per_test_timeout=GATED_TIMEOUT)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.busy, "the first test run to start")
        assert not app.test_results
        await pilot.press("f")
        await pilot.pause()
        assert "refining when the tests finish" in status_plain(app)
        gate.touch()
        await wait_for(pilot, lambda: app.pending_fix is not None, "the queued refinement's fix")
        result = app.pending_fix
        assert result is not None and "len(values)" in result.diff


async def test_refine_queued_during_a_run_that_is_cancelled_is_dropped(tmp_path: Path) -> None:
    project, _ = slow_first_run_project(tmp_path)  # never opened: the run is cancelled
    app = make_app(project, factory=scripted_factory([FIX_REPLY]), per_test_timeout=GATED_TIMEOUT)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.busy, "the first test run to start")
        await pilot.press("f", "c")
        await wait_for(pilot, lambda: not app.busy, "the cancelled run to stop", timeout=30)
        await pilot.pause(0.3)
        assert not app.busy and app.last_result is None
        assert "refining when the tests finish" not in status_plain(app)


async def test_refine_with_every_test_passing_says_why(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    (project / "calc.py").write_text(
        (project / "calc.py").read_text().replace("(len(values) + 1)", "len(values)")
    )
    app = make_app(project, factory=scripted_factory([FIX_REPLY]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await pilot.press("f")
        await pilot.pause()
        assert not app.busy
        assert notifications(app) == ["All tests pass: nothing to refine."]


async def test_accept_reject_cancel_with_nothing_to_act_on_say_why(tmp_path: Path) -> None:
    app = make_app(copy_project(tmp_path), factory=scripted_factory([FIX_REPLY]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        app.clear_notifications()
        for key, reason in (
            ("a", "No verified fix to accept."),
            ("x", "No fix to reject."),
            ("c", "Nothing is running."),
        ):
            await pilot.press(key)
            await pilot.pause()
            assert notifications(app)[-1] == reason, key
        assert len(notifications(app)) == 3
        assert not app.busy and app.pending_fix is None


async def test_accept_and_reject_during_the_first_run_say_why(tmp_path: Path) -> None:
    project, gate = slow_first_run_project(tmp_path)
    app = make_app(project, per_test_timeout=GATED_TIMEOUT)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.busy, "the first test run to start")
        await pilot.press("a", "x")
        await pilot.pause()
        assert app.busy and not app.test_results
        assert notifications(app) == ["No verified fix to accept.", "No fix to reject."]
        gate.touch()


async def test_a_test_run_that_ends_as_the_app_quits_is_dropped(tmp_path: Path) -> None:
    app = make_app(copy_project(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        run = app.session.initial_run(app.results.nodeids)
        assert run is not None
        late = app.session.start_job("tests", "running tests…")
    # The panels are gone; the worker's last message must not reach for them.
    app._check_done(CheckDone(late.id, run, full=True))
    app._files_changed(FilesChanged((app.root / "calc.py",)))


async def test_refine_while_a_refinement_runs_says_so(tmp_path: Path) -> None:
    backend = GatedBackend(["def mean(values):\n"], FIX_REPLY)
    app = make_app(copy_project(tmp_path), factory=lambda spec: backend)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await pilot.press("f")
        await wait_for(
            pilot, lambda: any("def mean" in line for line in app.model_output.lines), "streaming"
        )
        app.clear_notifications()
        await pilot.press("f")
        await pilot.pause()
        assert notifications(app) == ["A refinement is already running (c cancels it)."]
        backend.release.set()
        await wait_for(pilot, lambda: app.pending_fix is not None, "the one verified fix")
        assert len([job for job in app.finished_jobs if job.kind == "refine"]) == 1
