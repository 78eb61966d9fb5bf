"""Collection errors raised by project code at import time carry the exception and its frames."""

from __future__ import annotations

from pathlib import Path

from cyclefix.runner import SandboxLimits, TestRunResult, run_tests
from cyclefix.runner.results import CollectionError, Frame

TEST_FILE = (
    "from shop.money import percent_of\n\ndef test_percent():\n    assert percent_of(100, 5) == 5\n"
)


def run_with(tmp_path: Path, files: dict[str, str]) -> TestRunResult:
    root = tmp_path / "proj"
    for name, text in {"pyproject.toml": "", "shop/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    limits = SandboxLimits(per_test_timeout=5.0, run_timeout=60.0)
    return run_tests(root, limits=limits, autoload_plugins=False)


def only_error(run: TestRunResult) -> CollectionError:
    assert len(run.collection_errors) == 1, run.collection_errors
    return run.collection_errors[0]


def test_a_name_error_at_module_level_is_located_in_the_project_module(tmp_path: Path) -> None:
    money = "RATE = 100\n\ndef percent_of(cents, percent):\n    return cents * percent // RATE\n\nSCALE = RATEE\n"
    error = only_error(
        run_with(tmp_path, {"shop/money.py": money, "tests/test_money.py": TEST_FILE})
    )
    assert error.exc_type == "NameError"
    assert error.nodeid == "tests/test_money.py"
    assert error.project_frames == (Frame("shop/money.py", 6, "<module>", "SCALE = RATEE"),)


def test_a_function_called_at_import_is_the_deepest_frame(tmp_path: Path) -> None:
    money = (
        "def _rate():\n    return {}['percent']\n\nRATE = _rate()\n\n"
        "def percent_of(cents, percent):\n    return cents * percent // RATE\n"
    )
    error = only_error(
        run_with(tmp_path, {"shop/money.py": money, "tests/test_money.py": TEST_FILE})
    )
    assert error.exc_type == "KeyError"
    assert [(f.line, f.function) for f in error.project_frames] == [(4, "<module>"), (2, "_rate")]


def test_a_syntax_error_in_a_project_module_is_a_frame_at_its_line(tmp_path: Path) -> None:
    money = "def percent_of(cents, percent)\n    return cents * percent // 100\n"
    error = only_error(
        run_with(tmp_path, {"shop/money.py": money, "tests/test_money.py": TEST_FILE})
    )
    assert error.exc_type == "SyntaxError"
    assert [(f.path, f.line) for f in error.project_frames] == [("shop/money.py", 1)]


def test_an_error_in_the_test_file_itself_has_no_project_frames(tmp_path: Path) -> None:
    money = "def percent_of(cents, percent):\n    return cents * percent // 100\n"
    broken_test = "from shop.money import percent_of\n\nLIMIT = LIMITS\n"
    error = only_error(
        run_with(tmp_path, {"shop/money.py": money, "tests/test_money.py": broken_test})
    )
    assert error.exc_type == "NameError"
    assert error.project_frames == ()
