"""Accepting a fix in the TUI when the write fails: one message, the files as they were."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tui_support import (
    BUGGY_MEAN,
    FIX_REPLY,
    SIZE,
    copy_project,
    idle_with_results,
    make_app,
    scripted_factory,
    status_plain,
    wait_for,
)


async def test_an_os_error_while_accepting_is_a_message_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_project(tmp_path)
    before = (project / "calc.py").read_bytes()
    app = make_app(project, factory=scripted_factory([FIX_REPLY]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await pilot.press("f")
        await wait_for(pilot, lambda: app.pending_fix is not None, "a verified fix")
        real_replace = os.replace

        def replace(src: str | Path, dst: str | Path) -> None:
            if Path(dst).parent == project:  # the user's files, not the scratch copy
                raise OSError(28, "No space left on device", str(dst))
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        await pilot.press("a")
        await pilot.pause()
        assert "No space left on device" in status_plain(app)
        assert app.pending_fix is not None  # still there to accept once there is room
    assert (project / "calc.py").read_bytes() == before
    assert BUGGY_MEAN in before.decode()
