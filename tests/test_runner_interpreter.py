"""find_project_python: a project's tests run in the project's own virtual environment."""

from __future__ import annotations

import site
import subprocess
import sys
from pathlib import Path

import pytest

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, check, fix
from cyclefix.runner import find_project_python

CONFIG = RefineConfig(rounds=1, budget_seconds=120, per_test_timeout=5.0, resamples=0)


def make_venv(where: Path, *, with_pytest: bool, modules: dict[str, str] | None = None) -> Path:
    """A real venv (no pip); pytest comes from this test run's site-packages through a .pth."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    packages = where / "lib" / version / "site-packages"
    if with_pytest:
        (packages / "host.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    for name, text in (modules or {}).items():
        (packages / name).write_text(text)
    return where / "bin" / "python"


@pytest.fixture(autouse=True)
def no_activated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)


def project_needing(root: Path, module: str) -> Path:
    """A project whose code imports `module`, which only its own environment has."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (root / "prices.py").write_text(
        f"from {module} import RATE\n\n\ndef with_tax(amount):\n    return amount * RATE - 1\n"
    )
    (root / "test_prices.py").write_text(
        "from prices import with_tax\n\n\ndef test_with_tax():\n    assert with_tax(100) == 120\n"
    )
    return root


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX venv layout")
def test_the_project_venv_runs_the_tests_in_check_and_in_the_scratch_runs(
    tmp_path: Path,
) -> None:
    project = project_needing(tmp_path / "shop", "taxrates")
    python = make_venv(project / ".venv", with_pytest=True, modules={"taxrates.py": "RATE = 1.2\n"})
    found = find_project_python(project)
    assert found.python == str(python) and "project's virtual environment" in found.note
    run = check(project, config=CONFIG)
    # Collected and run (the import resolved): a plain assertion failure, not an import error.
    assert [t.outcome for t in run.tests] == ["failed"] and not run.collection_errors
    assert any(str(python) in n for n in run.notes)
    fixed = "```python\ndef with_tax(amount):\n    return amount * RATE\n```\n"
    result = fix(project, ScriptedBackend([fixed]), config=CONFIG)
    assert result.status == "fixed", result.attempts
    assert any(str(python) in n for n in result.notes)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX venv layout")
def test_a_venv_without_pytest_is_passed_over_with_a_note(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    make_venv(project / "venv", with_pytest=False)
    found = find_project_python(project)
    assert found.python == sys.executable
    assert (
        found.note
        == f"{project / 'venv' / 'bin' / 'python'} has no pytest: tests run with {sys.executable}"
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX venv layout")
def test_a_venv_above_the_root_counts_but_not_one_in_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = make_venv(tmp_path / "repo" / ".venv", with_pytest=True)
    nested = tmp_path / "repo" / "services" / "api"
    nested.mkdir(parents=True)
    assert find_project_python(nested).python == str(python)
    monkeypatch.setenv("HOME", str(tmp_path / "repo"))
    assert find_project_python(nested).python == sys.executable


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX venv layout")
def test_explicit_python_and_activated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_project_python(tmp_path, "/opt/py/bin/python3").python == "/opt/py/bin/python3"
    # cyclefix's own environment, activated, is simply the default...
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)
    assert find_project_python(tmp_path).python == sys.executable
    assert find_project_python(tmp_path).note == ""
    # ...and does not hide the project's own venv.
    python = make_venv(tmp_path / ".venv", with_pytest=True)
    assert find_project_python(tmp_path).python == str(python)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX venv layout")
def test_a_broken_venv_interpreter_is_passed_over_with_a_note(tmp_path: Path) -> None:
    venv = tmp_path / "proj" / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /nowhere\n")
    (venv / "bin" / "python").write_text("#!/bin/sh\nexit 1\n")
    (venv / "bin" / "python").chmod(0o755)
    found = find_project_python(tmp_path / "proj")
    assert found.python == sys.executable
    assert found.note.startswith(f"{venv / 'bin' / 'python'} does not start (exit status 1)")
