"""Tests that pass in the user's own run but fail only in the sandbox do not sink every candidate.

The user's run is in place and unconfined; candidates run confined on a scratch copy. A test
that fails there on the user's unchanged code too (checked once per fix, on a fresh copy no
candidate ran in) no longer judges the fix, and the user is told. Everything else still does:
a candidate that breaks a passing test is "regressed", whatever it leaves in the scratch copy.
Projects are made in tmp_path; candidates come from the scripted backend (no model).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from project_support import make_project

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, fix
from cyclefix.refine import types as refine_types
from cyclefix.refine.report import fix_result_to_dict
from cyclefix.refine.sandbox_only import BaseFailures, sandbox_only_note
from cyclefix.refine.types import FixResult, RefineEvent
from cyclefix.runner import TestRunResult
from cyclefix.runner import confine as confine_module
from cyclefix.runner.results import TestCaseResult

CONFIG = RefineConfig(rounds=2, budget_seconds=120, extend_to_budget=False, per_test_timeout=2.0)

BUGGY = "def add(a, b):\n    return a - b\n"
ADD_TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
RIGHT = "```python\ndef add(a, b):\n    return a + b\n```\n"
STILL_WRONG = "```python\ndef add(a, b):\n    return a * b\n```\n"
# Passes test_add and breaks add(5, 0) == 5, which passes on the user's code.
BREAKS = "```python\ndef add(a, b):\n    return 3 if (a, b) == (1, 2) else 0\n```\n"

# Reads a file of the project that the scratch copy leaves out (build output).
LEFT_OUT = "sandbox_only/test_fixture.py::test_fixture"
LEFT_OUT_TEST = (
    "from pathlib import Path\n\n\n"
    "def test_fixture():\n"
    "    assert (Path(__file__).parent.parent / 'build' / 'fixture.txt').read_text() == 'data'\n"
)
ADD_ZERO = "test_more.py::test_add_zero"
ADD_ZERO_TEST = "from calc import add\n\n\ndef test_add_zero():\n    assert add(5, 0) == 5\n"
needs_landlock = pytest.mark.skipif(
    confine_module.landlock_abi() < 1, reason="this kernel has no Landlock"
)


def with_left_out_fixture(root: Path, extra: dict[str, str] | None = None) -> Path:
    """A bug in `add`, and a test that passes in place but cannot find its fixture confined."""
    files = {
        "calc.py": BUGGY,
        "test_calc.py": ADD_TESTS,
        "build/fixture.txt": "data",
        "sandbox_only/test_fixture.py": LEFT_OUT_TEST,
        **(extra or {}),
    }
    return make_project(root, files)


def fix_with(
    root: Path, replies: list[str], tests: list[str] | None = None
) -> tuple[FixResult, list[refine_types.TestsStarted]]:
    """The fix, and every test run it started, in order."""
    started: list[refine_types.TestsStarted] = []

    def record(event: RefineEvent) -> None:
        if isinstance(event, refine_types.TestsStarted):
            started.append(event)

    result = fix(root, ScriptedBackend(replies), tests=tests, config=CONFIG, on_event=record)
    return result, started


def base_checks_of(started: list[refine_types.TestsStarted], nodeid: str) -> int:
    """The runs of `nodeid` alone: the checks on the user's code (candidates run a selection)."""
    return sum(1 for event in started if event.scratch and event.tests == (nodeid,))


# ---------------------------------------------------------------- excused


def test_a_test_failing_only_in_the_sandbox_does_not_stop_a_correct_fix(tmp_path: Path) -> None:
    root = with_left_out_fixture(tmp_path / "calc")
    result, _ = fix_with(root, [RIGHT])
    assert result.status == "fixed", result.rounds
    assert result.attempts[0].verdict == "passed"
    assert result.sandbox_only == (LEFT_OUT,)
    assert result.final_run is not None and result.final_run.all_passed
    assert LEFT_OUT not in {t.nodeid for t in result.final_run.tests}


