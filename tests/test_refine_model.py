"""The real llama.cpp runtime with the real 0.5B GGUF fixes example bugs end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cyclefix.refine import RefineConfig, check, fix, open_backend
from cyclefix.refine.types import FixResult

pytestmark = pytest.mark.model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MODEL = "qwen2.5-coder-0.5b"


@pytest.fixture(scope="module")
def backend():  # type: ignore[no-untyped-def]
    loaded = open_backend(MODEL)
    yield loaded
    loaded.close()


def _fix_example(name: str, backend, tmp_path: Path) -> FixResult:  # type: ignore[no-untyped-def]
    project = tmp_path / name
    shutil.copytree(EXAMPLES / name, project)
    return fix(project, backend, config=RefineConfig(rounds=4, budget_seconds=240))


def test_real_model_fixes_at_least_two_example_bugs(backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fixed = []
    for name in ("leap_year", "word_count", "moving_average", "inventory", "bisect_search"):
        result = _fix_example(name, backend, tmp_path)
        assert result.status in ("fixed", "not_fixed"), result.error
        # No copy ever reaches the user: a fix is verified and differs from the faulty code.
        if result.status == "fixed":
            project = tmp_path / name
            for change in result.changes:
                change.path.write_text(change.fixed)
            assert check(project).all_passed
            fixed.append(name)
        if len(fixed) >= 2:
            break
    assert len(fixed) >= 2, f"fixed only {fixed}"


def test_cli_fix_json_apply_with_real_model(tmp_path: Path) -> None:
    project = tmp_path / "word_count"
    shutil.copytree(EXAMPLES / "word_count", project)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cyclefix.cli",
            "fix",
            str(project / "words.py"),
            "--tests",
            str(project / "tests" / "test_words.py"),
            "--model",
            MODEL,
            "--json",
            "--apply",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    data = json.loads(proc.stdout)
    assert data["schema"] == "cyclefix.fix/1"
    assert data["status"] in ("fixed", "not_fixed")
    if data["status"] == "fixed":
        assert proc.returncode == 0 and data["applied"]
        assert check(project).all_passed
    else:
        assert proc.returncode == 1
        assert (project / "words.py").read_text() == (
            EXAMPLES / "word_count" / "words.py"
        ).read_text()
