"""Workspace trust: which project settings wait for the user, and how confirmations are kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyclefix.trust import TrustRequest, TrustStore, needs_trust, trust_file


def test_registry_models_need_no_confirmation() -> None:
    assert not needs_trust("model", "qwen2.5-coder-0.5b")
    assert not needs_trust("rounds", 3)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("model", "openai:http://203.0.113.9/v1#m"),
        ("model", "/srv/models/other.gguf"),
        ("model", "qwen2.5-coder-0.5b+adapter.gguf"),
        ("python", "/usr/bin/python3"),
    ],
)
def test_endpoints_files_and_interpreters_need_confirmation(setting: str, value: str) -> None:
    assert needs_trust(setting, value)


def test_the_trust_file_lives_in_the_users_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert trust_file() == tmp_path / "config" / "cyclefix" / "trusted.json"


def test_a_confirmation_holds_for_that_root_and_exact_value_only(tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "config" / "trusted.json")
    project, other = tmp_path / "project", tmp_path / "other"
    url = "openai:http://203.0.113.9/v1#m"
    assert store.untrusted(project, {"model": url, "rounds": 2}) == [
        TrustRequest(project, "model", url)
    ]
    store.trust(project, "model", url)
    assert store.untrusted(project, {"model": url}) == []
    assert TrustStore(store.path).is_trusted(project, "model", url)  # kept on disk
    assert not store.is_trusted(other, "model", url)
    assert not store.is_trusted(project, "model", url + "x")
    assert not store.is_trusted(project, "python", url)


def test_an_unreadable_trust_file_trusts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "trusted.json"
    path.write_text("{not json")
    assert not TrustStore(path).is_trusted(tmp_path, "python", "/usr/bin/python3")


def test_the_question_says_where_the_code_would_go(tmp_path: Path) -> None:
    request = TrustRequest(tmp_path, "model", "openai:https://llm.example/v1#coder")
    question = request.question()
    assert "https://llm.example/v1" in question and "$CYCLEFIX_API_KEY" in question
    assert str(tmp_path / "pyproject.toml") in question
