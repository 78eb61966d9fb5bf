"""find_project_root: the folder pytest runs in."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyclefix.errors import CyclefixError
from cyclefix.runner import find_project_root


def touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("marker", ["pyproject.toml", "pytest.ini", "setup.cfg", "tox.ini"])
def test_nearest_config_file_marks_the_root(tmp_path: Path, marker: str) -> None:
    touch(tmp_path / "proj" / marker)
    source = touch(tmp_path / "proj" / "pkg" / "sub" / "mod.py")
    assert find_project_root(source) == (tmp_path / "proj").resolve()
    assert find_project_root(source.parent) == (tmp_path / "proj").resolve()


def test_nearest_of_nested_projects_wins(tmp_path: Path) -> None:
    touch(tmp_path / "outer" / "pyproject.toml")
    touch(tmp_path / "outer" / "inner" / "setup.cfg")
    source = touch(tmp_path / "outer" / "inner" / "mod.py")
    assert find_project_root(source) == (tmp_path / "outer" / "inner").resolve()


def test_tests_conftest_does_not_hide_the_project_above(tmp_path: Path) -> None:
    touch(tmp_path / "proj" / "pyproject.toml")
    touch(tmp_path / "proj" / "tests" / "conftest.py")
    test_file = touch(tmp_path / "proj" / "tests" / "test_x.py")
    assert find_project_root(test_file) == (tmp_path / "proj").resolve()


def test_outermost_conftest_without_config_files(tmp_path: Path) -> None:
    touch(tmp_path / "proj" / "conftest.py")
    touch(tmp_path / "proj" / "tests" / "conftest.py")
    test_file = touch(tmp_path / "proj" / "tests" / "test_x.py")
    assert find_project_root(test_file) == (tmp_path / "proj").resolve()


def test_folder_itself_when_nothing_marks_a_root(tmp_path: Path) -> None:
    source = touch(tmp_path / "loose" / "mod.py")
    assert find_project_root(source) == (tmp_path / "loose").resolve()
    assert find_project_root(tmp_path / "loose") == (tmp_path / "loose").resolve()


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CyclefixError, match="no such file or folder"):
        find_project_root(tmp_path / "nope.py")


def test_fixture_project_root() -> None:
    fixture = Path(__file__).parent / "fixtures" / "runner" / "calc_project"
    assert find_project_root(fixture / "calc" / "stats.py") == fixture.resolve()


def test_explicit_tests_outside_widen_to_the_common_folder(tmp_path: Path) -> None:
    # QuixBugs' layout: programs and tests side by side, nothing marks the root.
    source = touch(tmp_path / "bugs" / "python_programs" / "gcd.py")
    test_file = touch(tmp_path / "bugs" / "python_testcases" / "test_gcd.py")
    expected = (tmp_path / "bugs").resolve()
    assert find_project_root(source, [str(test_file)]) == expected
    assert find_project_root(source, [f"{test_file}::test_small"]) == expected
    assert find_project_root(source) == source.parent.resolve()


def test_tests_inside_the_root_change_nothing(tmp_path: Path) -> None:
    touch(tmp_path / "proj" / "pyproject.toml")
    source = touch(tmp_path / "proj" / "pkg" / "mod.py")
    test_file = touch(tmp_path / "proj" / "tests" / "test_mod.py")
    assert (
        find_project_root(source, [str(test_file), "no/such/file.py"])
        == (tmp_path / "proj").resolve()
    )
