"""Applying a verified fix never loses data: user edits, atomic multi-file writes, bytes kept."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from cyclefix import cli
from cyclefix.models.backend import (
    ChatMessage,
    GenerationOptions,
    GenerationResult,
    TextCallback,
    TextCheck,
)
from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, StaleFixError, apply_fix, fix
from cyclefix.refine.apply import ApplyError
from cyclefix.refine.changes import unified_diff
from cyclefix.refine.types import FileChange, FixResult, RefineEvent, RoundStarted

CONFIG = RefineConfig(rounds=3, budget_seconds=120, per_test_timeout=2.0)


def fence(code: str) -> str:
    return "```python\n" + textwrap.dedent(code).strip() + "\n```\n"


def fixed_result(root: Path, *changes: tuple[Path, str, str]) -> FixResult:
    return FixResult(
        "fixed",
        root,
        tuple(FileChange(path, old, new, "") for path, old, new in changes),
        "",
        (),
        None,
        None,
        0.0,
        "scripted",
    )


@pytest.fixture
def two_files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "pkg").mkdir()
    first, second = tmp_path / "a.py", tmp_path / "pkg" / "b.py"
    first.write_text("A = 1\n")
    second.write_text("B = 1\n")
    return first, second


def test_a_save_made_while_the_fix_was_computed_is_not_reverted(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (tmp_path / "first.py").write_text("def f():\n    return 0\n")
    (tmp_path / "second.py").write_text("def g():\n    return 0\n")
    (tmp_path / "test_both.py").write_text(
        "from first import f\nfrom second import g\n\n\n"
        "def test_f():\n    assert f() == 1\n\n\ndef test_g():\n    assert g() == 2\n"
    )
    edited: list[Path] = []

    def save_the_other_file(event: RefineEvent) -> None:
        # While round 1 works on one file, the user saves the other one.
        if isinstance(event, RoundStarted) and event.index == 1:
            other = tmp_path / ("second.py" if "f" in event.targets else "first.py")
            other.write_text(other.read_text() + "# saved by the user\n")
            edited.append(other)

    backend = _ByTarget(
        {
            "def f():\n    return 0": fence("def f():\n    return 1\n"),
            "def g():\n    return 0": fence("def g():\n    return 2\n"),
        }
    )
    result = fix(tmp_path, backend, config=CONFIG, on_event=save_the_other_file)
    assert result.status == "fixed", result
    assert len(result.changes) == 2
    before = {p: p.read_bytes() for p in (tmp_path / "first.py", tmp_path / "second.py")}
    with pytest.raises(StaleFixError, match="changed since the fix was computed"):
        apply_fix(result)
    assert {p: p.read_bytes() for p in before} == before
    assert b"# saved by the user" in edited[0].read_bytes()


class _ByTarget:
    """Answers a prompt whose faulty code is `def f` with f's fix, and `def g` with g's."""

    name = "by-target"

    def __init__(self, replies: dict[str, str]) -> None:
        self.backends = {faulty: ScriptedBackend([reply]) for faulty, reply in replies.items()}

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
        until: TextCheck | None = None,
    ) -> GenerationResult:
        asked = messages[-1].content
        backend = next(b for faulty, b in self.backends.items() if faulty in asked)
        return backend.generate(messages, options, on_text=on_text, cancel=cancel)

    def forks_along(self, *args: object, **kwargs: object) -> None:
        return None

    def close(self) -> None:
        pass


def test_a_failed_second_write_leaves_both_files_as_they_were(
    two_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two_files
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == second:
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    result = fixed_result(
        first.parent, (first, "A = 1\n", "A = 2\n"), (second, "B = 1\n", "B = 2\n")
    )
    with pytest.raises(ApplyError, match=r"No space left on device.*no file was changed"):
        apply_fix(result)
    assert first.read_text() == "A = 1\n" and second.read_text() == "B = 1\n"
    leftovers = [p.name for p in (*first.parent.iterdir(), *second.parent.iterdir())]
    assert not [name for name in leftovers if name.endswith(".cyclefix")]


def test_a_temp_file_that_cannot_be_made_changes_no_file(
    two_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two_files
    real_mkstemp = tempfile.mkstemp

    def mkstemp(prefix: str, suffix: str, dir: str | Path) -> tuple[int, str]:
        if Path(dir) == second.parent:
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkstemp(prefix=prefix, suffix=suffix, dir=dir)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    result = fixed_result(
        first.parent, (first, "A = 1\n", "A = 2\n"), (second, "B = 1\n", "B = 2\n")
    )
    with pytest.raises(ApplyError, match="Permission denied"):
        apply_fix(result)
    assert first.read_text() == "A = 1\n" and second.read_text() == "B = 1\n"


def test_both_files_are_written_when_nothing_fails(two_files: tuple[Path, Path]) -> None:
    first, second = two_files
    second.chmod(0o640)
    result = fixed_result(
        first.parent, (first, "A = 1\n", "A = 2\n"), (second, "B = 1\n", "B = 2\n")
    )
    assert apply_fix(result) == (first, second)
    assert first.read_text() == "A = 2\n" and second.read_text() == "B = 2\n"
    assert second.stat().st_mode & 0o777 == 0o640


def _fix_and_apply(root: Path, module: bytes, test: str, reply: str) -> bytes:
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (root / "mod.py").write_bytes(module)
    (root / "test_mod.py").write_text(test)
    result = fix(root, ScriptedBackend([reply]), config=CONFIG)
    assert result.status == "fixed", result
    apply_fix(result)
    return (root / "mod.py").read_bytes()


def test_a_latin1_file_keeps_its_bytes(tmp_path: Path) -> None:
    module = (
        "# -*- coding: latin-1 -*-\n"
        "CAF\u00c9 = 'caf\u00e9'  # na\u00efve\n\n\n"
        "def greet():\n    return 'bonjour ' + 'x'\n"
    ).encode("latin-1")
    test = (
        "# -*- coding: latin-1 -*-\nfrom mod import CAF\u00c9, greet\n\n\n"
        "def test_greet():\n    assert greet() == 'bonjour ' + CAF\u00c9\n"
        "    assert len(CAF\u00c9) == 4\n"
    )
    (tmp_path / "test_mod.py").write_bytes(test.encode("latin-1"))
    reply = fence("def greet():\n    return 'bonjour ' + CAF\u00c9\n")
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (tmp_path / "mod.py").write_bytes(module)
    result = fix(tmp_path, ScriptedBackend([reply]), config=CONFIG)
    assert result.status == "fixed", result
    apply_fix(result)
    after = (tmp_path / "mod.py").read_bytes()
    head = module[: module.index(b"def greet")]
    assert after.startswith(head)
    assert after[len(head) :] == "def greet():\n    return 'bonjour ' + CAF\u00c9\n".encode(
        "latin-1"
    )


def test_a_crlf_file_keeps_crlf(tmp_path: Path) -> None:
    module = b"X = 1\r\n\r\n\r\ndef double(n):\r\n    return n + n + 1\r\n\r\n\r\nY = 2\r\n"
    test = "from mod import double\n\n\ndef test_double():\n    assert double(3) == 6\n"
    after = _fix_and_apply(tmp_path, module, test, fence("def double(n):\n    return n * 2\n"))
    assert after == b"X = 1\r\n\r\n\r\ndef double(n):\r\n    return n * 2\r\n\r\n\r\nY = 2\r\n"


def test_apply_json_prints_valid_json_on_an_os_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = b"def double(n):\n    return n + n + 1\n"
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (tmp_path / "mod.py").write_bytes(source)
    (tmp_path / "test_mod.py").write_text(
        "from mod import double\n\n\ndef test_double():\n    assert double(3) == 6\n"
    )
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([fence("def double(n):\n    return n * 2\n")]))

    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst).parent == tmp_path:  # the user's project, not the scratch copy
            raise OSError(30, "Read-only file system", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    code = cli.main(["fix", str(tmp_path), "--model", f"scripted:{replies}", "--apply", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 2
    assert data["status"] == "error" and data["applied"] is False
    assert "Read-only file system" in data["error"] and "\n" not in data["error"]
    assert "+    return n * 2" in data["diff"]
    assert (tmp_path / "mod.py").read_bytes() == source


def test_a_symlinked_file_stays_a_link_and_its_target_gets_the_fix(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    real = shared / "mod.py"
    real.write_text("A = 1\n")
    link = tmp_path / "mod.py"
    link.symlink_to(real)
    assert apply_fix(fixed_result(tmp_path, (link, "A = 1\n", "A = 2\n"))) == (link,)
    assert link.is_symlink() and real.read_text() == "A = 2\n"


def test_a_diff_of_code_with_a_form_feed_applies_as_it_was_verified(tmp_path: Path) -> None:
    # str.splitlines breaks at "\f" and U+2028 too: a diff made so runs lines together.
    before = "def f():\n    return 1\n\f\ns = 'a\u2028b'\n"
    after = before.replace("return 1", "return 2")
    (tmp_path / "m.py").write_text(before)
    diff = unified_diff("m.py", before, after)
    subprocess.run(["git", "apply", "-"], input=diff, text=True, cwd=tmp_path, check=True)
    assert (tmp_path / "m.py").read_text() == after
