"""Keep an applied fix the way developers keep changes: a git commit, or staged for one.

Checked before anything is written: every file the fix changes is tracked and has no
uncommitted change, so the commit holds the fix and nothing else of the user's.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cyclefix.errors import CyclefixError
from cyclefix.refine.apply import apply_fix
from cyclefix.refine.types import FixResult

GIT_TIMEOUT = 30.0


class GitError(CyclefixError):
    """git refused, or the files are not in a state a commit of the fix alone can be made from."""


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took over {GIT_TIMEOUT:g}s") from None
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise GitError(f"git {args[0]} failed: {message[-1] if message else done.returncode}")
    return done.stdout


def repository_of(path: Path) -> Path:
    """The top folder of the git repository holding `path`; GitError when there is none."""
    folder = path if path.is_dir() else path.parent
    try:
        return Path(_git(folder, "rev-parse", "--show-toplevel").strip())
    except GitError:
        raise GitError(f"{folder} is not in a git repository") from None


def changed_paths(result: FixResult) -> list[Path]:
    return [change.path for change in result.changes]


def check_committable(result: FixResult) -> Path:
    """The repository, once every file the fix changes is tracked and clean; else GitError."""
    paths = changed_paths(result)
    if not paths:
        raise GitError("the fix changes no file")
    return check_clean(paths)


def check_clean(paths: Sequence[Path]) -> Path:
    """The repository of `paths`, once each is tracked and has no uncommitted change."""
    repo = repository_of(paths[0])
    names = [str(p) for p in paths]
    tracked = set(_git(repo, "ls-files", "--full-name", "--", *names).splitlines())
    for path in paths:
        if _relative(repo, path) not in tracked:
            raise GitError(f"{path} is not tracked by git; add it first or apply without git")
    status = _git(repo, "status", "--porcelain", "--", *names)
    if status.strip():
        dirty = ", ".join(line[3:] for line in status.splitlines())
        raise GitError(
            f"uncommitted changes in {dirty}: commit or stash them first, so the commit holds "
            "the fix alone (nothing was applied)"
        )
    return repo


def _relative(repo: Path, path: Path) -> str:
    return path.resolve().relative_to(repo.resolve()).as_posix()


def tests_made_to_pass(result: FixResult) -> list[str]:
    """Node ids that failed before the fix and pass with it."""
    before = {case.nodeid for case in result.initial_run.failures} if result.initial_run else set()
    passed_after = {c.nodeid for c in result.final_run.passed} if result.final_run else set()
    return sorted(nodeid for nodeid in before if nodeid in passed_after)


def commit_message(result: FixResult) -> str:
    """Subject naming the tests the fix made pass; the body lists them all."""
    made_pass = tests_made_to_pass(result)
    if not made_pass:
        subject = "Fix failing tests (cyclefix)"
    elif len(made_pass) == 1:
        subject = f"Fix {made_pass[0]} (cyclefix)"
    else:
        subject = f"Fix {len(made_pass)} failing tests (cyclefix)"
    total = len(result.final_run.tests) if result.final_run else 0
    body = [
        "Tests that now pass:",
        *(f"- {nodeid}" for nodeid in made_pass),
        "",
        f"Verified by cyclefix: all {total} selected tests pass; model {result.model}.",
    ]
    return subject + "\n\n" + "\n".join(body) + "\n"


def stage(repo: Path, paths: Sequence[Path]) -> None:
    _git(repo, "add", "--", *(str(p) for p in paths))


def commit(repo: Path, result: FixResult) -> str:
    """Commit the fixed files alone (other staged work stays staged); the new commit's id."""
    paths = [str(p) for p in changed_paths(result)]
    _git(repo, "add", "--", *paths)
    _git(repo, "commit", "--quiet", "--only", "-m", commit_message(result), "--", *paths)
    return _git(repo, "rev-parse", "--short", "HEAD").strip()


@dataclass(frozen=True)
class KeptFix:
    written: tuple[Path, ...]  # the files the fix was written to
    git: str  # what git did, in words ("" when nothing)


def apply_and_keep(result: FixResult, git_on_apply: str) -> KeptFix:
    """Write the fix, then commit or stage it (the gitOnApply setting: "commit", "stage" or
    "none"). Checked before writing: a refusal (a dirty or untracked file, no repository)
    raises GitError and leaves every file as it was."""
    if git_on_apply == "none":
        return KeptFix(apply_fix(result), "")
    repo = check_committable(result)
    written = apply_fix(result)
    if git_on_apply == "stage":
        stage(repo, changed_paths(result))
        return KeptFix(written, "staged the fixed files (git add)")
    commit_id = commit(repo, result)
    return KeptFix(written, f"committed {commit_id}: {commit_message(result).splitlines()[0]}")
