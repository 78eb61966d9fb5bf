"""Which files are tests, and which folders hold no project code: one answer for all of cyclefix.

Three questions with three answers, each under its own name:
    is_test_file   pytest's default pattern, ``test_*.py`` or ``*_test.py``: the files to run
    is_pytest_file a file pytest itself imports as test code: a test file or a ``conftest.py``
    is_test_code   anything on the tests' side, helpers too: a pytest file or a file under a
                   ``tests/`` or ``test/`` folder (never a place to look for the bug)

The plugin and the tracer use it in the user's interpreter from the runner's private folder,
so this module is standard library only and runs on Python 3.9: annotations stay strings.
"""

from __future__ import annotations

from pathlib import PurePath, PurePosixPath

# Folders whose files are never the project's own code: environments, installed packages,
# version control data.
FOREIGN_DIRS = frozenset(
    {".venv", "venv", ".tox", ".nox", "site-packages", "dist-packages", "node_modules", ".git"}
)
# Folders that hold no project tests or sources: the foreign ones, other environments and
# version control data, caches and build output. Never walked, copied or selected from.
SKIP_DIRS = FOREIGN_DIRS | frozenset(
    {
        ".hg", ".svn", "env", ".env", "__pycache__", "build", "dist", ".eggs", ".mypy_cache",
        ".pytest_cache", ".ruff_cache", ".hypothesis",
    }
)  # fmt: skip
# Folders whose every file belongs to the tests (helpers, fixtures, data).
TEST_DIRS = frozenset({"tests", "test"})


def _parts(path: str | PurePath) -> tuple[str, ...]:
    if isinstance(path, PurePath):
        return path.parts
    return PurePosixPath(path.replace("\\", "/")).parts


def is_test_file(path: str | PurePath) -> bool:
    """pytest's default test-file pattern: ``test_*.py`` or ``*_test.py``."""
    parts = _parts(path)
    name = parts[-1] if parts else ""
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def is_pytest_file(path: str | PurePath) -> bool:
    """A file pytest imports as test code itself: a test file or a ``conftest.py``."""
    parts = _parts(path)
    return bool(parts) and (parts[-1] == "conftest.py" or is_test_file(path))


def is_test_code(path: str | PurePath) -> bool:
    """A file on the tests' side: a pytest file, or any file under a ``tests/`` or ``test/``
    folder (a project-relative path; its helpers are not where a bug is looked for)."""
    parts = _parts(path)
    return is_pytest_file(path) or any(part in TEST_DIRS for part in parts[:-1])


def is_skipped_dir(name: str) -> bool:
    """A folder name to leave out of every walk: SKIP_DIRS or an ``*.egg-info`` folder."""
    return name in SKIP_DIRS or name.endswith(".egg-info")
