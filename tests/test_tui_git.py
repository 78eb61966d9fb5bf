"""Accepting a fix in the TUI with gitOnApply = "commit": the fix is written and committed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from git_support import GIT_ENV, commit_all, git
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


async def test_accept_with_git_on_apply_commit_commits_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in GIT_ENV.items():  # the app commits in this process
        monkeypatch.setenv(key, value)
    project = copy_project(tmp_path)
    commit_all(project)
    app = make_app(project, factory=scripted_factory([FIX_REPLY]))
    app.settings = dataclasses.replace(app.settings, git_on_apply="commit")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: idle_with_results(app), "the first test run")
        await pilot.press("f")
        # The refinement's own end (late on a busy machine) would overwrite the notice too.
        await wait_for(
            pilot, lambda: app.pending_fix is not None and not app.busy, "a verified fix"
        )
        # The re-run that accepting starts never reports back: its end would clear the notice.
        monkeypatch.setattr(app.session, "check_work", lambda *args: None)
        await pilot.press("a")
        await pilot.pause()
        assert "committed" in status_plain(app)
    assert BUGGY_MEAN not in (project / "calc.py").read_text()
    assert git(project, "log", "-1", "--format=%s").startswith("Fix ")
    assert git(project, "status", "--porcelain", "--", "calc.py") == ""
