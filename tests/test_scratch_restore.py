"""What a candidate's runs leave in the scratch copy never reaches the next candidate's runs."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, fix
from cyclefix.runner.scratch import restore_scratch, scratch_copy, snapshot_scratch


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
