"""A failing test that inspects an exception it caught: the record says where project code
raised it, and that function is the first suspect."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyclefix.refine.check import suspects
from cyclefix.runner import run_tests
from cyclefix.runner.results import TestRunResult

ERRORS = (
    "class BadChar(ValueError):\n"  # 1
    "    def __init__(self, message, position):\n"  # 2
    "        super().__init__(message)\n"  # 3
    "        self.position = position\n"  # 4
    "\n"  # 5
    "def check(text):\n"  # 6
    "    for index, char in enumerate(text):\n"  # 7
    "        if char == '_':\n"  # 8
    "            raise BadChar('no underscores', position=index + 2)\n"  # 9
    "    return text\n"  # 10
    "\n"  # 11
    "def label(text):\n"  # 12
    "    return check(text.strip().lower())\n"  # 13
    "\n"  # 14
    "def describe(error):\n"  # 15
    "    return f'{error} at {error.position}'\n"  # 16
)
TESTS = (
    "import unittest\n"
    "import pytest\n"
    "from names.errors import BadChar, describe, label\n"
    "\n"
    "class Positions(unittest.TestCase):\n"
    "    def test_position_counts_from_one(self):\n"
    "        for text, position in [('a_b', 2), ('ab_', 3)]:\n"
    "            with self.subTest(text=text):\n"
    "                with self.assertRaises(BadChar) as ctx:\n"
    "                    label(text)\n"
    "                err = ctx.exception\n"
    "                self.assertTrue(describe(err))\n"
    "                self.assertEqual(err.position, position)\n"
    "\n"
    "    def test_underscores_are_refused(self):\n"
    "        with self.assertRaises(BadChar):\n"
    "            label('a_b')\n"
    "\n"
    "    def test_clean_labels_pass(self):\n"
    "        for text in ['ab', 'Abc', ' x ']:\n"
    "            self.assertEqual(label(text), text.strip().lower())\n"
    "\n"
    "def test_pytest_raises_position():\n"
    "    with pytest.raises(BadChar) as excinfo:\n"
    "        label('x_')\n"
    "    assert excinfo.value.position == 2\n"
    "\n"
    "def test_except_clause_position():\n"
    "    try:\n"
    "        label('_x')\n"
    "    except BadChar as err:\n"
    "        caught = err\n"
    "    assert caught.position == 1\n"
    "\n"
    "def test_other_failure_after_a_catch():\n"
    "    with pytest.raises(BadChar):\n"
    "        label('a_')\n"
    "    assert label('AB') == 'AB'\n"
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TestRunResult:
    root = tmp_path_factory.mktemp("caught")
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (root / "names").mkdir()
    (root / "names" / "__init__.py").write_text("")
    (root / "names" / "errors.py").write_text(ERRORS)
    (root / "tests").mkdir()
    (root / "tests" / "test_errors.py").write_text(TESTS)
    return run_tests(root, ["tests/test_errors.py"], trace=True)


def _caught(run: TestRunResult, name: str) -> list[tuple[str, int, str]]:
    case = next(t for t in run.tests if t.nodeid.endswith(name))
    assert case.outcome == "failed"
    return [(f.path, f.line, f.function) for f in case.caught_frames]


RAISED = [("names/errors.py", 9, "check")]


def test_the_raise_site_of_what_assert_raises_caught_is_recorded(run: TestRunResult) -> None:
    assert _caught(run, "test_position_counts_from_one") == RAISED


def test_the_raise_site_of_what_pytest_raises_caught_is_recorded(run: TestRunResult) -> None:
    assert _caught(run, "test_pytest_raises_position") == RAISED


def test_the_raise_site_of_an_exception_an_except_clause_kept_is_recorded(
    run: TestRunResult,
) -> None:
    assert _caught(run, "test_except_clause_position") == RAISED


def test_a_caught_exception_the_failing_statement_does_not_name_is_no_evidence(
    run: TestRunResult,
) -> None:
    assert _caught(run, "test_other_failure_after_a_catch") == []


def test_the_function_that_raised_what_the_test_inspects_is_the_first_suspect(
    run: TestRunResult,
) -> None:
    # `describe`, which only the failing test ran, has the better spectrum score.
    failing = [t for t in run.failures if t.nodeid.endswith("test_position_counts_from_one")]
    assert suspects(run, failing)[0].qualname == "check"


def test_a_run_records_where_nothing_was_caught_without_frames(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_one():\n    assert 1 + 1 == 3\n")
    case = run_tests(tmp_path, ["test_plain.py"]).tests[0]
    assert case.outcome == "failed" and case.caught_frames == ()


def test_a_projects_own_traceback_property_never_runs_in_the_plugin(tmp_path: Path) -> None:
    (tmp_path / "sneaky.py").write_text(
        "from pathlib import Path\n\n"
        "class Sneaky(ValueError):\n"
        "    @property\n"
        "    def __traceback__(self):\n"
        "        Path(__file__).with_name('ran').write_text('yes')\n"
        "        return None\n\n"
        "def fail():\n"
        "    raise Sneaky('x')\n"
    )
    (tmp_path / "test_sneaky.py").write_text(
        "from sneaky import Sneaky, fail\n\n"
        "def test_caught():\n"
        "    try:\n        fail()\n    except Sneaky as err:\n        caught = err\n"
        "    assert caught.args == ()\n"
    )
    case = run_tests(tmp_path, ["test_sneaky.py"]).tests[0]
    assert case.outcome == "failed"
    assert [(f.path, f.function) for f in case.caught_frames] == [("sneaky.py", "fail")]
    assert not (tmp_path / "ran").exists()
