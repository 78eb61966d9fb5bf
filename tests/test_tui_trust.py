"""The TUI asks, in a dialog, before it uses a model or python chosen by the project's pyproject."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from tui_support import SIZE, copy_project, make_app, status_plain, wait_for

from cyclefix.trust import TrustRequest, TrustStore, trust_file
from cyclefix.tui.trust_dialog import TrustDialog

ENDPOINT = "openai:http://203.0.113.9/v1#coder"


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


def app_asking(project: Path, *requests: TrustRequest):  # type: ignore[no-untyped-def]
    app = make_app(project, run_on_start=False)
    app.settings = dataclasses.replace(app.settings, untrusted=requests)
    return app


async def test_trusting_the_projects_model_uses_and_remembers_it(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    request = TrustRequest(project, "model", ENDPOINT)
    app = app_asking(project, request)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TrustDialog), "the trust dialog")
        assert app.model_spec == "scripted-fix"  # the default until the user answers
        await pilot.press("t")
        await wait_for(pilot, lambda: not isinstance(app.screen, TrustDialog), "the answer")
        assert app.model_spec == ENDPOINT
        assert "trusted: model" in status_plain(app)
    assert TrustStore().is_trusted(project, "model", ENDPOINT)


async def test_not_trusting_keeps_the_default_and_remembers_nothing(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    app = app_asking(project, TrustRequest(project, "model", ENDPOINT))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TrustDialog), "the trust dialog")
        await pilot.press("enter")  # the focused button is Don't trust
        await wait_for(pilot, lambda: not isinstance(app.screen, TrustDialog), "the answer")
        assert app.model_spec == "scripted-fix"
        assert "not trusted" in status_plain(app)
    assert not trust_file().exists()


async def test_a_trusted_python_runs_the_next_tests(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    python = "/opt/project-python/bin/python3"
    app = app_asking(project, TrustRequest(project, "python", python))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TrustDialog), "the trust dialog")
        await pilot.press("t")
        await wait_for(pilot, lambda: not isinstance(app.screen, TrustDialog), "the answer")
        assert app.settings.config.python == python
    entries = json.loads(trust_file().read_text())["trusted"]
    assert entries == [{"root": str(project.resolve()), "setting": "python", "value": python}]
