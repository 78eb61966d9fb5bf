"""One answer to "is this a test file?" and "is this folder skipped?" for all of cyclefix."""

from __future__ import annotations

from pathlib import Path

from cyclefix.runner.testfiles import (
    SKIP_DIRS,
    is_pytest_file,
    is_skipped_dir,
    is_test_code,
    is_test_file,
)


def test_test_files_follow_pytest_s_default_pattern() -> None:
    assert is_test_file("tests/test_calc.py")
    assert is_test_file(Path("pkg/calc_test.py"))
    assert not is_test_file("calc.py")
    assert not is_test_file("conftest.py")
    assert not is_test_file("test_data.json")


def test_a_conftest_is_a_pytest_file_but_not_a_test_file() -> None:
    assert is_pytest_file("tests/conftest.py")
    assert is_pytest_file("test_calc.py")
    assert not is_pytest_file("tests/helpers.py")


def test_helpers_under_a_tests_folder_are_test_code() -> None:
    assert is_test_code("tests/helpers.py")
    assert is_test_code("pkg/test/fixtures.py")
    assert is_test_code("conftest.py")
    assert not is_test_code("src/pkg/testing_utils.py")
    assert not is_test_code("tests.py")


def test_windows_separators_are_understood() -> None:
    assert is_test_code("tests\\helpers.py")


def test_environments_caches_and_build_output_are_skipped() -> None:
    for name in (".venv", "venv", "env", "site-packages", "__pycache__", "build", ".git"):
        assert name in SKIP_DIRS
        assert is_skipped_dir(name)
    assert is_skipped_dir("calc.egg-info")
    assert not is_skipped_dir("src")
    assert not is_skipped_dir("tests")
