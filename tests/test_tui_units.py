"""The TUI's pure parts: project scanning, what a save re-runs, texts, diffs, the CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from rich.console import Console
from textual.app import App, ComposeResult
from textual.widgets.data_table import ColumnKey

from cyclefix.cli import build_parser, main
from cyclefix.refine import Attempt, FileChange
from cyclefix.refine import TestCaseResult as CaseResult
from cyclefix.session.models import install_hint
from cyclefix.tui.diff_render import side_by_side, unified
from cyclefix.tui.formatting import (
    nodeid_file,
    nodeid_test,
    short_feedback,
    verdict_text,
)
from cyclefix.tui.project import (
    OwnWrites,
    is_project_python_file,
    python_files,
    selection_for_changes,
)
from cyclefix.tui.widgets.results_table import ResultsTable
from cyclefix.tui.widgets.source_view import render_source
from cyclefix.tui.widgets.status_bar import StatusInfo, status_text


def render(renderable: object, width: int = 100) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def make_tree(root: Path, files: list[str]) -> None:
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")


def test_python_files_skip_hidden_caches_and_envs(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        [
            "pkg/core.py",
            "tests/test_core.py",
            ".venv/lib/site.py",
            ".cyclefix-scratch/core.py",
            "cyclefix-scratch-x1/proj/core.py",
            "pkg/__pycache__/core.py",
            "build/lib/core.py",
            "notes.txt",
        ],
    )
    assert python_files(tmp_path) == ("pkg/core.py", "tests/test_core.py")
    assert not is_project_python_file(tmp_path, tmp_path / ".venv" / "lib" / "site.py")
    assert not is_project_python_file(tmp_path, tmp_path.parent / "elsewhere.py")


def test_a_saved_test_file_reruns_only_itself(tmp_path: Path) -> None:
    make_tree(tmp_path, ["core.py", "tests/test_core.py", "tests/test_other.py"])
    selection = selection_for_changes(tmp_path, [tmp_path / "tests" / "test_core.py"], None)
    assert selection is not None
    assert selection.tests == ("tests/test_core.py",) and not selection.full


def test_a_saved_source_file_runs_the_tests_that_import_it(tmp_path: Path) -> None:
    make_tree(tmp_path, ["core.py", "tests/test_core.py"])
    selection = selection_for_changes(tmp_path, [tmp_path / "core.py"], None)
    assert selection is not None
    assert selection.path == tmp_path / "core.py" and selection.tests is None


def test_several_sources_or_deleted_files_run_everything(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a.py", "b.py", "tests/test_a.py"])
    both = selection_for_changes(tmp_path, [tmp_path / "a.py", tmp_path / "b.py"], None)
    gone = selection_for_changes(tmp_path, [tmp_path / "c.py"], None)
    assert both is not None and both.full and both.path == tmp_path
    assert gone is not None and gone.full


def test_irrelevant_changes_run_nothing_and_configured_tests_win(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a.py", ".venv/x.py"])
    assert selection_for_changes(tmp_path, [tmp_path / ".venv" / "x.py"], None) is None
    assert selection_for_changes(tmp_path, [tmp_path / "notes.txt"], None) is None
    chosen = selection_for_changes(tmp_path, [tmp_path / "a.py"], ["tests/test_a.py::test_x"])
    assert chosen is not None and chosen.tests == ("tests/test_a.py::test_x",)


def test_own_writes_are_recognised_until_the_user_edits(tmp_path: Path) -> None:
    path = tmp_path / "core.py"
    path.write_text("fixed\n")
    own = OwnWrites()
    own.record([path])
    assert own.is_own(path)
    assert own.is_own(path)  # an atomic write can be reported more than once
    path.write_text("the user's edit\n")
    assert not own.is_own(path)
    path.write_text("fixed\n")
    assert not own.is_own(path)  # forgotten after the user's edit


def test_short_feedback_prefers_expected_and_actual() -> None:
    case = CaseResult(
        "tests/test_c.py::test_m",
        "failed",
        expected="2",
        actual="1.5",
        assert_explanation="assert 1.5 == 2",
    )
    assert short_feedback(case) == "expected 2, got 1.5"
    crash = CaseResult(
        "t.py::t", "error", exc_type="ZeroDivisionError", exc_message="division by zero"
    )
    assert short_feedback(crash) == "ZeroDivisionError: division by zero"
    assert short_feedback(CaseResult("t.py::t", "timeout")) == "timed out"
    assert short_feedback(CaseResult("t.py::t", "passed")) == ""
    long = CaseResult("t.py::t", "failed", assert_explanation="assert " + "x" * 200)
    assert len(short_feedback(long)) == 70 and short_feedback(long).endswith("…")


def test_node_id_parts() -> None:
    assert nodeid_file("tests/test_c.py::test_m[1]") == "tests/test_c.py"
    assert nodeid_test("tests/test_c.py::test_m[1]") == "test_m[1]"
    assert nodeid_test("tests/test_c.py") == "tests/test_c.py"


def attempt(verdict: str) -> Attempt:
    return Attempt(1, "code", verdict, "", "", 0.2, 10, 10, 1.0)  # type: ignore[arg-type]


def test_verdicts_say_why_an_attempt_was_rejected() -> None:
    assert verdict_text(attempt("copy")).plain == "copy of the faulty code"
    assert verdict_text(attempt("syntax_error")).plain == "syntax error"
    assert verdict_text(attempt("tests_failed")).plain == "tests still failing"
    assert "green" in str(verdict_text(attempt("passed")).style)


def test_model_errors_name_the_install_command_for_registry_models() -> None:
    text = install_hint("qwen2.5-coder-0.5b", "model qwen2.5-coder-0.5b is not installed")
    assert text.endswith("cyclefix models install qwen2.5-coder-0.5b)")
    already = "not installed; run: cyclefix models install qwen2.5-coder-0.5b"
    assert install_hint("qwen2.5-coder-0.5b", already) == already
    assert install_hint("/models/x.gguf", "no such file") == "no such file"
    assert install_hint("openai:http://h#m", "refused") == "refused"


def test_side_by_side_shows_old_left_and_new_right() -> None:
    original = "def f(x):\n    return x + 1\n\n\ndef g():\n    pass\n"
    fixed = "def f(x):\n    return x + 2\n\n\ndef g():\n    pass\n"
    change = FileChange(Path("/p/m.py"), original, fixed, "")
    text = render(side_by_side([change], ["m.py"]), width=80)
    row = next(line for line in text.splitlines() if "x + 1" in line)
    assert row.index("x + 1") < row.index("x + 2")
    assert "m.py" in text.splitlines()[0]


def test_diff_views_show_control_and_bidi_characters_as_escapes() -> None:
    # The TUI's diff is what the user accepts: an ESC sequence in a comment must not redraw
    # it, nor an override reorder a line, nor a form feed or lone CR split one.
    original = "def f(a, b):\n    return a * b\n"
    fixed = "def f(a, b):\n    return a * b  # \x1b[1A\x1b[2K\u202e\x0cx\ry\n"
    diff = "-    return a * b\n+    return a * b  # \x1b[1A\x1b[2K\u202e\x0cx\ry\n"
    change = FileChange(Path("/p/m.py"), original, fixed, diff)
    for view in (unified(diff), side_by_side([change], ["m.py"])):
        text = render(view, width=200)
        assert not any(ch in text for ch in "\x1b\u202e\x0c\r")
        assert "# \\x1b[1A\\x1b[2K\\u202e\\x0cx\\x0dy" in text
    rows = render(side_by_side([change], ["m.py"]), width=200).splitlines()
    assert len(rows) == 4  # the name, the header, the same line and the changed one


def test_ordinary_diff_view_is_unchanged() -> None:
    diff = "--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-\treturn xs[1]\n+\treturn xs[0]\n"
    assert render(unified(diff), width=80) == diff.expandtabs(4) + "\n"


def test_feedback_and_test_ids_show_controls_as_escapes() -> None:
    case = CaseResult("t.py::t[\x1b[2K]", "failed", exc_type="E", exc_message="\x1b[1Aok\u2067")
    assert short_feedback(case) == "E: \\x1b[1Aok\\u2067"
    cells = ResultsTable()._case_cells(case)
    assert cells[0].plain == "t[\\x1b[2K]"


def test_source_rendering_marks_failing_and_suspect_lines() -> None:
    code = "def f(x):\n    return x + 1\n\nprint(f(1))\n"
    lines = render(render_source(code, failing_lines=[2], suspect_lines=[1, 2])).splitlines()
    assert lines[0].startswith("▍1 def f")
    assert lines[1].startswith("✗2 ")
    assert lines[3].startswith(" 4 print")
    assert len(lines) == 4  # no extra line for the final newline


def test_status_text_hides_what_is_unknown() -> None:
    plain = status_text(StatusInfo("refining", "", "qwen", 2, 4, 31.25, 75.0)).plain
    assert plain == " refining  │ model qwen │ round 2/4 │ 31.2 tok/s │ elapsed 1:15"
    assert status_text(StatusInfo("✓ all 3 tests pass", "", "qwen")).plain == (
        " ✓ all 3 tests pass  │ model qwen"
    )


def test_cli_registers_tui_with_its_options() -> None:
    args = build_parser().parse_args(
        ["tui", "proj", "--model", "m.gguf", "--tests", "tests/test_a.py", "--rounds", "2"]
    )
    assert isinstance(args, argparse.Namespace)
    assert args.path == Path("proj") and args.model == "m.gguf"
    assert args.tests == ["tests/test_a.py"] and args.rounds == 2
    assert build_parser().parse_args(["tui"]).path == Path(".")


def test_cli_refuses_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tui", str(tmp_path / "nowhere")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


class _OneTable(App[None]):
    def compose(self) -> ComposeResult:
        yield ResultsTable(show_timings=False, id="results")


def _case(name: str, message: str) -> CaseResult:
    return CaseResult(
        nodeid=f"tests/test_calc.py::{name}",
        outcome="failed",
        path="tests/test_calc.py",
        exc_type="AssertionError",
        exc_message=message,
    )


async def test_results_columns_fit_their_cells_at_once_and_shrink() -> None:
    app = _OneTable()
    async with app.run_test(size=(140, 20)):
        table = app.query_one(ResultsTable)
        long_case = _case("test_a_rather_long_test_name", "assert 10 == 20")
        table.show_results([long_case])
        # Before the table is next idle: Textual alone would still show the labels' widths.
        widths = {str(key.value): column.width for key, column in table.columns.items()}
        assert widths["test"] == len("test_a_rather_long_test_name")
        assert widths["feedback"] == len(short_feedback(long_case))
        table.show_results([_case("test_b", "assert 1 == 2")])
        assert table.columns[ColumnKey("test")].width == len("test_b")
