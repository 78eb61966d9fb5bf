"""`cyclefix tui` reads the shared configuration: pyproject and user settings reach the app."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from cyclefix.cli import main
from cyclefix.tui import app as tui_app


def test_tui_gets_rounds_tests_git_and_hardware_from_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    user = tmp_path / "xdg" / "cyclefix" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('threads = 3\ngpuLayers = 0\ngitOnApply = "stage"\n')
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.cyclefix]\nrounds = 2\ntests = ["tests/t.py"]\n')
    seen: dict[str, Any] = {}

    class FakeApp:
        def __init__(self, settings: Any, *, backend_factory: Any) -> None:
            seen["settings"], seen["factory"] = settings, backend_factory

        def run(self) -> None:
            pass

    monkeypatch.setattr(tui_app, "CyclefixApp", FakeApp)
    assert main(["tui", str(root), "--no-watch"]) == 0
    settings = seen["settings"]
    assert settings.config.rounds == 2
    assert settings.tests == (str(root / "tests/t.py"),)
    assert settings.git_on_apply == "stage"
    factory = seen["factory"]
    assert isinstance(factory, functools.partial)
    assert factory.keywords == {"n_threads": 3, "n_gpu_layers": 0}
