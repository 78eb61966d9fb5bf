"""What a candidate's runs leave in the scratch copy never reaches the next candidate's runs."""

from __future__ import annotations

import os
import shutil
import stat
import textwrap
from pathlib import Path

import pytest

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, fix
from cyclefix.runner import Confinement, SandboxLimits, run_tests
from cyclefix.runner.scratch import (
    remove_tree,
    restore_scratch,
    scratch_copy,
    snapshot_scratch,
)


def project(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "calc.py").write_text("def double(x):\n    return x + x\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_calc.py").write_text("def test_one():\n    assert True\n")
    return root


def test_a_file_the_run_created_is_removed(tmp_path: Path) -> None:
    with scratch_copy(project(tmp_path / "p")) as scratch:
        before = snapshot_scratch(scratch)
        (scratch / "conftest.py").write_text("planted = True\n")
        (scratch / "pkg" / "__pycache__").mkdir()
        (scratch / "pkg" / "__pycache__" / "calc.cpython-311.pyc").write_bytes(b"planted")
        restore_scratch(before, tmp_path / "p")
        assert not (scratch / "conftest.py").exists()
        assert not (scratch / "pkg" / "__pycache__").exists()


def test_a_changed_or_removed_file_comes_back_from_the_users_project(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    with scratch_copy(root) as scratch:
        before = snapshot_scratch(scratch)
        test_file = scratch / "tests" / "test_calc.py"
        info = test_file.stat()
        test_file.write_text("def test_one():\n    pass\n")  # same size: only ctime tells
        os.utime(test_file, ns=(info.st_atime_ns, info.st_mtime_ns))
        (scratch / "pkg" / "calc.py").unlink()
        touched = restore_scratch(before, root)
        assert test_file.read_text() == (root / "tests" / "test_calc.py").read_text()
        assert (scratch / "pkg" / "calc.py").read_text() == (root / "pkg" / "calc.py").read_text()
        assert set(touched) == {"tests/test_calc.py", "pkg/calc.py"}


def test_a_python_file_comes_back_as_the_snapshot_read_it_not_as_the_project_has_it(
    tmp_path: Path,
) -> None:
    root = project(tmp_path / "p")
    with scratch_copy(root) as scratch:
        adopted = "def double(x):\n    return 2 * x\n"  # progress a fix adopted
        (scratch / "pkg" / "calc.py").write_text(adopted)
        (scratch / "data.txt").write_text("made by a test\n")
        before = snapshot_scratch(scratch)
        (scratch / "pkg" / "calc.py").write_text("def double(x):\n    return 0\n")
        restore_scratch(before, root)
        assert (scratch / "pkg" / "calc.py").read_text() == adopted


def test_a_folder_made_unreadable_gets_its_mode_back(tmp_path: Path) -> None:
    with scratch_copy(project(tmp_path / "p")) as scratch:
        before = snapshot_scratch(scratch)
        mode = stat.S_IMODE((scratch / "tests").stat().st_mode)
        os.chmod(scratch / "tests", 0)
        restore_scratch(before, tmp_path / "p")
        assert stat.S_IMODE((scratch / "tests").stat().st_mode) == mode


def test_nothing_is_touched_after_a_run_that_wrote_nothing(tmp_path: Path) -> None:
    with scratch_copy(project(tmp_path / "p")) as scratch:
        assert restore_scratch(snapshot_scratch(scratch), tmp_path / "p") == ()


PLANT = textwrap.dedent(
    """
    def pytest_collection_modifyitems(items):
        for item in items:
            item.obj = lambda *args, **kwargs: None
    """
)


def test_a_conftest_planted_by_one_candidate_cannot_pass_the_next(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (tmp_path / "calc.py").write_text("def double(x):\n    return x + 1\n")
    (tmp_path / "test_calc.py").write_text(
        "from calc import double\n\n\ndef test_double():\n    assert double(3) == 6\n"
    )
    planter = (
        "def double(x):\n"
        "    import pathlib\n"
        f"    pathlib.Path(__file__).with_name('conftest.py').write_text({PLANT!r})\n"
        "    return x - 1\n"
    )
    still_wrong = "def double(x):\n    return x + 2\n"
    backend = ScriptedBackend([f"```python\n{planter}```", f"```python\n{still_wrong}```"])
    config = RefineConfig(rounds=2, budget_seconds=120, extend_to_budget=False, resamples=0)
    result = fix(tmp_path, backend, config=config)
    assert result.status == "not_fixed"
    assert "passed" not in [a.verdict for a in result.attempts]
    assert not (tmp_path / "conftest.py").exists()


@pytest.mark.usefixtures("without_answer_guard")
def test_a_test_file_rewritten_in_one_run_is_back_for_the_next_run_of_the_same_candidate(
    tmp_path: Path,
) -> None:
    # Slow enough tests that a candidate runs the failing test first, then the rest.
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (tmp_path / "calc.py").write_text(
        "def double(x):\n    return x + 1\n\n\ndef triple(x):\n    return x * 3\n"
    )
    (tmp_path / "test_double.py").write_text(
        "import time\nfrom calc import double\n\n\n"
        "def test_double():\n    time.sleep(0.6)\n    assert double(3) == 6\n"
    )
    (tmp_path / "test_triple.py").write_text(
        "import time\nfrom calc import triple\n\n\n"
        "def test_triple():\n    time.sleep(0.6)\n    assert triple(2) == 6\n"
    )
    hostile = (
        "def double(x):\n"
        "    import pathlib\n"
        "    other = pathlib.Path(__file__).with_name('test_triple.py')\n"
        "    other.write_text('def test_triple():\\n    assert True\\n')\n"
        "    return x * 2\n"
        "\n\n"
        "def triple(x):\n"
        "    return 0\n"
    )
    backend = ScriptedBackend([f"```python\n{hostile}```"])
    config = RefineConfig(rounds=1, budget_seconds=120, extend_to_budget=False, resamples=0)
    result = fix(tmp_path, backend, config=config)
    assert result.attempts[0].verdict == "regressed"
    assert all("return 0" not in change.fixed for change in result.changes)


def test_a_folder_swapped_for_a_link_outside_is_put_back_without_touching_the_target(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.chmod(outside, 0o700)
    with scratch_copy(project(tmp_path / "p")) as scratch:
        os.chmod(scratch / "tests", 0o750)
        before = snapshot_scratch(scratch)
        shutil.rmtree(scratch / "tests")
        os.symlink(outside, scratch / "tests")
        restore_scratch(before, tmp_path / "p")
        assert stat.S_IMODE(outside.stat().st_mode) == 0o700
        assert not (scratch / "tests").is_symlink()
        assert (scratch / "tests" / "test_calc.py").read_text().startswith("def test_one")
    assert list(outside.iterdir()) == []


def test_a_folder_under_a_parent_swapped_for_a_link_keeps_the_targets_mode(
    tmp_path: Path,
) -> None:
    root = project(tmp_path / "p")
    (root / "data" / "private").mkdir(parents=True)
    victim = tmp_path / "victim"
    (victim / "private").mkdir(parents=True)
    os.chmod(victim / "private", 0o700)
    with scratch_copy(root) as scratch:
        os.chmod(scratch / "data" / "private", 0o700)
        before = snapshot_scratch(scratch)
        os.chmod(scratch / "data" / "private", 0o755)  # a mode to put back
        os.rename(scratch / "data", scratch / "moved")
        os.symlink(victim, scratch / "data")  # data/private now leads outside
        restore_scratch(before, root)
        assert stat.S_IMODE((victim / "private").stat().st_mode) == 0o700
        assert not (scratch / "data").is_symlink() and not (scratch / "moved").exists()
        assert stat.S_IMODE((scratch / "data" / "private").stat().st_mode) == 0o700


def nest(folder: Path, depth: int) -> None:
    """Folders `depth` deep under `folder`, made with relative paths (as a run can)."""
    here = os.getcwd()
    try:
        folder.mkdir()
        os.chdir(folder)
        for _ in range(depth):
            os.mkdir("d")
            os.chdir("d")
        Path("planted.txt").write_text("x")
    finally:
        os.chdir(here)


def test_folders_nested_past_the_recursion_limit_are_removed(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    with scratch_copy(root) as scratch:
        before = snapshot_scratch(scratch)
        nest(scratch / "deep", 1500)
        nest(scratch / "pkg" / "deeper", 1500)
        restore_scratch(before, root)
        assert not (scratch / "deep").exists() and not (scratch / "pkg" / "deeper").exists()
        nest(scratch / "left", 1500)  # left for the copy's own removal
        parent = scratch.parent
    assert not parent.exists()


def test_a_tree_with_unreadable_folders_is_removed(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f.txt").write_text("x")
    os.symlink(tmp_path / "keep", tree / "a" / "link")
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "k.txt").write_text("kept")
    os.chmod(tree / "a" / "b", 0)
    os.chmod(tree / "a", 0)
    remove_tree(tree)
    assert not tree.exists()
    assert (tmp_path / "keep" / "k.txt").read_text() == "kept"  # the link's target stays


# Run by the first test before the process dies: every later test "passes" (initial conftests
# load before the test-machinery baseline is taken).
FORCE_PASS = textwrap.dedent(
    """
    import pytest

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        outcome.get_result().outcome = "passed"
    """
)


def test_a_conftest_planted_before_a_crash_is_gone_for_the_process_that_runs_the_rest(
    tmp_path: Path,
) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "pyproject.toml").write_text("")
    (root / "test_order.py").write_text(
        "import os, pathlib\n\n\n"
        "def test_a_plants_and_dies():\n"
        f"    pathlib.Path(__file__).with_name('conftest.py').write_text({FORCE_PASS!r})\n"
        "    os._exit(3)\n\n\n"
        "def test_b_fails():\n    assert False\n"
    )
    limits = SandboxLimits(per_test_timeout=5.0, run_timeout=60.0)
    with scratch_copy(root) as scratch:
        run = run_tests(
            scratch, limits=limits, autoload_plugins=False, confinement=Confinement(root)
        )
        outcomes = {t.nodeid.split("::")[-1]: t.outcome for t in run.tests}
        assert outcomes == {"test_a_plants_and_dies": "error", "test_b_fails": "failed"}
        assert not (scratch / "conftest.py").exists()
