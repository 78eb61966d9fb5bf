"""`cyclefix fix` as a user runs it: exit codes, JSON schema, --apply, one-line errors."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LEAP_FIX = (
    "```python\ndef is_leap_year(year: int) -> bool:\n"
    "    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n```\n"
)


def cyclefix(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cyclefix.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def leap(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES / "leap_year", tmp_path / "leap_year")
    return tmp_path / "leap_year"


def scripted(tmp_path: Path, *replies: str) -> str:
    spec = tmp_path / "replies.json"
    spec.write_text(json.dumps(list(replies)))
    return f"scripted:{spec}"


def test_fix_json_apply_writes_verified_fix(leap: Path, tmp_path: Path) -> None:
    proc = cyclefix(
        "fix",
        str(leap / "calendar_utils.py"),
        "--tests",
        str(leap / "tests"),
        "--model",
        scripted(tmp_path, LEAP_FIX),
        "--json",
        "--apply",
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["schema"] == "cyclefix.fix/1" and data["status"] == "fixed" and data["applied"]
    assert data["tests"]["initial"]["failed"] == 5 and data["tests"]["final"]["failed"] == 0
    assert data["rounds"][0]["attempts"][0]["verdict"] == "passed"
    assert data["fixed_by"] == {"round": 1, "attempt": 0}
    assert "year % 400 == 0" in (leap / "calendar_utils.py").read_text()


def test_fix_without_apply_changes_nothing_and_prints_diff(leap: Path, tmp_path: Path) -> None:
    before = (leap / "calendar_utils.py").read_text()
    proc = cyclefix("fix", str(leap), "--model", scripted(tmp_path, LEAP_FIX))
    assert proc.returncode == 0, proc.stderr
    assert "+    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)" in proc.stdout
    assert (leap / "calendar_utils.py").read_text() == before


def test_not_fixed_exits_1_and_leaves_file(leap: Path, tmp_path: Path) -> None:
    before = (leap / "calendar_utils.py").read_text()
    wrong = "```python\ndef is_leap_year(year):\n    return False\n```\n"
    proc = cyclefix(
        "fix", str(leap), "--model", scripted(tmp_path, wrong), "--rounds", "2", "--json", "--apply"
    )
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["status"] == "not_fixed" and not data["applied"] and data["diff"] == ""
    assert (leap / "calendar_utils.py").read_text() == before


def test_missing_model_is_a_one_line_error(leap: Path) -> None:
    proc = cyclefix("fix", str(leap), "--model", str(leap / "nope.gguf"))
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("cyclefix: error:")]
    assert len(errors) == 1 and "nope.gguf" in errors[0]
    assert "Traceback" not in proc.stderr


def test_json_errors_are_one_object_on_stdout(leap: Path, tmp_path: Path) -> None:
    # Errors before any test ran (missing model, missing path) still answer --json.
    for args in (
        ("fix", str(leap), "--model", str(leap / "nope.gguf"), "--json"),
        ("fix", str(tmp_path / "nope.py"), "--json"),
    ):
        proc = cyclefix(*args)
        assert proc.returncode == 2
        data = json.loads(proc.stdout)
        assert data["schema"] == "cyclefix.fix/1" and data["status"] == "error"
        assert "nope" in data["error"] and not data["applied"] and data["rounds"] == []
        assert proc.stderr.strip().splitlines()[-1].startswith("cyclefix: error:")


def test_corrupt_model_file_is_a_one_line_error(leap: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all" * 100)
    proc = cyclefix("fix", str(leap), "--model", str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "GGUF" in proc.stderr


def test_missing_path_and_bad_options(tmp_path: Path) -> None:
    proc = cyclefix("fix", str(tmp_path / "missing.py"))
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = cyclefix("fix", str(tmp_path), "--rounds", "0")
    assert proc.returncode == 2


def test_missing_python_is_a_one_line_error(leap: Path, tmp_path: Path) -> None:
    proc = cyclefix("fix", str(leap), "--python", str(tmp_path / "nope"), "--json")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"cyclefix: error: no such Python interpreter: {tmp_path / 'nope'}"
    ]
    assert json.loads(proc.stdout)["status"] == "error"


def test_already_passing_loads_no_model(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("")
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n")
    proc = cyclefix("fix", str(tmp_path), "--model", "no-such-model", "--json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["status"] == "already_passing"


def test_non_utf8_source_is_reported_not_crashed(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("")
    (tmp_path / "latin.py").write_bytes(b"def f():\n    return '\xe9'\n")
    (tmp_path / "test_latin.py").write_text(
        "from latin import f\n\n\ndef test_f():\n    assert f() == 'e'\n"
    )
    proc = cyclefix("fix", str(tmp_path), "--model", scripted(tmp_path, "nothing"), "--json")
    assert proc.returncode in (1, 2)
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "latin.py").read_bytes() == b"def f():\n    return '\xe9'\n"


def test_tests_in_a_sibling_folder_without_config(tmp_path: Path) -> None:
    # No pyproject or conftest: the root is the folder holding both the program and its tests,
    # and the tests import the program as a package from there (python -m pytest's cwd).
    project = tmp_path / "bugs"
    (project / "python_programs").mkdir(parents=True)
    (project / "python_testcases").mkdir()
    program = project / "python_programs" / "gcd.py"
    program.write_text(
        "def gcd(a, b):\n    if b == 0:\n        return a\n    return gcd(a % b, b)\n"
    )
    (project / "python_testcases" / "test_gcd.py").write_text(
        "from python_programs.gcd import gcd\n\n\ndef test_gcd():\n    assert gcd(35, 21) == 7\n"
    )
    fixed = "```python\ndef gcd(a, b):\n    if b == 0:\n        return a\n    return gcd(b, a % b)\n```\n"
    proc = subprocess.run(
        [sys.executable, "-m", "cyclefix.cli", "fix", "python_programs/gcd.py",
         "--tests", "python_testcases/test_gcd.py", "--model", scripted(tmp_path, fixed),
         "--json", "--apply"],
        capture_output=True, text=True, timeout=120, cwd=project,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "fixed" and data["applied"]
    assert "return gcd(b, a % b)" in program.read_text()


def test_progress_keeps_brackets_of_test_ids_and_source(tmp_path: Path) -> None:
    # Rich markup must not eat `[1-2]` in a parametrized id or `xs[0]` in a source line.
    project = tmp_path / "brackets"
    project.mkdir()
    (project / "first.py").write_text("def first(xs):\n    return xs[1]\n")
    (project / "test_first.py").write_text(
        "import pytest\nfrom first import first\n\n\n"
        "@pytest.mark.parametrize('xs, want', [([1, 2], 1)])\n"
        "def test_first(xs, want):\n    assert first(xs) == want\n"
    )
    fixed = "```python\ndef first(xs):\n    return xs[0]\n```\n"
    proc = cyclefix("fix", str(project), "--model", scripted(tmp_path, fixed))
    assert proc.returncode == 0, proc.stderr
    # Piped stdout: the progress is on stderr, the diff alone on stdout.
    assert "test_first.py::test_first[xs0-1]" in proc.stderr
    assert "return xs[1]" in proc.stdout


def test_progress_line_is_plain_words_without_verdict_names_or_internals() -> None:
    from rich.console import Console

    from cyclefix.refine.console import Progress
    from cyclefix.refine.types import Attempt, AttemptFinished

    out = Console(record=True, width=200)
    progress = Progress(out)
    for forked in (False, True):
        attempt = Attempt(1, "", "tests_failed", "", "1 of 2 tests still fail", 0.2, 10, 5, 1.0)
        progress(AttemptFinished(dataclasses.replace(attempt, forked=forked)))
    first, second = out.export_text().splitlines()
    assert first == second == "  ✗ candidate: 1 of 2 tests still fail"


def test_verbose_progress_gives_speed_and_where_an_answer_came_from() -> None:
    from rich.console import Console

    from cyclefix.refine.console import VERBOSE, Progress
    from cyclefix.refine.types import Attempt, AttemptFinished

    out = Console(record=True, width=200)
    attempt = Attempt(1, "", "syntax_error", "", "", 0.2, 10, 5, 2.0, forked=True)
    Progress(out, VERBOSE)(AttemptFinished(attempt))
    assert out.export_text().strip() == (
        "✗ candidate: is not valid Python (5 tokens in 2.0s, 2.5 tokens/s, temperature 0.2, "
        "continued from an earlier answer)"
    )


def test_not_fixed_summary_is_plain_words(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from cyclefix.refine.console import NORMAL, Outputs, print_result
    from cyclefix.refine.types import Attempt, FixResult, RoundRecord

    tried = Attempt(1, "", "tests_failed", "", "1 of 2 tests still fail", 0.2, 10, 5, 1.0)
    same = dataclasses.replace(tried, verdict="copy", detail="changes nothing")
    result = FixResult(
        "not_fixed", tmp_path, (), "", (RoundRecord(1, ("f",), (tried, same)),),
        None, None, 12.0, "m", notes=("the budget ran out",),
    )  # fmt: skip
    out = Console(record=True, width=200)
    pipe = io.StringIO()
    print_result(Outputs(out, pipe, NORMAL), result, applied=False)
    assert out.export_text().splitlines() == [
        "No verified fix after 1 round(s) in 12.0s (2 candidates tried, 1 of them the original "
        "code unchanged). Your files are unchanged.",
        "  the budget ran out",
    ]
    assert pipe.getvalue() == ""  # nothing on stdout when there is no fix


# What `cyclefix fix` shows of a verified fix is all the user sees before accepting it, and
# every line of it came from the model: nothing in it may reach the terminal as a control.
ESCAPED_DIFF = (
    "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n def f(a, b):\n"
    "-    return a * b\n"
    "+    return a * b  # \x1b[1A\x1b[2K\x1b[1A\x1b[2K\n"
    "+    return a + b\n"
)


def shown_fix(diff: str, *, piped: bool) -> tuple[str, str]:
    """What print_result writes for a verified fix with `diff`: (the console, the pipe)."""
    import io

    from rich.console import Console

    from cyclefix.refine.console import NORMAL, Outputs, print_result
    from cyclefix.refine.types import FixResult

    result = FixResult("fixed", Path("/p"), (), diff, (), None, None, 1.0, "m")
    console_file, pipe = io.StringIO(), io.StringIO()
    out = Console(file=console_file, width=200, color_system=None)
    print_result(Outputs(out, pipe if piped else None, NORMAL), result, applied=False)
    return console_file.getvalue(), pipe.getvalue()


def test_shown_diff_makes_escape_sequences_visible_text() -> None:
    shown, _ = shown_fix(ESCAPED_DIFF, piped=False)
    assert "\x1b" not in shown
    assert "+    return a * b  # \\x1b[1A\\x1b[2K\\x1b[1A\\x1b[2K\n" in shown
    assert "+    return a + b\n" in shown


def test_shown_diff_makes_every_other_control_character_visible() -> None:
    hidden = "\r\x07\x08\x0b\x0c\x00\x7f\x85\x9b\u2028"
    shown, _ = shown_fix(f"+x = 1  # {hidden}y\n", piped=False)
    assert "+x = 1  # \\x0d\\x07\\x08\\x0b\\x0c\\x00\\x7f\\x85\\x9b\\u2028y\n" in shown
    assert not any(ch in shown for ch in hidden)


def test_shown_diff_makes_bidi_overrides_and_isolates_visible() -> None:
    # Trojan Source: an override or isolate reorders what the terminal draws of the line.
    controls = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    shown, _ = shown_fix(f'+    s = "user{controls}"  # admin\n', piped=False)
    assert '\\u202a\\u202b\\u202c\\u202d\\u202e\\u2066\\u2067\\u2068\\u2069"  # admin' in shown
    assert not any(ch in shown for ch in controls)


def test_ordinary_diff_is_shown_unchanged_with_its_tabs() -> None:
    from cyclefix.refine.console import visible

    diff = (
        "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n def f(a, b):\n"
        "-\treturn a * b  # ünïcode, [brackets]\n+\treturn a + b\r\n"
    )
    assert visible(diff) == diff
    shown, pipe = shown_fix(diff, piped=False)
    assert shown.startswith(diff.replace("\r\n", "\n").expandtabs(4))  # Rich expands tabs
    assert pipe == ""


def test_piped_diff_stays_exact_and_stderr_shows_it_escaped() -> None:
    # The diff on a pipe is for `git apply`: what was verified, byte for byte.
    progress, pipe = shown_fix(ESCAPED_DIFF, piped=True)
    assert pipe == ESCAPED_DIFF
    assert "\x1b" not in progress
    assert "warning: the diff on stdout holds control" in progress
    assert "# \\x1b[1A\\x1b[2K\\x1b[1A\\x1b[2K\n" in progress
    # An ordinary diff goes to the pipe alone, as before.
    progress, pipe = shown_fix("+\tx = 1\n", piped=True)
    assert pipe == "+\tx = 1\n"
    assert "warning" not in progress and "x = 1" not in progress


def test_progress_shows_test_ids_and_feedback_with_controls_visible() -> None:
    from rich.console import Console

    from cyclefix.refine.console import VERBOSE, Progress
    from cyclefix.refine.types import Attempt, AttemptFinished

    out = Console(record=True, width=400, color_system=None)
    feedback = "AssertionError: \x1b[2K\x1b[1Aall good [ok]\u202e"
    attempt = Attempt(1, "", "tests_failed", "", "1 of 2 tests still fail", 0.2, 10, 5, 1.0)
    Progress(out, VERBOSE)(AttemptFinished(dataclasses.replace(attempt, feedback=feedback)))
    text = out.export_text()
    assert "\x1b" not in text and "\u202e" not in text
    assert "AssertionError: \\x1b[2K\\x1b[1Aall good [ok]\\u202e" in text


def test_progress_shows_failing_test_ids_with_controls_visible() -> None:
    from rich.console import Console

    from cyclefix.refine.console import Progress
    from cyclefix.refine.types import TestsFinished
    from cyclefix.runner.results import TestCaseResult, TestRunResult

    case = TestCaseResult(
        "test_m.py::test_f[\x1b[2K\u2066]",
        "failed",
        exc_type="ValueError",
        exc_message="\x1b]0;x\x07",
    )
    run = TestRunResult(Path("/p"), (case,), 1, 0.5)
    out = Console(record=True, width=400, color_system=None)
    Progress(out)(TestsFinished(run, scratch=False))
    text = out.export_text()
    assert not any(ch in text for ch in "\x1b\x07\u2066")
    assert "✗ test_m.py::test_f[\\x1b[2K\\u2066]" in text
    assert "\\x1b]0;x\\x07" in text


def test_fix_with_an_escape_in_a_comment_shows_it_as_text(leap: Path, tmp_path: Path) -> None:
    # Piped: stdout holds the exact diff for `git apply`, stderr shows it with visible escapes.
    # The escape is the project's own (an answer that adds one is refused by the screen).
    source = leap / "calendar_utils.py"
    source.write_text(source.read_text().replace("bool:\n", "bool:  # \x1b[1A\x1b[2K\n", 1))
    hiding = LEAP_FIX.replace("bool:\n", "bool:  # \x1b[1A\x1b[2K\n")
    proc = cyclefix("fix", str(leap), "--model", scripted(tmp_path, hiding))
    assert proc.returncode == 0, proc.stderr
    assert "bool:  # \x1b[1A\x1b[2K\n" in proc.stdout
    assert "\x1b" not in proc.stderr
    assert "bool:  # \\x1b[1A\\x1b[2K" in proc.stderr
