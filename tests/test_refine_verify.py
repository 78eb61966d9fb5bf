"""Verification at the scale of a real suite: a candidate runs the failing tests on their own
first, and the rest of the selection only when that can change the verdict."""

from __future__ import annotations

import textwrap
from pathlib import Path

from project_support import make_project

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, fix
from cyclefix.refine import types as refine_types
from cyclefix.runner.results import TestRunResult

CONFIG = RefineConfig(rounds=2, budget_seconds=120, per_test_timeout=3.0, extend_to_budget=False)

SLOW_SUITE = {
    "calc.py": "def double(x):\n    return x + 2\n\n\ndef triple(x):\n    return 3 * x\n",
    # Ten tests that pass and take a while: what a candidate need not wait for.
    "test_slow.py": textwrap.dedent(
        """
        import time

        import pytest

        from calc import triple


        @pytest.mark.parametrize("x", range(10))
        def test_triple(x):
            time.sleep(0.15)
            assert triple(x) == 3 * x
        """
    ),
    "test_double.py": "from calc import double\n\n\ndef test_double():\n    assert double(5) == 10\n",
}

WRONG = "```python\ndef double(x):\n    return x + x + 1\n```\n"
RIGHT = "```python\ndef double(x):\n    return 2 * x\n```\n"


def candidate_runs(
    root: Path, replies: list[str]
) -> tuple[refine_types.FixResult, list[TestRunResult]]:
    """The fix, and every pytest run made on the scratch copy, in order."""
    runs: list[TestRunResult] = []

    def record(event: refine_types.RefineEvent) -> None:
        if isinstance(event, refine_types.TestsFinished) and event.scratch:
            runs.append(event.run)

    return fix(root, ScriptedBackend(replies), config=CONFIG, on_event=record), runs


def test_a_candidate_that_fixes_nothing_runs_only_the_failing_tests(tmp_path: Path) -> None:
    result, runs = candidate_runs(make_project(tmp_path / "calc", SLOW_SUITE), [WRONG, RIGHT])
    assert result.status == "fixed"
    assert runs[0].selected == ("test_double.py::test_double",) and len(runs[0].tests) == 1
    # The others are carried over from the code it set out to improve, not counted as broken.
    wrong = result.attempts[0]
    assert (wrong.verdict, wrong.tests_passed, wrong.tests_total) == ("tests_failed", 10, 11)


def test_a_candidate_that_fixes_them_is_checked_on_the_whole_selection(tmp_path: Path) -> None:
    result, runs = candidate_runs(make_project(tmp_path / "calc", SLOW_SUITE), [RIGHT])
    assert result.status == "fixed"
    failing_only, everything = runs
    assert failing_only.selected == ("test_double.py::test_double",) and failing_only.all_passed
    assert len(everything.tests) == 11 and everything.all_passed


def test_a_fix_that_breaks_another_test_is_caught_by_the_rest(tmp_path: Path) -> None:
    files = {**SLOW_SUITE, "calc.py": SLOW_SUITE["calc.py"] + "\n\nTRIPLE = triple\n"}
    breaks = "```python\ndef double(x):\n    return 2 * x\n\n\ndef triple(x):\n    return 0\n```\n"
    result, runs = candidate_runs(make_project(tmp_path / "calc", files), [breaks, RIGHT])
    assert result.status == "fixed" and result.attempts[0].verdict == "regressed"
    assert runs[0].all_passed  # the failing test alone passes ...
    assert runs[1].failures  # ... the rest, up to its first failure, does not


def test_a_quick_suite_runs_in_one_process(tmp_path: Path) -> None:
    quick = {**SLOW_SUITE, "test_slow.py": SLOW_SUITE["test_slow.py"].replace("0.15", "0")}
    result, runs = candidate_runs(make_project(tmp_path / "calc", quick), [RIGHT])
    assert result.status == "fixed"
    assert len(runs) == 1 and len(runs[0].tests) == 11


# A unittest class whose first test hands state to the next (pathspec's symlink check does).
CLASS_STATE_SUITE = {
    **SLOW_SUITE,
    "test_double.py": textwrap.dedent(
        """
        import unittest

        from calc import double


        class DoubleTest(unittest.TestCase):
            def test_1_learns_the_factor(self):
                self.__class__.factor = 2

            def test_2_doubles(self):
                self.assertEqual(double(5), self.factor * 5)
        """
    ),
}


def test_a_failing_test_runs_after_the_tests_of_its_class_that_ran_before_it(
    tmp_path: Path,
) -> None:
    result, runs = candidate_runs(make_project(tmp_path / "calc", CLASS_STATE_SUITE), [RIGHT])
    assert result.status == "fixed" and not result.sandbox_only
    assert runs[0].selected == (
        "test_double.py::DoubleTest::test_1_learns_the_factor",
        "test_double.py::DoubleTest::test_2_doubles",
    )
    assert runs[0].all_passed and len(runs[1].tests) == 12


# The failing test comes last in its class: a candidate's run of it runs the two before it.
CLASS_BEFORE_SUITE = {
    **SLOW_SUITE,
    "test_double.py": textwrap.dedent(
        """
        import time
        import unittest

        from calc import double


        class DoubleTest(unittest.TestCase):
            def test_1_two(self):
                self.assertEqual(double(2), 4)

            def test_2_slow(self):
                time.sleep(0.2)

            def test_3_five(self):
                self.assertEqual(double(5), 10)
        """
    ),
}


def test_a_candidate_that_breaks_a_test_before_the_failing_one_stops_there(
    tmp_path: Path,
) -> None:
    breaks_first = "```python\ndef double(x):\n    return x + 3\n```\n"
    project = make_project(tmp_path / "calc", CLASS_BEFORE_SUITE)
    result, runs = candidate_runs(project, [breaks_first, RIGHT])
    assert result.status == "fixed" and result.attempts[0].verdict == "regressed"
    assert [t.nodeid for t in runs[0].tests] == ["test_double.py::DoubleTest::test_1_two"]
    assert "stopped at the first failure: 2 test(s) not run" in runs[0].notes
