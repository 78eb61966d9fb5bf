"""A real editor: Emacs in batch mode with eglot drives `cyclefix serve` (when installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from server_support import FIXTURES, LOG_DIR, copy_project, pytest_passes, scripted

EMACS = shutil.which("emacs")


def _has_eglot() -> bool:
    if EMACS is None:
        return False
    probe = subprocess.run(
        [EMACS, "--batch", "-q", "--eval", "(kill-emacs (if (require 'eglot nil t) 0 1))"],
        capture_output=True,
        timeout=60,
    )
    return probe.returncode == 0


@pytest.mark.timeout(300)
@pytest.mark.skipif(not _has_eglot(), reason="needs emacs with eglot (apt: emacs-nox elpa-eglot)")
def test_eglot_saves_sees_diagnostics_and_applies_the_verified_fix(tmp_path: Path) -> None:
    assert EMACS is not None
    project = copy_project(tmp_path)
    result_file = tmp_path / "emacs-result.txt"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(tmp_path),  # no user init, no eglot state from elsewhere
        "CYCLEFIX_PROJECT": str(project),
        "CYCLEFIX_PYTHON": sys.executable,
        "CYCLEFIX_MODEL": scripted("median_fix.json"),
        "CYCLEFIX_LOG": str(LOG_DIR / "emacs-server.log"),
        "CYCLEFIX_RESULT": str(result_file),
    }
    proc = subprocess.run(
        [EMACS, "--batch", "-q", "-l", str(FIXTURES / "emacs" / "apply_fix.el")],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result_file.exists(), f"emacs wrote no result: {proc.stdout}\n{proc.stderr}"
    results = dict(
        line.split("=", 1) for line in result_file.read_text().splitlines() if "=" in line
    )
    assert "error" not in results, results
    assert results.get("done") == "t", results
    assert results["connected"] == "t"
    assert results["suspect_diagnostic"] == "t", results
    assert results["fix_offered"] == "t", results
    assert results["actions"] == "Apply verified fix|Show fix as diff|Refine again"
    # eglot announces no codeAction/resolve: the edit comes inside the action.
    assert results["edit_in_action"] == "t"
    assert results["applied"] == "t", results
    assert results["cleared"] == "t", results
    check = pytest_passes(project)
    assert check.returncode == 0, check.stdout
