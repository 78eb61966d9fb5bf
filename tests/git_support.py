"""A throwaway git repository for tests of committing and staging fixes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

# An identity for commits made in tests, whatever the machine's git config says.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with the test identity; its standard output."""
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ENV},
    ).stdout


def commit_all(repo: Path, message: str = "start") -> None:
    """Make `repo` a git repository whose one commit holds every file in it."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", message)
