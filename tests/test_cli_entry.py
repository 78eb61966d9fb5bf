"""The `cyclefix` entry point: help on a bare call, the missing extra named, other platforms."""

from __future__ import annotations

import sys

import pytest

from cyclefix import cli


def test_bare_cyclefix_prints_the_help_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: cyclefix")
    for command in ("fix", "models", "serve", "tui", "config"):
        assert f"\n    {command} " in out


def test_a_missing_optional_dependency_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cyclefix.tui import cli as tui_cli

    def run_tui(args: object) -> int:
        raise ModuleNotFoundError("No module named 'textual'", name="textual")

    monkeypatch.setattr(tui_cli, "run_tui", run_tui)
    assert cli.main(["tui", "."]) == 2
    err = capsys.readouterr().err
    assert err == (
        "cyclefix: error: cyclefix tui needs textual, from the optional 'tui' dependencies: "
        "pip install 'cyclefix[tui]' (from a clone: pip install '.[tui]')\n"
    )


def test_an_unrelated_missing_module_is_not_blamed_on_an_extra() -> None:
    error = ModuleNotFoundError("No module named 'nothing_here'", name="nothing_here")
    assert cli.missing_extra_message(error, "fix") is None


def test_windows_gets_a_clear_error_instead_of_an_import_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    assert cli.main(["fix", "."]) == 2
    err = capsys.readouterr().err
    assert "Windows is not supported" in err and "WSL" in err
