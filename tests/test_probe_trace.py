"""The probe (runner.trace, its values by runner.inert_repr): what a failing test's calls to
project functions were given and gave back, rendered bounded and without running any code of
the values' classes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from cyclefix.runner import SandboxLimits, run_tests
from cyclefix.runner.inert_repr import VALUE_CHARS, inert_repr
from cyclefix.runner.results import ProbedCall
from cyclefix.runner.trace import PROBED_CALLS, Tracer


class Hostile:
    """Every hook a renderer might call raises or never returns."""

    def __init__(self) -> None:
        self.state = 7

    def __repr__(self) -> str:
        raise RuntimeError("repr of a hostile value")

    def __str__(self) -> str:
        while True:
            pass

    def __getattribute__(self, name: str) -> Any:
        if name == "__dict__":
            raise RuntimeError("attribute read of a hostile value")
        return object.__getattribute__(self, name)


class HangingList(list[int]):
    def __iter__(self) -> Iterator[int]:
        while True:
            yield 0

    def __repr__(self) -> str:
        while True:
            pass


class Color(Enum):
    RED = 1


def test_plain_values_read_as_python_literals() -> None:
    assert inert_repr(Decimal("1.39")) == "Decimal('1.39')"
    assert inert_repr([1, "a", None, (2.5,)]) == "[1, 'a', None, (2.5,)]"
    assert inert_repr({"k": {1, 2}}) == "{'k': {1, 2}}"


def test_an_object_shows_its_attributes_and_never_its_own_repr() -> None:
    assert inert_repr(Hostile()) == "Hostile(state=7)"


def test_a_container_subclass_is_read_through_its_base_not_its_hooks() -> None:
    assert inert_repr(HangingList([1, 2])) == "HangingList([1, 2])"


def test_an_enum_member_shows_its_name() -> None:
    assert inert_repr(Color.RED) == "Color.RED"


def test_values_are_cut_to_the_limit() -> None:
    assert len(inert_repr("x" * 10_000)) <= VALUE_CHARS
    assert len(inert_repr(list(range(10_000)))) <= VALUE_CHARS
    assert inert_repr(list(range(100))).endswith("...]")


def test_an_int_too_long_to_print_shows_its_size() -> None:
    assert inert_repr(10**100_000) == "<int of 332193 bits>"


def test_a_deep_value_is_cut_at_a_depth() -> None:
    nested: list[Any] = []
    for _ in range(50):
        nested = [nested]
    assert inert_repr(nested) == "[[[[...]]]]"


def _tracing(tmp_path: Path, source: str, name: str) -> tuple[Tracer, Callable[..., Any]]:
    """`name` from `source` compiled as a project file under tmp_path, and a tracer of it."""
    module = tmp_path / "lib" / "helper.py"
    module.parent.mkdir(exist_ok=True)
    module.write_text(source)
    namespace: dict[str, Any] = {"Hostile": Hostile}
    exec(compile(source, str(module), "exec"), namespace)
    return Tracer(str(tmp_path)), namespace[name]


def _probed(tracer: Tracer, run: Callable[[], object]) -> list[dict[str, Any]]:
    previous = sys.gettrace()
    sys.settrace(None)
    try:
        assert tracer.install()
        tracer.begin()
        run()
        return tracer.take(calls=True)
    finally:
        tracer.uninstall()
        sys.settrace(previous)


def test_a_call_records_its_arguments_and_return_value(tmp_path: Path) -> None:
    tracer, percent_of = _tracing(
        tmp_path,
        "def percent_of(cents, percent, *, up=False):\n    return cents * percent // 100\n",
        "percent_of",
    )
    records = _probed(tracer, lambda: percent_of(125, 10, up=True))
    assert records[0]["calls"] == [{"call": "percent_of(125, 10, up=True)", "returned": "12"}]


def test_a_call_that_raises_records_the_exception(tmp_path: Path) -> None:
    tracer, check = _tracing(
        tmp_path, "def check(n):\n    if n < 0:\n        raise ValueError('negative', n)\n", "check"
    )

    def run() -> None:
        with pytest.raises(ValueError):
            check(-1)

    assert _probed(tracer, run)[0]["calls"] == [
        {"call": "check(-1)", "raised": "ValueError('negative', -1)"}
    ]


def test_a_caught_exception_is_not_the_calls_outcome(tmp_path: Path) -> None:
    source = "def safe(n):\n    try:\n        1 / n\n    except ZeroDivisionError:\n        pass\n    return 'ok'\n"
    tracer, safe = _tracing(tmp_path, source, "safe")
    assert _probed(tracer, lambda: safe(0))[0]["calls"] == [{"call": "safe(0)", "returned": "'ok'"}]


def test_only_the_first_calls_of_a_function_are_recorded(tmp_path: Path) -> None:
    tracer, double = _tracing(tmp_path, "def double(x):\n    return 2 * x\n", "double")
    records = _probed(tracer, lambda: [double(n) for n in range(10)])
    assert [c["call"] for c in records[0]["calls"]] == [f"double({n})" for n in range(PROBED_CALLS)]


def test_a_hostile_argument_is_shown_without_running_its_hooks(tmp_path: Path) -> None:
    tracer, ident = _tracing(tmp_path, "def ident(value):\n    return value\n", "ident")
    records = _probed(tracer, lambda: ident(Hostile()))
    assert records[0]["calls"] == [
        {"call": "ident(Hostile(state=7))", "returned": "Hostile(state=7)"}
    ]


def test_a_passing_tests_record_carries_no_calls(tmp_path: Path) -> None:
    tracer, double = _tracing(tmp_path, "def double(x):\n    return 2 * x\n", "double")
    previous = sys.gettrace()
    sys.settrace(None)
    try:
        assert tracer.install()
        tracer.begin()
        double(1)
        records = tracer.take()
    finally:
        tracer.uninstall()
        sys.settrace(previous)
    assert "calls" not in records[0]


PROJECT = {
    "pyproject.toml": "",
    "shop/__init__.py": "",
    "shop/money.py": (
        "class Loud:\n"
        "    def __repr__(self):\n"
        "        while True:\n"
        "            pass\n"
        "\n"
        "def percent_of(cents, percent, tag=None):\n"
        "    return cents * percent // 100\n"
    ),
    "tests/test_money.py": (
        "from shop.money import Loud, percent_of\n"
        "\n"
        "def test_rounds_half_up():\n"
        "    assert percent_of(125, 10, Loud()) == 13\n"
        "\n"
        "def test_round_amount():\n"
        "    assert percent_of(1000, 20) == 200\n"
    ),
}


def test_a_traced_run_gives_the_failing_test_its_calls_and_the_passing_one_none(
    tmp_path: Path,
) -> None:
    root = tmp_path / "proj"
    for name, text in PROJECT.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    limits = SandboxLimits(per_test_timeout=10.0, run_timeout=60.0)
    run = run_tests(root, limits=limits, autoload_plugins=False, trace=True)
    by_test = {
        case.nodeid.rsplit("::", 1)[-1]: {e.qualname: e.calls for e in case.executed}
        for case in run.tests
    }
    assert by_test["test_rounds_half_up"]["percent_of"] == (
        ProbedCall("percent_of(125, 10, <Loud object>)", returned="12"),
    )
    assert by_test["test_round_amount"]["percent_of"] == ()
