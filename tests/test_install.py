"""A plain `pip install` of the package (no Makefile) gives a working `cyclefix` command."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built from a copy of the sources and installed into a fresh folder."""
    work = tmp_path_factory.mktemp("install")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "cyclefix", source / "cyclefix", ignore=shutil.ignore_patterns("__pycache__")
    )
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return target


def test_the_installed_command_runs_from_the_installed_package(
    installed: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    proc = subprocess.run(
        [sys.executable, str(installed / "bin" / "cyclefix"), "--version"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("cyclefix ")
    where = subprocess.run(
        [sys.executable, "-c", "import cyclefix; print(cyclefix.__file__)"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert where.stdout.strip().startswith(str(installed))


def test_the_metadata_declares_the_extras_jinja2_and_the_license(installed: Path) -> None:
    dist = next(installed.glob("cyclefix-*.dist-info"))
    metadata = email.message_from_string((dist / "METADATA").read_text())
    requires = metadata.get_all("Requires-Dist") or []
    assert any(r.startswith("jinja2") for r in requires)
    assert not any(r.startswith("textual") and "extra" not in r for r in requires)
    assert set(metadata.get_all("Provides-Extra") or []) >= {"tui", "lsp", "bench", "training"}
    assert "License :: OSI Approved :: MIT License" in (metadata.get_all("Classifier") or [])
    licenses = list(dist.rglob("LICENSE*"))
    assert licenses and "cyclefix developers" in licenses[0].read_text()
