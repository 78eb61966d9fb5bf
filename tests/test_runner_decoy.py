"""A candidate's run ends with a test made to fail (runner.decoy): a run whose reports say
everything passed is believed only when they say that test failed.

Each hostile candidate below makes test_negative "pass" while `add` stays wrong, in a way no
other layer of the test process sees (the answer screen and guard are off, as a candidate that
got past them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import warm_support
from project_support import make_project

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, fix
from cyclefix.runner import Confinement, SandboxLimits, TestRunResult, run_tests, scratch_copy
from cyclefix.runner.run import UNTRUSTED_NODEID
from cyclefix.runner.warm import WarmWorkers

workers = warm_support.workers
pytestmark = pytest.mark.usefixtures("runtime_defences_alone", "without_answer_guard")

CONFIG = RefineConfig(rounds=1, budget_seconds=60, extend_to_budget=False, resamples=0)
TESTS = """\
import pytest

from calc import add


@pytest.fixture(scope="module", autouse=True)
def module_resource():
    yield


def test_small():
    assert add(1, 2) == 3


class TestSigns:
    def test_negative(self):
        assert add(-1, -2) == -3
"""
# The plugin's own writer, found through the garbage collector: a pass for every test of the
# run (as the plugin lists them for its checks), the session's end, and an exit before anything
# else runs.
FORGE_EVERY_TEST = """
import gc, os, time
for plugin in [o for o in gc.get_objects() if type(o).__name__ == "CyclefixPlugin"]:
    for nodeid in plugin.items:
        if nodeid != plugin.current:
            plugin.writer.write({"event": "start", "nodeid": nodeid})
        plugin.writer.write({"event": "test", "nodeid": nodeid, "outcome": "passed",
                             "duration": 0.001, "stdout": "", "stderr": "", "t": time.monotonic()})
    plugin.writer.write({"event": "session_finish", "exitstatus": 0})
    os._exit(0)
"""
# The same without the session's end: the process just stops after the forged passes.
FORGE_AND_STOP = FORGE_EVERY_TEST.replace("session_finish", "no_such_event")
# pytest's reports of failures made to say "passed", by a hook added to pytest's hook callers
# without registering a plugin (registering one is seen by runner.integrity).
FAILURES_REPORTED_PASSED = """
import gc, pytest
from pluggy._hooks import HookImpl
config = next(o for o in gc.get_objects() if isinstance(o, pytest.Config))
def passes(item, call):
    report = yield
    if report.failed:
        report.outcome = "passed"
    return report
options = {"wrapper": True, "hookwrapper": False, "optionalhook": False, "tryfirst": False,
           "trylast": False, "specname": None}
config.hook.pytest_runtest_makereport._add_hookimpl(HookImpl(None, "passes", passes, options))
"""


def candidate(body: str) -> str:
    """`add`, right only for test_small's call, after running `body` once."""
    code = (
        "def add(a, b, _done=[]):\n"
        "    if not _done:\n"
        "        _done.append(1)\n"
        f"        exec({body!r}, {{}})\n"
        "    return 3 if (a, b) == (1, 2) else 0\n"
    )
    return f"```python\n{code}```\n"


@pytest.fixture
def calc(tmp_path: Path) -> Path:
    files = {"calc.py": "def add(a, b):\n    return a - b\n", "test_calc.py": TESTS}
    return make_project(tmp_path / "calc", files)


def run_confined(root: Path, warm: WarmWorkers | None) -> TestRunResult:
    with scratch_copy(root) as copy:
        return run_tests(
            copy,
            limits=SandboxLimits(per_test_timeout=5.0, run_timeout=60.0),
            autoload_plugins=False,
            confinement=Confinement(root),
            warm=warm,
        )


@pytest.mark.parametrize(
    "body",
    [FORGE_EVERY_TEST, FORGE_AND_STOP, FAILURES_REPORTED_PASSED],
    ids=["forged", "forged-no-end", "reports"],
)
def test_a_run_that_reports_what_did_not_happen_is_never_a_pass(
    calc: Path, body: str, workers: WarmWorkers | None
) -> None:
    result = fix(calc, ScriptedBackend([candidate(body)]), config=CONFIG, warm=workers)
    verdicts = [a.verdict for a in result.attempts]
    assert result.status == "not_fixed" and "passed" not in verdicts, verdicts
    assert "a test made to fail was reported as" in result.attempts[0].feedback


def test_a_passing_run_reports_only_the_projects_tests(
    calc: Path, workers: WarmWorkers | None
) -> None:
    (calc / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    collected: list[int] = []
    with scratch_copy(calc) as copy:
        run = run_tests(
            copy,
            autoload_plugins=False,
            confinement=Confinement(calc),
            warm=workers,
            on_collected=collected.append,
        )
    assert run.all_passed and run.exit_code == 0, run.tests
    assert [t.nodeid for t in run.tests] == [
        "test_calc.py::test_small",
        "test_calc.py::TestSigns::test_negative",
    ]
    assert collected == [2]


def test_a_failing_run_stays_the_projects_failure(calc: Path, workers: WarmWorkers | None) -> None:
    run = run_confined(calc, workers)
    assert [(t.nodeid, t.outcome) for t in run.tests] == [
        ("test_calc.py::test_small", "failed"),
        ("test_calc.py::TestSigns::test_negative", "failed"),
    ]
    assert run.exit_code == 1


def test_the_users_own_run_has_no_decoy(calc: Path) -> None:
    (calc / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    run = run_tests(calc, autoload_plugins=False)
    assert run.all_passed and "1 skipped" not in run.output_tail
    assert UNTRUSTED_NODEID not in [t.nodeid for t in run.tests]


def test_a_fix_passes_with_every_installed_plugin_loaded(
    calc: Path, workers: WarmWorkers | None
) -> None:
    # Plugins whose hooks expect ordinary test functions (pytest-asyncio, pytest-lsp...).
    answer = "```python\ndef add(a, b):\n    return a + b\n```\n"
    result = fix(calc, ScriptedBackend([answer]), config=CONFIG, warm=workers)
    assert result.status == "fixed", [(a.verdict, a.feedback) for a in result.attempts]
