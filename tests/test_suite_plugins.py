"""The suite's children start without the test venv's plugins (conftest.py), except where a
test asks for them: a user's run still loads the plugins installed beside pytest."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyclefix.runner import run_tests

# Passes only where pytest-asyncio (installed with the test extra) is loaded.
ASYNC_TEST = (
    "import asyncio\n\nimport pytest\n\n\n"
    "@pytest.mark.asyncio\nasync def test_sleeps():\n    await asyncio.sleep(0)\n"
)


def _async_outcome(tmp_path: Path) -> str:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_async.py").write_text(ASYNC_TEST)
    run = run_tests(tmp_path)
    return {t.nodeid: t.outcome for t in run.tests}["test_async.py::test_sleeps"]


@pytest.mark.child_plugins
def test_a_run_loads_the_installed_plugins(tmp_path: Path) -> None:
    assert _async_outcome(tmp_path) == "passed"


def test_the_suites_children_start_without_them(tmp_path: Path) -> None:
    assert _async_outcome(tmp_path) != "passed"
