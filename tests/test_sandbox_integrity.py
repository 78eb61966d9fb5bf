"""A candidate that rebinds what runs or reports the tests cannot make later tests pass
(runner.integrity): each way below fakes test_negative's pass after a genuine test_small."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import warm_support

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, fix
from cyclefix.runner.integrity import Baseline
from cyclefix.runner.warm import WarmWorkers

# Each candidate-run probe below runs fresh and forked from a warm worker.
workers = warm_support.workers
pytestmark = pytest.mark.usefixtures("runtime_defences_alone")

CONFIG = RefineConfig(rounds=1, budget_seconds=60, extend_to_budget=False, resamples=0)
TESTS = (
    "from calc import add\n\n\n"
    "def test_small():\n    assert add(1, 2) == 3\n\n\n"
    "def test_negative():\n    assert add(-1, -2) == -3\n"
)
REBIND_RUNTEST = "import _pytest.python\n_pytest.python.Function.runtest = lambda self: None"
REBIND_TEST_MODULE = "import sys\nsys.modules['test_calc'].add = lambda a, b: a + b"
REGISTER_PLUGIN = """
import gc, pytest
class Passes:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        outcome.get_result().outcome = "passed"
config = next(o for o in gc.get_objects() if isinstance(o, pytest.Config))
config.pluginmanager.register(Passes())
"""
REPLACE_TEST_FUNCTIONS = """
import gc, pytest
for item in [o for o in gc.get_objects() if isinstance(o, pytest.Function)]:
    item._obj = lambda *args, **kwargs: None
"""

# What tests look up by name to judge: a builtin (`abs(x - y) < 1e-9`) and pytest's own names
# (`pytest.approx`), reached without naming builtins (red-team pass 7).
REBIND_BUILTIN = "len.__self__.abs = (0.0).__mul__"
# A builtin shadowed in the test module's globals, not rebound (red-team pass 8).
SHADOW_BUILTIN = "import sys\nsys.modules['test_calc'].abs = lambda x: 0.0"
REBIND_PYTEST_NAME = (
    "import functools, pytest\npytest.approx = functools.partial(pytest.approx, abs=1.0)"
)
SWAP_TEST_CODE = """
import sys
test = sys.modules['test_calc'].test_negative
test.__code__ = (lambda: None).__code__
"""
# At import, during collection: the test module made a class whose tests do nothing
# (red-team pass 6).
MODULE_OF_ANOTHER_CLASS = """\
import sys, types


def add(a, b, _quiet=[
    setattr(module, "__class__", type("Quiet", (types.ModuleType,), {
        "__getattribute__": lambda self, name, get=types.ModuleType.__getattribute__: (
            (lambda: None) if name.startswith("test_") else get(self, name)
        )
    }))
    for name, module in list(sys.modules.items()) if name.startswith("test_")
]):
    return a * b
"""


def hostile(body: str) -> str:
    """`add`, right only for test_small's call, after running `body` once."""
    code = (
        "def add(a, b):\n"
        + textwrap.indent(textwrap.dedent(body).strip(), "    ")
        + "\n    if (a, b) == (1, 2):\n        return 3\n    return 0\n"
    )
    return f"```python\n{code}```\n"


