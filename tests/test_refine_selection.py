"""What a check hands a fix, and what a fix hands the front-ends: a Selection reused as is,
results decided without a model, and the functions each file change rewrites."""

from __future__ import annotations

import importlib
import shutil
import textwrap
from pathlib import Path

import pytest

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import FixResult, RefineConfig, check, fix, select
from cyclefix.refine.changes import rewritten_functions
from cyclefix.runner.results import TestCaseResult, TestRunResult

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONFIG = RefineConfig(rounds=2, budget_seconds=120, extend_to_budget=False, per_test_timeout=2.0)
LEAP_FIX = (
    "```python\ndef is_leap_year(year: int) -> bool:\n"
    "    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n```\n"
)


@pytest.fixture
def leap(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES / "leap_year", tmp_path / "leap_year")
    return tmp_path / "leap_year"


def _run(*outcomes: str, cancelled: bool = False) -> TestRunResult:
    cases = tuple(TestCaseResult(f"t.py::test_{i}", o) for i, o in enumerate(outcomes))  # type: ignore[arg-type]
    return TestRunResult(Path("/project"), cases, 0, 0.1, cancelled=cancelled, notes=("a note",))


def test_a_check_and_a_fix_reuse_the_selection_without_working_it_out_again(
    leap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    selection = select(leap / "calendar_utils.py", config=CONFIG)
    assert selection.root == leap and selection.tests and not selection.explicit

    def again(*args: object, **kwargs: object) -> None:
        raise AssertionError("worked out again")

    # `cyclefix.refine.check` names the function; the modules are looked up by name.
    check_module = importlib.import_module("cyclefix.refine.check")
    loop_module = importlib.import_module("cyclefix.refine.loop")
    for name in ("find_project_root", "find_project_python", "select_tests"):
        monkeypatch.setattr(check_module, name, again)
    for name in ("find_project_root", "select"):
        monkeypatch.setattr(loop_module, name, again)
    initial = check(selection, config=CONFIG)
    assert len(initial.failures) == 5
    result = fix(selection, ScriptedBackend([LEAP_FIX]), config=CONFIG, initial_run=initial)
    assert result.status == "fixed" and result.initial_tests_s == 0


def test_a_fix_names_the_functions_each_change_rewrites_at_their_lines_in_the_users_file(
    leap: Path,
) -> None:
    result = fix(leap, ScriptedBackend([LEAP_FIX]), config=CONFIG)
    (change,) = result.changes
    (target,) = change.targets
    assert (target.path, target.qualname, target.start_line) == (
        "calendar_utils.py",
        "is_leap_year",
        6,
    )
    assert target.source in change.original


def test_rewritten_functions_are_those_whose_text_changed_and_not_those_added() -> None:
    before = textwrap.dedent(
        """\
        class Stack:
            def push(self, x):
                self.items.append(x)

            def pop(self):
                return self.items.pop(0)


        def size(s):
            return len(s.items)
        """
    )
    after = before.replace("pop(0)", "pop()") + "\n\ndef peek(s):\n    return s.items[-1]\n"
    (target,) = rewritten_functions("stack.py", before, after)
    assert (target.qualname, target.start_line, target.end_line) == ("Stack.pop", 5, 6)


def test_a_run_whose_tests_all_pass_needs_no_model() -> None:
    run = _run("passed", "skipped")
    result = FixResult.without_model(run, 1.5)
    assert result is not None and result.status == "already_passing"
    assert result.final_run is run and result.seconds == 1.5 and result.notes == ("a note",)


def test_a_run_without_tests_is_an_error_without_a_model() -> None:
    result = FixResult.without_model(_run(), 0.1)
    assert result is not None and result.status == "error"
    assert result.error == "no tests found in /project"


def test_a_stopped_run_ends_as_the_caller_says_it_was_stopped() -> None:
    run = _run("failed", cancelled=True)
    assert getattr(FixResult.without_model(run, 0.1), "status", None) == "cancelled"
    stopped = FixResult.without_model(run, 0.1, stopped="not_fixed")
    assert getattr(stopped, "status", None) == "not_fixed"


def test_a_run_with_failing_tests_needs_the_model() -> None:
    assert FixResult.without_model(_run("passed", "failed"), 0.1) is None
