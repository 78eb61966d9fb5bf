"""A session's settings: one order for every front-end (flags > editor > project > user file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyclefix.session.settings import selected_tests, session_settings
from cyclefix.trust import TrustStore


@pytest.fixture
def user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = tmp_path / "config" / "cyclefix" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("rounds = 2\ndebounce = 1.0\nbudget = 50\n")
    return path


def test_each_layer_wins_over_the_ones_below(tmp_path: Path, user_file: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.cyclefix]\nrounds = 3\ndebounce = 0.5\n")
    resolved = session_settings(
        project,
        flags={"rounds": 5},
        editor={"rounds": 4, "debounce": 0.1},
        trust_store=TrustStore(tmp_path / "trust.json"),
    )
    settings = resolved.settings
    assert (settings.rounds, settings.debounce, settings.budget) == (5, 0.1, 50)
    assert resolved.sources["rounds"] == "command line"
    assert resolved.sources["debounce"] == "editor/TUI settings"


def test_without_a_project_the_users_own_settings_apply(user_file: Path) -> None:
    resolved = session_settings(None, editor={"debounce": 0.2})
    assert (resolved.settings.rounds, resolved.settings.debounce) == (2, 0.2)


def test_tests_from_a_settings_file_are_made_absolute_and_flags_kept(
    tmp_path: Path, user_file: Path
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.cyclefix]\ntests = ["t/test_a.py"]\n')
    store = TrustStore(tmp_path / "trust.json")
    from_file = session_settings(tmp_path, trust_store=store)
    assert selected_tests(tmp_path, from_file) == (str(tmp_path / "t/test_a.py"),)
    from_flag = session_settings(tmp_path, flags={"tests": ("t/test_b.py",)}, trust_store=store)
    assert selected_tests(tmp_path, from_flag, from_cwd=True) == ("t/test_b.py",)
    assert selected_tests(tmp_path, session_settings(tmp_path / "none", trust_store=store)) is None
