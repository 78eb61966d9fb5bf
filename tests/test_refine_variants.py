"""Variant calls: the tests' own literal calls with one argument changed, and what a candidate
returned on each, read from the runner's record of a confined run."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

from cyclefix.refine.check import limits_for, select
from cyclefix.refine.round import Round, State
from cyclefix.refine.types import RefineConfig
from cyclefix.refine.variants import (
    MAX_VARIANTS,
    VARIANT_FILE,
    ExampleCall,
    VariantTests,
    example_calls,
    variant_calls,
    variant_module,
)
from cyclefix.refine.verify import Verifier
from cyclefix.runner import scratch_copy
from cyclefix.runner.results import TestCaseResult, TestRunResult

TESTS = (
    '"""Examples."""\n\n'
    "from pile import *  # noqa: F403\n"
    "import math\n\n"
    "SCALE = 1\n\n\n"
    "def test_example_1():\n    assert make_a_pile(3) == [3, 5, 7]\n\n\n"
    "def test_example_2():\n    assert make_a_pile(3) == [3, 5, 7]\n\n\n"
    "def test_not_literal():\n    assert make_a_pile(SCALE) == [1]\n\n\n"
    "def test_words():\n    assert words('a b') == ['a', 'b']\n"
)


def test_the_asserted_calls_with_literal_arguments_are_the_examples_once_each() -> None:
    assert example_calls(TESTS) == [
        ExampleCall("make_a_pile", (3,)),
        ExampleCall("words", ("a b",)),
    ]


def test_a_module_that_does_not_parse_has_no_examples() -> None:
    assert example_calls("def test_x(:\n") == []


def test_each_variant_changes_one_argument_and_examples_take_turns() -> None:
    calls = variant_calls([ExampleCall("f", (3, "ab")), ExampleCall("g", ([1, 2],))])
    assert calls[:4] == ["f(4, 'ab')", "g([2, 1])", "f(2, 'ab')", "g([2])"]
    assert "f(3, 'ab')" not in calls and len(calls) == len(set(calls)) <= MAX_VARIANTS
    assert all(ast.parse(call, mode="eval") for call in calls)


def test_variants_keep_the_arguments_type() -> None:
    calls = variant_calls([ExampleCall("f", (True,)), ExampleCall("g", ((1.5, 2.0),))], limit=50)
    assert "f(False)" in calls
    assert all(call.startswith("g((") for call in calls if call.startswith("g"))


def test_the_variant_module_keeps_the_imports_and_setup_and_fails_every_call() -> None:
    text = variant_module(TESTS, ["make_a_pile(4)", "words('b a')"])
    tree = ast.parse(text)
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert names == ["test_variant_0", "test_variant_1"]
    assert "from pile import *" in text and "import math" in text and "SCALE = 1" in text
    assert "def test_example_1" not in text
    assert "assert make_a_pile(4) == _CYCLEFIX_UNMATCHED" in text


PILE = "def make_a_pile(n):\n    return [n + 2 * i for i in range(n)]\n\n\ndef words(s):\n    return s.split()\n"


def _verifier(root: Path) -> Verifier:
    config = RefineConfig()
    chosen = select(root, None, config=config)
    return Verifier(
        chosen.root,
        chosen.tests,
        chosen.explicit,
        limits_for(config),
        chosen.python,
        lambda event: None,
        threading.Event(),
    )


def _project(root: Path) -> None:
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (root / "pile.py").write_text(
        "def make_a_pile(n):\n    return []\n\n\ndef words(s):\n    return []\n"
    )
    (root / "test_pile.py").write_text(TESTS)


def test_a_candidates_outputs_on_the_variant_calls_come_from_a_confined_run(
    tmp_path: Path,
) -> None:
    _project(tmp_path)
    verifier = _verifier(tmp_path)
    initial = verifier.run_tests(tmp_path, ["test_pile.py"], scratch=False)
    variants = VariantTests.of(tmp_path, initial)
    assert variants is not None and variants.rel == VARIANT_FILE
    with scratch_copy(tmp_path) as scratch:
        rnd = Round(1, scratch, (), State(run=initial), frozenset())
        outputs = variants.behaviour(verifier, rnd, {"pile.py": PILE})
        assert not (scratch / VARIANT_FILE).exists()
        assert (scratch / "pile.py").read_text() != PILE  # the accepted code is back
    first = variants.text.split("assert ", 2)[1].split(" ==")[0]
    assert first == "make_a_pile(4)" and outputs[0] == "[4, 6, 8, 10]"
    assert len(outputs) == len(variants.ids) and all(o is not None for o in outputs)


def test_no_variants_where_no_failing_test_asserts_on_a_literal_call(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (tmp_path / "m.py").write_text("def f(x):\n    return x\n")
    (tmp_path / "test_m.py").write_text(
        "from m import f\n\n\ndef test_f():\n    assert f(1) and 0\n"
    )
    verifier = _verifier(tmp_path)
    initial = verifier.run_tests(tmp_path, ["test_m.py"], scratch=False)
    assert VariantTests.of(tmp_path, initial) is None


def test_an_integer_varies_by_steps_and_multiples_and_keeps_its_sign() -> None:
    calls = variant_calls([ExampleCall("f", (30,)), ExampleCall("g", (-4,))], limit=50)
    assert {"f(31)", "f(29)", "f(60)", "f(45)", "f(15)"} <= set(calls)
    assert all(not c.startswith("g(") or c.startswith("g(-") for c in calls)


def test_a_list_of_items_that_do_not_compare_still_varies() -> None:
    calls = variant_calls([ExampleCall("f", ([1, "a"],))], limit=50)
    assert "f(['a', 1])" in calls and "f([2, 'a'])" in calls


def _failing(root: Path, nodeid: str) -> TestRunResult:
    return TestRunResult(root, (TestCaseResult(nodeid, "failed"),), 1, 0.1)


def test_no_variant_module_for_a_test_outside_the_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "test_outside.py").write_text(TESTS)
    assert VariantTests.of(project, _failing(project, "../test_outside.py::test_example_1")) is None


def test_no_variant_module_over_a_file_of_the_project(tmp_path: Path) -> None:
    (tmp_path / "test_pile.py").write_text(TESTS)
    assert VariantTests.of(tmp_path, _failing(tmp_path, "test_pile.py::test_example_1")) is not None
    (tmp_path / VARIANT_FILE).write_text("# the project's own\n")
    assert VariantTests.of(tmp_path, _failing(tmp_path, "test_pile.py::test_example_1")) is None
