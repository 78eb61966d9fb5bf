"""`cyclefix models ...` end to end on a fake registry entry, with exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from fixtures.models.fakes import fake_entry, gguf_bytes, split_parts, write_part_wheels

from cyclefix.errors import CyclefixError
from cyclefix.models import cli
from cyclefix.models.registry import REGISTRY

DATA = gguf_bytes(tensors=(("w", (64, 64)),))
ENTRY = fake_entry(DATA, name="fake-cli-model")


def run(*argv: str) -> int:
    """What cyclefix.cli.main does with the models subcommand: CyclefixError -> exit 2."""
    parser = argparse.ArgumentParser(prog="cyclefix")
    subparsers = parser.add_subparsers(dest="command", required=True)
    cli.register(subparsers)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except CyclefixError as exc:
        print(f"cyclefix: error: {exc}")
        return 2
    return code


@pytest.fixture(autouse=True)
def fake_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CYCLEFIX_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setitem(REGISTRY, ENTRY.name, ENTRY)
    wheels = tmp_path / "wheels"
    write_part_wheels(ENTRY, split_parts(DATA, ENTRY.part_count), wheels)
    return wheels


def test_install_verify_path_remove(
    fake_registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("models", "install", ENTRY.name, "--from", str(fake_registry)) == 0
    out = capsys.readouterr()
    path = Path(out.out.strip())
    assert path.read_bytes() == DATA
    assert "installed fake-cli-model" in out.err

    assert run("models", "install", ENTRY.name) == 0
    assert "already installed" in capsys.readouterr().err

    assert run("models", "verify", ENTRY.name) == 0
    assert "ok" in capsys.readouterr().out

    assert run("models", "path", ENTRY.name) == 0
    assert capsys.readouterr().out.strip() == str(path)

    assert run("models", "list") == 0
    listing = capsys.readouterr().out
    assert "fake-cli-model" in listing and "qwen2.5-coder-1.5b" in listing

    path.write_bytes(DATA[:-1] + bytes([DATA[-1] ^ 1]))
    assert run("models", "verify") == 1
    assert "FAILED fake-cli-model" in capsys.readouterr().out

    assert run("models", "remove", ENTRY.name) == 0
    assert not path.exists()
    assert run("models", "remove", ENTRY.name) == 1


def test_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("models", "path", ENTRY.name) == 2
    assert "cyclefix models install fake-cli-model" in capsys.readouterr().out
    assert run("models", "install", "no-such-model") == 2
    assert "known models:" in capsys.readouterr().out


def test_verify_with_nothing_installed(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("models", "verify") == 1
    assert "no models are installed" in capsys.readouterr().err


def test_models_without_action_shows_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("models") == 2
    assert "install" in capsys.readouterr().out
