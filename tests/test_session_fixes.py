"""A verified fix holds only for the text it was computed from."""

from __future__ import annotations

from pathlib import Path

from cyclefix.refine import FileChange, FixResult
from cyclefix.session.fixes import VerifiedFix

ORIGINAL = "def f():\n    return 1\n"


def _fix(path: Path) -> VerifiedFix:
    change = FileChange(path=path, original=ORIGINAL, fixed="def f():\n    return 2\n", diff="")
    result = FixResult("fixed", path.parent, (change,), "", (), None, None, 0.0, "m")
    return VerifiedFix(result, versions={path.resolve(): 3})


def test_a_fix_is_fresh_while_the_file_holds_its_original_text(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(ORIGINAL.replace("\n", "\r\n"))  # line endings do not count
    assert not _fix(path).is_stale()


def test_a_fix_is_stale_once_the_file_changed_or_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(ORIGINAL + "# edited\n")
    assert _fix(path).is_stale()
    path.unlink()
    assert _fix(path).is_stale()


def test_a_newer_editor_version_makes_a_fix_stale_even_with_the_same_text(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    verified = _fix(path)
    assert not verified.is_stale(lambda _p: ORIGINAL, lambda _p: 3)
    assert verified.is_stale(lambda _p: ORIGINAL, lambda _p: 4)


def test_fix_ids_differ_and_touches_names_the_changed_files(tmp_path: Path) -> None:
    first, second = _fix(tmp_path / "m.py"), _fix(tmp_path / "m.py")
    assert first.fix_id != second.fix_id
    assert first.touches([tmp_path / "m.py"]) and not first.touches([tmp_path / "n.py"])
