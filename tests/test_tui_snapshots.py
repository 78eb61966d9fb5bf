"""Screenshots of the main screen in its four states, compared with the approved SVGs.

Timings are hidden (show_timings=False) and the model is named by a fixed spec, so the
screens do not depend on the machine's speed or the temporary folder.
Update after an intended change with: pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable
from tui_support import (
    COPY_REPLY,
    FIX_REPLY,
    SIZE,
    GatedBackend,
    copy_project,
    idle_with_results,
    make_app,
    scripted_factory,
    wait_for,
)

from cyclefix.tui.app import CyclefixApp


async def settle(pilot: Pilot[Any], timeout: float = 10.0) -> None:
    """Until every table has measured its rows and the screen stops changing: a DataTable
    works out its column widths when its message pump is idle, which on a loaded machine
    comes some moments after its rows arrive."""
    pilot.app.clear_notifications()
    await pilot.pause(0.2)
    await pilot.wait_for_scheduled_animations()
    deadline = time.monotonic() + timeout
    shown, unchanged = pilot.app.export_screenshot(), 0
    while time.monotonic() < deadline and unchanged < STABLE_CAPTURES:
        await pilot.pause(0.2)
        now = pilot.app.export_screenshot()
        unchanged = unchanged + 1 if now == shown and tables_measured(pilot.app) else 0
        shown = now


# Captures 0.2 s apart that must agree before a screenshot is compared.
STABLE_CAPTURES = 3


def tables_measured(app: App[Any]) -> bool:
    """No DataTable holds rows or cells it has not measured yet (Textual's own bookkeeping)."""
    return not any(
        table._require_update_dimensions or table._new_rows or table._updated_cells
        for table in app.screen.query(DataTable)
    )


def test_snapshot_failing(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(copy_project(tmp_path))

    async def failing(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=failing)


def test_snapshot_refining(snap_compare: Any, tmp_path: Path) -> None:
    pieces = ["The denominator ", "is off by one.\n", "```python\n", "def mean(values):\n"]
    backend = GatedBackend(pieces, FIX_REPLY, name="scripted-model")
    app = make_app(copy_project(tmp_path), factory=lambda spec: backend)

    async def refining(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await pilot.press("f")
        await wait_for(
            pilot,
            lambda: any("def mean(values):" in line for line in app.model_output.lines),
            "the streamed answer",
        )
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=refining)


def fix_ready_app(tmp_path: Path) -> CyclefixApp:
    return make_app(copy_project(tmp_path), factory=scripted_factory([COPY_REPLY, FIX_REPLY]))


def test_snapshot_fix_ready(snap_compare: Any, tmp_path: Path) -> None:
    app = fix_ready_app(tmp_path)

    async def fix_ready(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await pilot.press("f")
        await wait_for(pilot, lambda: app.pending_fix is not None, "a verified fix")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=fix_ready)


def test_snapshot_all_green(snap_compare: Any, tmp_path: Path) -> None:
    app = fix_ready_app(tmp_path)

    async def all_green(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await pilot.press("f")
        await wait_for(pilot, lambda: app.pending_fix is not None, "a verified fix")
        await pilot.press("a")
        await wait_for(
            pilot,
            lambda: not app.busy and all(c.outcome == "passed" for c in app.test_results),
            "the tests to pass",
        )
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=all_green)
