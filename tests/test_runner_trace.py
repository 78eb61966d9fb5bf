"""run_tests(trace=True): which project functions and lines each test executed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cyclefix.runner import SandboxLimits, TestRunResult, run_tests
from cyclefix.runner.results import ExecutedFunction
from cyclefix.runner.trace import Tracer

PACKAGE = {
    "pyproject.toml": "",
    "shop/__init__.py": "",
    "shop/money.py": (
        "def percent_of(cents, percent):\n"  # 1
        "    if percent < 0:\n"  # 2
        "        raise ValueError(percent)\n"  # 3
        "    return cents * percent // 100\n"  # 4
    ),
    "shop/cart.py": (
        "from shop.money import percent_of\n"  # 1
        "\n"  # 2
        "class Cart:\n"  # 3
        "    def __init__(self, cents):\n"  # 4
        "        self.cents = cents\n"  # 5
        "\n"  # 6
        "    def tax(self, percent):\n"  # 7
        "        return percent_of(self.cents, percent)\n"  # 8
        "\n"  # 9
        "    def total(self):\n"  # 10
        "        return sum(c for c in [self.cents])\n"  # 11
    ),
    "tests/test_cart.py": (
        "import pytest\n"
        "from shop.cart import Cart\n"
        "\n"
        "@pytest.fixture\n"
        "def cart():\n"
        "    made = Cart(100)\n"
        "    yield made\n"
        "    made.total()  # teardown: not the test's behaviour\n"
        "\n"
        "def test_tax(cart):\n"
        "    assert cart.tax(10) == 10\n"
        "\n"
        "def test_total_only():\n"
        "    assert Cart(5).total() == 6\n"
        "\n"
        "def test_nothing_of_ours():\n"
        "    assert sorted([2, 1]) == [1, 2]\n"
    ),
}


def make_project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def traced_run(root: Path, trace: bool = True) -> TestRunResult:
    limits = SandboxLimits(per_test_timeout=5.0, run_timeout=60.0)
    return run_tests(root, limits=limits, autoload_plugins=False, trace=trace)


def executed_by(run: TestRunResult, name: str) -> dict[str, ExecutedFunction]:
    case = next(t for t in run.tests if t.nodeid.endswith("::" + name))
    return {e.qualname: e for e in case.executed}


def test_each_test_records_the_project_functions_and_lines_it_ran(tmp_path: Path) -> None:
    run = traced_run(make_project(tmp_path / "proj", PACKAGE))
    assert run.traced
    tax = executed_by(run, "test_tax")
    assert set(tax) == {"Cart.__init__", "Cart.tax", "percent_of"}  # fixture setup counts
    assert tax["percent_of"] == ExecutedFunction("shop/money.py", "percent_of", 1, (2, 4))
    assert tax["Cart.tax"].path == "shop/cart.py" and tax["Cart.tax"].lines == (8,)


def test_fixture_teardown_is_not_recorded(tmp_path: Path) -> None:
    run = traced_run(make_project(tmp_path / "proj", PACKAGE))
    assert "Cart.total" not in executed_by(run, "test_tax")


def test_a_comprehension_is_recorded_under_its_own_code_name(tmp_path: Path) -> None:
    run = traced_run(make_project(tmp_path / "proj", PACKAGE))
    total = executed_by(run, "test_total_only")
    assert "Cart.total" in total
    assert any(name.startswith("Cart.total.<locals>.") for name in total)


# A class with a repr of its own, which the tests' failure messages show.
BOX_CLASS = (
    "class Box:\n"
    "    def __init__(self, side):\n"
    "        self.side = side\n"
    "\n"
    "    def __repr__(self):\n"
    "        return f'Box({self.side})'\n"
)
BOX = {
    "pyproject.toml": "",
    "box.py": BOX_CLASS + "\n    def area(self):\n        return self.side * 2\n",
    "test_box.py": "from box import Box\n\ndef test_area():\n    assert Box(3).area() == 9\n",
}


def test_a_repr_pytest_runs_to_write_the_failed_assert_is_not_recorded(tmp_path: Path) -> None:
    run = traced_run(make_project(tmp_path / "proj", BOX))
    case = run.tests[0]
    assert case.outcome == "failed" and "Box(3)" in (case.assert_explanation or "")
    assert set(executed_by(run, "test_area")) == {"Box.__init__", "Box.area"}


BOX_UNITTEST = {
    "pyproject.toml": "",
    "box.py": (
        BOX_CLASS + "\n"
        "    def __eq__(self, other):\n"
        "        return isinstance(other, Box) and self.side == other.side\n"
        "\n"
        "    def doubled(self):\n"
        "        return [Box(self.side * 3)]\n"
    ),
    "test_box.py": (
        "import unittest\n"
        "from box import Box\n"
        "\n"
        "class BoxTests(unittest.TestCase):\n"
        "    def test_doubled(self):\n"
        "        self.assertEqual(Box(3).doubled(), [Box(6)])\n"
        "\n"
        "    def test_in(self):\n"
        "        self.assertIn(Box(1), [Box(2)])\n"
        "\n"
        "    def test_repr(self):\n"
        "        self.assertEqual(repr(Box(2)), 'Box(3)')\n"
    ),
}


def test_a_repr_unittest_runs_to_write_the_failed_assert_is_not_recorded(
    tmp_path: Path,
) -> None:
    run = traced_run(make_project(tmp_path / "proj", BOX_UNITTEST))
    assert [case.outcome for case in run.tests] == ["failed"] * 3
    # The assert compares with __eq__ (exercised) and writes its message with __repr__ (not).
    assert set(executed_by(run, "test_doubled")) == {"Box.__init__", "Box.doubled", "Box.__eq__"}
    assert set(executed_by(run, "test_in")) == {"Box.__init__", "Box.__eq__"}
    # A repr the test asks for itself is what it exercised.
    assert set(executed_by(run, "test_repr")) == {"Box.__init__", "Box.__repr__"}


def test_tests_and_library_code_are_not_recorded(tmp_path: Path) -> None:
    run = traced_run(make_project(tmp_path / "proj", PACKAGE))
    assert executed_by(run, "test_nothing_of_ours") == {}
    for case in run.tests:
        assert all(not e.path.startswith("tests/") for e in case.executed)


def test_an_untraced_run_records_nothing(tmp_path: Path) -> None:
    run = traced_run(make_project(tmp_path / "proj", PACKAGE), trace=False)
    assert not run.traced
    assert all(case.executed == () for case in run.tests)


def test_a_tracer_already_installed_by_the_project_is_left_alone(tmp_path: Path) -> None:
    files = {
        **PACKAGE,
        "conftest.py": "import sys\n\ndef _theirs(frame, event, arg):\n    return None\n\n"
        "sys.settrace(_theirs)\n",
    }
    run = traced_run(make_project(tmp_path / "proj", files))
    assert not run.traced
    assert any("not traced: a tracer is already installed" in note for note in run.notes)
    assert {t.outcome for t in run.tests} == {"passed", "failed"}  # the run itself goes on


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="sys.monitoring is no settrace hook")
def test_a_test_that_replaces_the_tracer_is_named(tmp_path: Path) -> None:
    files = {
        **PACKAGE,
        "tests/test_debugger.py": "import sys\n\ndef test_stops_tracing():\n"
        "    sys.settrace(None)\n",
    }
    run = traced_run(make_project(tmp_path / "proj", files))
    assert any("replaced the tracer" in note and "test_stops_tracing" in note for note in run.notes)


def test_tracer_in_process_records_only_between_begin_and_pause(tmp_path: Path) -> None:
    module = tmp_path / "lib" / "helper.py"
    module.parent.mkdir()
    module.write_text("def double(x):\n    y = x * 2\n    return y\n")
    namespace: dict[str, object] = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    double = namespace["double"]
    assert callable(double)
    previous = sys.gettrace()
    sys.settrace(None)
    try:
        tracer = Tracer(str(tmp_path))
        assert tracer.install()
        double(1)  # before begin(): not recorded
        tracer.begin()
        double(2)
        records = tracer.take()
        double(3)  # after take(): not recorded
        assert tracer.take() == []
    finally:
        tracer.uninstall()
        sys.settrace(previous)
    assert records == [{"path": "lib/helper.py", "qualname": "double", "line": 1, "lines": [2, 3]}]