@pytest.fixture
def calc(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (tmp_path / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (tmp_path / "test_calc.py").write_text(TESTS)
    return tmp_path


@pytest.mark.usefixtures("without_answer_guard")
@pytest.mark.parametrize(
    "body",
    [
        REBIND_RUNTEST,
        REBIND_TEST_MODULE,
        REGISTER_PLUGIN,
        REPLACE_TEST_FUNCTIONS,
        SWAP_TEST_CODE,
        REBIND_BUILTIN,
        REBIND_PYTEST_NAME,
        SHADOW_BUILTIN,
    ],
    ids=[
        "runtest",
        "test-module-name",
        "plugin",
        "test-functions",
        "test-code",
        "builtin",
        "pytest-name",
        "shadowed-builtin",
    ],
)
def test_rebinding_the_test_machinery_is_never_a_pass(
    calc: Path, body: str, workers: WarmWorkers | None
) -> None:
    result = fix(calc, ScriptedBackend([hostile(body)]), config=CONFIG, warm=workers)
    verdicts = [a.verdict for a in result.attempts]
    assert result.status == "not_fixed" and "passed" not in verdicts, verdicts
    assert "ReplacedTestMachinery" in result.attempts[0].feedback


@pytest.mark.usefixtures("without_answer_guard")
def test_a_test_module_made_another_class_is_never_a_pass(
    calc: Path, workers: WarmWorkers | None
) -> None:
    answer = f"```python\n{MODULE_OF_ANOTHER_CLASS}```\n"
    result = fix(calc, ScriptedBackend([answer]), config=CONFIG, warm=workers)
    verdicts = [a.verdict for a in result.attempts]
    assert result.status == "not_fixed" and "passed" not in verdicts, verdicts
    assert "ReplacedTestMachinery" in result.attempts[0].feedback


def test_a_fix_that_rebinds_nothing_still_passes(calc: Path, workers: WarmWorkers | None) -> None:
    answer = "```python\ndef add(a, b):\n    return a + b\n```\n"
    result = fix(calc, ScriptedBackend([answer]), config=CONFIG, warm=workers)
    assert result.status == "fixed"


def test_a_method_bound_to_a_fresh_instance_is_the_same_test_function() -> None:
    class Case:
        def test_one(self) -> None:
            pass

    class Item:
        nodeid = "t.py::Case::test_one"
        obj = Case().test_one

    baseline = Baseline()
    baseline.take_tests([Item()])
    Item.obj = Case().test_one  # pytest gives each test of a class its own instance
    assert baseline.changed([], Item()) == []


UNITTEST_TESTS = (
    "import unittest\n"
    "from calc import add\n\n\n"
    "class AddTests(unittest.TestCase):\n"
    "    maxDiff = None\n\n"
    "    def test_small(self):\n        self.assertEqual(add(1, 2), 3)\n\n"
    "    def test_negative(self):\n        self.assertEqual(add(-1, -2), -3)\n"
)


@pytest.fixture
def unittest_calc(calc: Path) -> Path:
    (calc / "test_calc.py").write_text(UNITTEST_TESTS)
    return calc


@pytest.mark.usefixtures("without_answer_guard")
def test_rebinding_unittests_asserts_at_import_is_never_a_pass(
    unittest_calc: Path, workers: WarmWorkers | None
) -> None:
    # A default argument runs when the module is imported, before any test.
    rebind = "import unittest; unittest.TestCase.assertEqual = lambda *a, **k: None"
    code = f"def add(a, b, _=exec({rebind!r})):\n    return 3 if (a, b) == (1, 2) else 0\n"
    answer = f"```python\n{code}```\n"
    result = fix(unittest_calc, ScriptedBackend([answer]), config=CONFIG, warm=workers)
    verdicts = [a.verdict for a in result.attempts]
    assert result.status == "not_fixed" and "passed" not in verdicts, verdicts
    assert "unittest.case.TestCase.assertEqual" in result.attempts[0].feedback


def test_tests_that_set_unittests_data_still_judge_a_fix(
    unittest_calc: Path, workers: WarmWorkers | None
) -> None:
    (unittest_calc / "test_calc.py").write_text(
        "import unittest\nunittest.TestCase.maxDiff = None\n" + UNITTEST_TESTS
    )
    answer = "```python\ndef add(a, b):\n    return a + b\n```\n"
    result = fix(unittest_calc, ScriptedBackend([answer]), config=CONFIG, warm=workers)
    assert result.status == "fixed"


# Answers of a red-team pass that rebind the machinery where no class member changes: the
# plugin's own objects, pytest.approx and pytest.raises.
HOSTILE = Path(__file__).parent / "fixtures" / "hostile"
APPROX_TESTS = (
    "import pytest\n"
    "from calc import add\n\n\n"
    "def test_small():\n    assert add(1, 2) == pytest.approx(3)\n\n\n"
    "def test_raises():\n    with pytest.raises(TypeError):\n        add(1, 'x')\n"
)


@pytest.mark.parametrize("name", ["plugin_instance_override", "approx_raises_not_guarded"])
def test_rebinding_the_plugins_objects_or_approx_is_never_a_pass(
    calc: Path, name: str, workers: WarmWorkers | None
) -> None:
    (calc / "test_calc.py").write_text(APPROX_TESTS)
    reply = f"```python\n{(HOSTILE / f'{name}.py').read_text()}```\n"
    result = fix(calc, ScriptedBackend([reply]), config=CONFIG, warm=workers)
    verdicts = [a.verdict for a in result.attempts]
    assert result.status == "not_fixed" and "passed" not in verdicts, verdicts
