"""`cyclefix fix` with git: a piped diff that `git apply` takes, --apply --commit and --stage."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from git_support import GIT_ENV, commit_all, git

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LEAP_FIX = (
    "```python\ndef is_leap_year(year: int) -> bool:\n"
    "    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n```\n"
)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "leap_year"
    shutil.copytree(EXAMPLES / "leap_year", root)
    commit_all(root)
    return root


def cyclefix(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([LEAP_FIX]))
    return subprocess.run(
        [sys.executable, "-m", "cyclefix.cli", *args, "--model", f"scripted:{replies}"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **GIT_ENV},
    )


def test_piped_stdout_is_a_diff_git_apply_takes(repo: Path, tmp_path: Path) -> None:
    proc = cyclefix(tmp_path, "fix", str(repo))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("--- a/") and "Round 1" not in proc.stdout
    assert "Verified fix" in proc.stderr and "Round 1/4" in proc.stderr
    (tmp_path / "fix.diff").write_text(proc.stdout)
    git(repo, "apply", str(tmp_path / "fix.diff"))
    assert "year % 400 == 0" in (repo / "calendar_utils.py").read_text()


def test_quiet_shows_no_progress(repo: Path, tmp_path: Path) -> None:
    proc = cyclefix(tmp_path, "fix", str(repo), "-q")
    assert proc.returncode == 0, proc.stderr
    assert "Round" not in proc.stderr and "failing" not in proc.stderr
    assert "Verified fix" in proc.stderr and proc.stdout.startswith("--- a/")


def test_apply_commit_commits_the_fix_naming_the_tests_it_made_pass(
    repo: Path, tmp_path: Path
) -> None:
    proc = cyclefix(tmp_path, "fix", str(repo), "--apply", "--commit")
    assert proc.returncode == 0, proc.stderr
    assert "Committed" in proc.stderr
    message = git(repo, "log", "-1", "--format=%B")
    assert message.startswith("Fix 5 failing tests (cyclefix)")
    assert "- tests/test_calendar_utils.py::" in message
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["calendar_utils.py"]


def test_apply_commit_refuses_a_dirty_target_and_writes_nothing(repo: Path, tmp_path: Path) -> None:
    target = repo / "calendar_utils.py"
    dirty = target.read_text() + "\n# my own edit\n"
    target.write_text(dirty)
    proc = cyclefix(tmp_path, "fix", str(repo), "--apply", "--commit")
    assert proc.returncode == 2
    assert "uncommitted changes in calendar_utils.py" in " ".join(proc.stderr.split())
    assert target.read_text() == dirty
    assert git(repo, "log", "--format=%s") == "start\n"


def test_apply_stage_stages_without_committing(repo: Path, tmp_path: Path) -> None:
    proc = cyclefix(tmp_path, "fix", str(repo), "--apply", "--stage")
    assert proc.returncode == 0, proc.stderr
    assert git(repo, "diff", "--cached", "--name-only").split() == ["calendar_utils.py"]
    assert git(repo, "log", "--format=%s") == "start\n"


def test_git_on_apply_setting_in_pyproject_commits(repo: Path, tmp_path: Path) -> None:
    (repo / "pyproject.toml").write_text('[tool.cyclefix]\ngitOnApply = "commit"\n')
    git(repo, "add", "pyproject.toml")
    git(repo, "commit", "-q", "-m", "settings")
    proc = cyclefix(tmp_path, "fix", str(repo), "--apply")
    assert proc.returncode == 0, proc.stderr
    assert git(repo, "log", "-1", "--format=%s").startswith("Fix 5 failing tests")


def test_commit_without_apply_is_a_usage_error(repo: Path, tmp_path: Path) -> None:
    proc = cyclefix(tmp_path, "fix", str(repo), "--commit")
    assert proc.returncode == 2 and "add --apply" in " ".join(proc.stderr.split())


def test_a_dirty_file_given_as_path_is_refused_before_the_tests_run(
    repo: Path, tmp_path: Path
) -> None:
    target = repo / "calendar_utils.py"
    target.write_text(target.read_text() + "\n# my own edit\n")
    proc = cyclefix(tmp_path, "fix", str(target), "--apply", "--commit")
    assert proc.returncode == 2
    assert proc.stderr.startswith("cyclefix: error: uncommitted changes in calendar_utils.py")
    assert "failing" not in proc.stderr  # no test ran, no model loaded
