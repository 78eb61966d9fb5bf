"""The TUI's session: a refinement starts from the run the app already has."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.message import Message
from tui_support import (
    FIX_REPLY,
    SIZE,
    copy_project,
    idle_with_results,
    make_app,
    scripted_factory,
    wait_for,
)

from cyclefix import refine
from cyclefix.tui.messages import RefineNews


async def test_refining_reuses_the_apps_run_instead_of_running_the_tests_again(
    tmp_path: Path,
) -> None:
    project = copy_project(tmp_path)
    app = make_app(project, factory=scripted_factory([FIX_REPLY]))
    started: list[refine.TestsStarted] = []
    async with app.run_test(size=SIZE, message_hook=_collect(started)) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        known = {case.nodeid: case for case in app.test_results}
        started.clear()
        await pilot.press("f")
        await wait_for(pilot, lambda: app.pending_fix is not None, "a verified fix")
    result = app.last_result
    assert result is not None and result.initial_run is not None
    # The very results the app showed, not a new run of the same tests.
    assert all(known[case.nodeid] is case for case in result.initial_run.tests)
    assert [event for event in started if not event.scratch] == []
    assert any(event.scratch for event in started)  # the candidate still ran


async def test_a_refinement_takes_the_chosen_failing_test_then_the_other_failing_ones(
    tmp_path: Path,
) -> None:
    project = copy_project(tmp_path)
    app = make_app(project, factory=scripted_factory([FIX_REPLY]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        failing = [case.nodeid for case in app.test_results if not case.ok]
        chosen = failing[-1]
        selection = app.session.refine_selection(chosen)
    assert len(failing) == 2
    assert selection == (chosen, failing[0], "tests/test_calc.py::test_add")


def _collect(started: list[refine.TestsStarted]) -> Callable[[Message], None]:
    def hook(message: Message) -> None:
        if isinstance(message, RefineNews) and isinstance(message.event, refine.TestsStarted):
            started.append(message.event)

    return hook