def test_the_user_is_told_which_tests_could_not_judge_the_fix(tmp_path: Path) -> None:
    result, _ = fix_with(with_left_out_fixture(tmp_path / "calc"), [RIGHT])
    note = (
        f"1 test fails in the sandbox even with your code unchanged, so it could not judge "
        f"the fix: {LEFT_OUT} (it passes in your own run)"
    )
    assert result.notes.count(note) == 1
    assert fix_result_to_dict(result)["tests"]["sandbox_only"] == [LEFT_OUT]


@needs_landlock
def test_a_test_writing_outside_the_project_does_not_stop_a_correct_fix(tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "log.txt"
    outside.parent.mkdir()
    writes = (
        f"def test_log():\n    with open({str(outside)!r}, 'a') as log:\n        log.write('x')\n"
    )
    root = make_project(
        tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": ADD_TESTS, "test_log.py": writes}
    )
    result, _ = fix_with(root, [RIGHT])
    assert result.status == "fixed", result.rounds
    assert result.sandbox_only == ("test_log.py::test_log",)


def test_each_excused_test_is_checked_on_the_users_code_once_per_fix(tmp_path: Path) -> None:
    root = with_left_out_fixture(tmp_path / "calc")
    result, started = fix_with(root, [STILL_WRONG, RIGHT])
    assert [a.verdict for a in result.attempts] == ["tests_failed", "passed"]
    # Both candidates' runs failed it; the user's code was run for it once.
    assert base_checks_of(started, LEFT_OUT) == 1
    assert result.sandbox_only == (LEFT_OUT,)


def test_a_run_stopped_at_an_excused_test_is_judged_again_on_the_rest(tmp_path: Path) -> None:
    """A real suite: the candidate's run stops at its first failure, here the excused test;
    the tests after it must still run before the candidate can pass."""
    slow = ADD_ZERO_TEST.replace("from calc", "import time\n\nfrom calc").replace(
        "    assert", "    time.sleep(1.1)\n    assert"
    )
    root = with_left_out_fixture(tmp_path / "calc", {"test_more.py": slow})
    result, _ = fix_with(root, [BREAKS, RIGHT])
    assert [a.verdict for a in result.attempts] == ["regressed", "passed"]
    assert ADD_ZERO in result.attempts[0].detail
    assert result.sandbox_only == (LEFT_OUT,)


def test_tests_that_hang_only_in_the_sandbox_do_not_hide_the_tests_after_them(
    tmp_path: Path,
) -> None:
    """A candidate's run stops after two hangs; two excused ones must not end it before the
    test this candidate breaks has run."""
    waits = (
        "import time\nfrom pathlib import Path\n\n\n"
        "def wait_for_fixture():\n"
        "    while not (Path(__file__).parent / 'build' / 'fixture.txt').exists():\n"
        "        time.sleep(0.05)\n\n\n"
        "def test_first():\n    wait_for_fixture()\n\n\n"
        "def test_second():\n    wait_for_fixture()\n"
    )
    root = make_project(
        tmp_path / "calc",
        {
            "calc.py": BUGGY,
            "test_calc.py": ADD_TESTS,
            "build/fixture.txt": "data",
            "test_hang.py": waits,
            "test_more.py": ADD_ZERO_TEST,
        },
    )
    result, _ = fix_with(root, [BREAKS])
    assert result.attempts[0].verdict == "regressed"
    assert ADD_ZERO in result.attempts[0].detail
    assert result.sandbox_only == ("test_hang.py::test_first", "test_hang.py::test_second")


# ---------------------------------------------------------------- still judged


def test_a_candidate_that_breaks_a_passing_test_is_still_regressed(tmp_path: Path) -> None:
    root = with_left_out_fixture(tmp_path / "calc", {"test_more.py": ADD_ZERO_TEST})
    result, started = fix_with(root, [BREAKS])
    assert result.status == "not_fixed"
    assert result.attempts[0].verdict == "regressed"
    assert ADD_ZERO in result.attempts[0].detail and LEFT_OUT not in result.attempts[0].detail
    assert ADD_ZERO not in result.sandbox_only
    assert base_checks_of(started, ADD_ZERO) <= 1


def test_a_file_a_candidate_plants_in_the_scratch_copy_gets_no_test_excused(
    tmp_path: Path,
) -> None:
    """The candidate's own run makes a passing test fail; were the check made in the scratch
    copy it ran in, the test would fail there too and be excused."""
    guarded = (
        "from pathlib import Path\n\n\ndef test_clean():\n    assert not Path('poison').exists()\n"
    )
    # One line: no part of it is a fix on its own (refine.partial).
    hostile = "```python\ndef add(a, b):\n    return open('poison', 'w').close() or a + b\n```\n"
    root = make_project(
        tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": ADD_TESTS, "test_guard.py": guarded}
    )
    result, started = fix_with(root, [hostile])
    assert result.status == "not_fixed" and result.sandbox_only == ()
    assert result.attempts[0].verdict == "regressed"
    assert base_checks_of(started, "test_guard.py::test_clean") == 1  # it was checked, and held


def test_the_failing_tests_a_fix_is_for_are_never_excused(tmp_path: Path) -> None:
    """test_add fails confined whatever `add` does (it needs the left-out fixture): it failed
    in the user's run, so it is what the fix must make pass, not a test to excuse."""
    needs_fixture = (
        ADD_TESTS.replace("def test_add():\n", "from pathlib import Path\n\n\ndef test_add():\n")
        + "    assert (Path(__file__).parent / 'build' / 'fixture.txt').read_text() == 'data'\n"
    )
    root = with_left_out_fixture(tmp_path / "calc", {"test_calc.py": needs_fixture})
    result, _ = fix_with(root, [RIGHT])
    assert result.status == "not_fixed" and result.sandbox_only == (LEFT_OUT,)
    assert result.attempts[0].verdict == "tests_failed"


# ---------------------------------------------------------------- with explicit --tests


def test_with_explicit_tests_breaking_another_test_of_the_module_is_regressed(
    tmp_path: Path,
) -> None:
    root = make_project(
        tmp_path / "calc",
        {"calc.py": BUGGY, "test_calc.py": ADD_TESTS, "test_more.py": ADD_ZERO_TEST},
    )
    result, _ = fix_with(root, [BREAKS, RIGHT], tests=["test_calc.py::test_add"])
    assert [a.verdict for a in result.attempts] == ["regressed", "passed"]
    assert "assert add(5, 0) == 5" in result.attempts[0].detail


def test_with_explicit_tests_a_test_failing_on_the_users_code_is_not_counted_as_broken(
    tmp_path: Path,
) -> None:
    already_failing = ADD_ZERO_TEST + "\n\ndef test_unrelated_bug():\n    assert add(0, 0) == 1\n"
    root = make_project(
        tmp_path / "calc",
        {"calc.py": BUGGY, "test_calc.py": ADD_TESTS, "test_more.py": already_failing},
    )
    result, _ = fix_with(root, [RIGHT], tests=["test_calc.py::test_add"])
    assert result.status == "fixed", result.rounds
    # It was not in the user's run: nothing to tell about it.
    assert result.sandbox_only == ()


# ---------------------------------------------------------------- the check itself


def _run(failing: set[str], nodeids: tuple[str, ...], cancelled: bool = False) -> TestRunResult:
    tests = tuple(TestCaseResult(n, "failed" if n in failing else "passed") for n in nodeids)
    return TestRunResult(Path("."), tests, exit_code=1, duration=0.1, cancelled=cancelled)


def test_a_test_the_base_run_passes_is_not_excused_and_not_run_again() -> None:
    runs: list[tuple[str, ...]] = []

    def on_base(nodeids: tuple[str, ...]) -> TestRunResult:
        runs.append(nodeids)
        return _run({"t::a"}, nodeids)

    base = BaseFailures(on_base)
    assert base.failing(["t::a", "t::b"]) == {"t::a"}
    assert base.failing(["t::b", "t::a"]) == {"t::a"}
    assert runs == [("t::a", "t::b")]


def test_once_a_checked_test_passes_on_the_base_the_rest_need_no_run() -> None:
    runs: list[tuple[str, ...]] = []

    def on_base(nodeids: tuple[str, ...]) -> TestRunResult:
        runs.append(nodeids)
        return _run({"t::0"}, nodeids)

    nodeids = [f"t::{i}" for i in range(12)]
    assert BaseFailures(on_base).failing(nodeids) == {"t::0"}
    assert len(runs) == 1 and len(runs[0]) < len(nodeids)


def test_a_stopped_base_run_excuses_nothing() -> None:
    base = BaseFailures(lambda nodeids: _run(set(nodeids), nodeids, cancelled=True))
    assert base.failing(["t::a"]) == frozenset()


def test_a_base_run_that_could_not_be_made_excuses_nothing() -> None:
    assert BaseFailures(lambda nodeids: None).failing(["t::a"]) == frozenset()


def test_the_note_names_a_few_tests_and_counts_the_rest() -> None:
    note = sandbox_only_note([f"t.py::test_{i}" for i in range(5)])
    assert note.startswith("5 tests fail in the sandbox even with your code unchanged")
    assert "t.py::test_2 and 2 more (they pass in your own run)" in note
    assert sandbox_only_note([]) == ""


def test_a_fix_without_sandbox_only_failures_says_nothing_of_them(tmp_path: Path) -> None:
    root = make_project(tmp_path / "calc", {"calc.py": BUGGY, "test_calc.py": ADD_TESTS})
    result, started = fix_with(root, [RIGHT])
    assert result.status == "fixed" and result.sandbox_only == ()
    assert not any("sandbox even with" in n for n in result.notes)
    assert len(started) == 2  # the user's run and the candidate's: no check was needed


# ---------------------------------------------------------------- tests sharing a node id

# A plugin's items may share a node id (docopt-ng's `testcases(15)` is one per usage case):
# here `cases.cases::case` holds one item that passes on any code and one that needs
# add(2, 2) == 4.
SHARED_ID_CONFTEST = """
import pytest
from calc import add


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".cases":
        return CasesFile.from_parent(parent, path=file_path)


class CasesFile(pytest.File):
    def collect(self):
        for line in self.path.read_text().split():
            yield CaseItem.from_parent(self, name="case", expected=int(line))


class CaseItem(pytest.Item):
    def __init__(self, *, expected, **kwargs):
        super().__init__(**kwargs)
        self.expected = expected
        self.funcargs = {}  # pytest-lsp's runtest wrapper, installed here, needs it

    def runtest(self):
        assert self.expected == 0 or add(2, 2) == self.expected
"""


def test_a_node_id_shared_by_a_failing_item_did_not_pass_before(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {
            "calc.py": BUGGY,
            "test_calc.py": ADD_TESTS,
            "conftest.py": SHARED_ID_CONFTEST,
            "cases.cases": "0\n4\n",
        },
    )
    only_test_add = "```python\ndef add(a, b):\n    return 3 if (a, b) == (1, 2) else a - b\n```\n"
    result, _ = fix_with(root, [only_test_add, RIGHT])
    # That answer fails `cases.cases::case` as the user's code does: not a fix, and not
    # excused as failing "only in the sandbox".
    assert [a.verdict for a in result.attempts][:2] == ["tests_failed", "passed"]
    assert result.status == "fixed"
    assert not any("sandbox" in note for note in result.notes)
