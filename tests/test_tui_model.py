"""The real 0.5B model driven through the TUI on a copy of an example project."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tui_support import SIZE, idle_with_results, make_app, status_plain, wait_for

pytestmark = pytest.mark.model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MODEL = "qwen2.5-coder-0.5b"


async def test_real_model_refines_an_example_in_the_tui(tmp_path: Path) -> None:
    project = tmp_path / "leap_year"
    shutil.copytree(EXAMPLES / "leap_year", project)
    before = (project / "calendar_utils.py").read_text()
    app = make_app(project, MODEL, factory=None, rounds=4, budget=240.0, show_timings=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run", timeout=120)
        assert any(not case.ok for case in app.test_results)
        await pilot.press("f")
        await wait_for(pilot, lambda: "round 1/4" in status_plain(app), "round 1", timeout=180)
        await wait_for(pilot, lambda: not app.busy, "the refinement", timeout=420)
        result = app.last_result
        assert result is not None and result.status in ("fixed", "not_fixed"), result
        # Every answer the model wrote streamed into the panel (a token edit, often the fix
        # here, writes none), and every attempt is in the history.
        streamed = "\n".join(app.model_output.lines)
        if any(not (a.token_edit or a.partial) for a in result.attempts):
            assert "def " in streamed
        assert app.fix_view.attempts.row_count == len(result.attempts) > 0
        # Nothing reaches the file without accepting.
        assert (project / "calendar_utils.py").read_text() == before
        if result.status == "fixed":
            await pilot.press("a")
            await wait_for(
                pilot,
                lambda: not app.busy and all(c.ok for c in app.test_results),
                "the tests to pass after accepting",
                timeout=120,
            )
            assert (project / "calendar_utils.py").read_text() != before
