"""Unit tests of the server's pure parts: settings, edits, diagnostics, project state, CLI."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types
from server_support import apply_text_edits as apply_edits

from cyclefix import config as S
from cyclefix.errors import CyclefixError
from cyclefix.refine.types import Target
from cyclefix.runner import results as R
from cyclefix.server import cli as server_cli
from cyclefix.server.diagnostics import (
    CODE_COLLECTION,
    CODE_FIX,
    CODE_SUSPECT,
    CODE_SYNTAX,
    CODE_TEST_FAILED,
    Failure,
    FixNotice,
    build_diagnostics,
    def_line,
    syntax_problem,
)
from cyclefix.server.edits import LineIndex, dominant_newline, minimal_edits
from cyclefix.server.server import run_status_line
from cyclefix.server.state import ProjectState
from cyclefix.session.models import install_hint

# ---------------------------------------------------------------- settings


def test_settings_defaults() -> None:
    s = S.Settings()
    assert s.model == "qwen2.5-coder-1.5b"
    assert s.auto_refine is True
    assert s.debounce == 0.3
    assert s.tests == ()


def test_settings_parse_camel_snake_kebab_and_section() -> None:
    values, warnings = S.parse_overrides(
        {"cyclefix": {"autoRefine": False, "per_test_timeout": 5, "rounds": 2, "tests": "t.py"}},
        "init",
    )
    assert warnings == []
    assert values == {
        "auto_refine": False,
        "per_test_timeout": 5.0,
        "rounds": 2,
        "tests": ("t.py",),
    }
    values, _ = S.parse_overrides({"auto-refine": True, "debounce": 0}, "toml")
    assert values == {"auto_refine": True, "debounce": 0.0}
    values, _ = S.parse_overrides({"python": " /srv/app/.venv/bin/python "}, "init")
    assert values == {"python": "/srv/app/.venv/bin/python"}
    assert S.merge(values).refine_config().python == "/srv/app/.venv/bin/python"
    values, _ = S.parse_overrides({"python": ""}, "init")
    assert values == {"python": None}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"rounds": 0}, "rounds must be a whole number"),
        ({"rounds": True}, "rounds must be a whole number"),
        ({"rounds": 2.5}, "rounds must be a whole number"),
        ({"debounce": -1}, "debounce must be a number of seconds"),
        ({"debounce": "fast"}, "debounce must be a number of seconds"),
        ({"budget": float("nan")}, "budget must be a number"),
        ({"autoRefine": "yes"}, "autoRefine must be true or false"),
        ({"model": ""}, "model must be a non-empty string"),
        ({"tests": [1, 2]}, "tests must be a list"),
        ({"python": 3}, "python must be the path of a Python interpreter"),
        ({"colour": "red"}, "unknown setting 'colour'"),
        ([1, 2], "settings must be an object"),
    ],
)
def test_settings_invalid_values_warn_and_are_dropped(raw: object, fragment: str) -> None:
    values, warnings = S.parse_overrides(raw, "src")
    assert values == {}
    assert len(warnings) == 1
    assert fragment in warnings[0]
    assert warnings[0].startswith("src: ")


def test_settings_merge_later_layers_win_key_by_key() -> None:
    merged = S.merge({"model": "a", "rounds": 2}, {"rounds": 3}, {"debounce": 0.0})
    assert (merged.model, merged.rounds, merged.debounce) == ("a", 3, 0.0)
    config = merged.refine_config(seed=7)
    assert (config.rounds, config.seed, config.per_test_timeout) == (3, 7, 3.0)


def test_settings_pyproject(tmp_path: Path) -> None:
    assert S.read_pyproject(tmp_path) == ({}, [])
    (tmp_path / "pyproject.toml").write_text(
        '[tool.cyclefix]\nmodel = "m"\nauto-refine = false\nrounds = "many"\n'
    )
    values, warnings = S.read_pyproject(tmp_path)
    assert values == {"model": "m", "auto_refine": False}
    assert len(warnings) == 1 and "rounds" in warnings[0]
    (tmp_path / "pyproject.toml").write_text("[tool.cyclefix\n")
    values, warnings = S.read_pyproject(tmp_path)
    assert values == {} and "invalid TOML" in warnings[0]


# ------------------------------------------------------------------- edits


def test_minimal_edit_touches_only_the_change() -> None:
    old = "def f(x):\n    return x + 1\n\n\ndef g():\n    pass\n"
    new = "def f(x):\n    return x - 1\n\n\ndef g():\n    pass\n"
    edits = minimal_edits(old, new)
    assert len(edits) == 1
    assert edits[0].new_text == "-"
    assert edits[0].range == types.Range(
        start=types.Position(line=1, character=13), end=types.Position(line=1, character=14)
    )


def test_minimal_edits_two_hunks_and_crlf_kept() -> None:
    old = "a = 1\r\nb = 2\r\nc = 3\r\nd = 4\r\ne = 5\r\n"
    new = "a = 10\nb = 2\nc = 3\nd = 4\ne = 50\nf = 6\n"
    edits = minimal_edits(old, new)
    assert len(edits) == 2
    result = apply_edits(old, edits)
    assert result == "a = 10\r\nb = 2\r\nc = 3\r\nd = 4\r\ne = 50\r\nf = 6\r\n"


def test_minimal_edits_utf16_positions_after_astral_characters() -> None:
    old = 's = "\U0001f600"; x = 1\n'
    new = 's = "\U0001f600"; x = 2\n'
    (edit,) = minimal_edits(old, new, "utf-16")
    # The emoji is two UTF-16 code units, four UTF-8 bytes, one code point.
    assert edit.range.start.character == len('s = "') + 2 + len('"; x = ')
    (edit8,) = minimal_edits(old, new, "utf-8")
    assert edit8.range.start.character == len('s = "') + 4 + len('"; x = ')
    (edit32,) = minimal_edits(old, new, "utf-32")
    assert edit32.range.start.character == len('s = "') + 1 + len('"; x = ')


def test_minimal_edits_identical_and_missing_final_newline() -> None:
    assert minimal_edits("x\n", "x\n") == []
    assert apply_edits("x = 1", minimal_edits("x = 1", "x = 1\ny = 2\n")) == "x = 1\ny = 2\n"


def test_dominant_newline() -> None:
    assert dominant_newline("a\r\nb\r\nc\n") == "\r\n"
    assert dominant_newline("no newline") == "\n"
    assert dominant_newline("a\rb\r") == "\r"


_line = st.text(alphabet="ab é\U0001f600", max_size=6)
_ending = st.sampled_from(["\n", "\r\n"])


@st.composite
def _texts(draw: st.DrawFn) -> str:
    lines = draw(st.lists(st.tuples(_line, _ending), max_size=8))
    text = "".join(a + b for a, b in lines)
    if draw(st.booleans()):
        text += draw(_line)
    return text


@settings(max_examples=300, deadline=None)
@given(old=_texts(), new=_texts(), encoding=st.sampled_from(["utf-8", "utf-16", "utf-32"]))
def test_minimal_edits_property(old: str, new: str, encoding: str) -> None:
    edits = minimal_edits(old, new, encoding)
    result = apply_edits(old, edits, encoding)

    def norm(t: str) -> str:
        return t.replace("\r\n", "\n")

    assert norm(result) == norm(new)
    if "\r\n" in old and old.count("\n") == old.count("\r\n"):
        # A consistently CRLF file stays CRLF.
        assert result.count("\n") == result.count("\r\n")
    if old == new:
        assert edits == []


def test_line_index_ranges_skip_indentation() -> None:
    index = LineIndex("def f():\n    assert f() == 2\n")
    assert index.line_range(1) == types.Range(
        start=types.Position(line=1, character=4), end=types.Position(line=1, character=19)
    )
    assert index.line_text(5) == ""


# ------------------------------------------------------------- diagnostics

ROOT = Path("/project")
SOURCE_TEXT = '"""Stats."""\n\n\n@cache\ndef median(values):\n    return values[len(values) // 2]\n'
TEST_TEXT = "from stats import median\n\n\ndef test_median():\n    assert median([3, 1, 2]) == 2\n"
TEXTS = {ROOT / "stats.py": SOURCE_TEXT, ROOT / "tests/test_stats.py": TEST_TEXT}
MEDIAN = Target(
    path="stats.py",
    qualname="median",
    start_line=4,
    end_line=6,
    source="@cache\ndef median(values):\n    return values[len(values) // 2]\n",
)


def _case(
    nodeid: str = "tests/test_stats.py::test_median", line: int | None = 5
) -> R.TestCaseResult:
    return R.TestCaseResult(
        nodeid=nodeid,
        outcome="failed",
        path="tests/test_stats.py",
        line=line,
        exc_type="AssertionError",
        assert_source="assert median([3, 1, 2]) == 2",
        expected="2",
        actual="1",
        project_frames=(R.Frame(path="stats.py", line=6, function="median"),),
    )


def _build(**kwargs: object) -> dict[Path, list[types.Diagnostic]]:
    return dict(
        build_diagnostics(
            ROOT,
            read_text=TEXTS.get,
            to_uri=lambda p: f"file://{p}",
            describe=lambda c: f"Expected output: {c.expected}, Actual output: {c.actual}",
            **kwargs,  # type: ignore[arg-type]
        )
    )


def test_def_line_skips_decorators() -> None:
    assert def_line(MEDIAN) == 5


def test_failure_gives_linked_errors_in_test_and_source() -> None:
    by_path = _build(failures=[Failure(case=_case(), suspects=(MEDIAN,))])
    (in_test,) = by_path[ROOT / "tests/test_stats.py"]
    (in_source,) = by_path[ROOT / "stats.py"]
    assert in_test.source == in_source.source == "cyclefix"
    assert in_test.severity == in_source.severity == types.DiagnosticSeverity.Error
    assert in_test.code == CODE_TEST_FAILED and in_source.code == CODE_SUSPECT
    assert in_test.range.start == types.Position(line=4, character=4)
    assert "test_median failed" in in_test.message and "Actual output: 1" in in_test.message
    assert in_source.range.start.line == 4  # the def line, not the decorator
    assert in_source.message.startswith("median() fails test_median")
    assert in_test.related_information is not None
    assert in_test.related_information[0].location.uri == "file:///project/stats.py"
    assert in_test.related_information[0].location.range.start.line == 4
    assert in_source.related_information is not None
    assert in_source.related_information[0].location.uri == "file:///project/tests/test_stats.py"


def test_failures_sharing_a_suspect_give_it_one_diagnostic() -> None:
    failures = [
        Failure(case=_case("tests/test_stats.py::test_median"), suspects=(MEDIAN,)),
        Failure(
            case=_case("tests/test_stats.py::test_median[even]", line=None), suspects=(MEDIAN,)
        ),
    ]
    by_path = _build(failures=failures)
    assert len(by_path[ROOT / "tests/test_stats.py"]) == 2
    (in_source,) = by_path[ROOT / "stats.py"]
    assert "fails 2 tests" in in_source.message
    assert in_source.related_information is not None and len(in_source.related_information) == 2
    # Without a failing line the test's def line is used.
    lines = sorted(d.range.start.line for d in by_path[ROOT / "tests/test_stats.py"])
    assert lines == [3, 4]


def test_collection_syntax_and_fix_diagnostics() -> None:
    problem = syntax_problem(ROOT / "stats.py", "def f(:\n    pass\n")
    assert problem is not None and problem.line == 1
    by_path = _build(
        collection_errors=[R.CollectionError(path="tests/test_stats.py", message="ImportError: x")],
        syntax_problems=[problem],
        fix=FixNotice(fix_id="fix-9", passed=5, locations=((ROOT / "stats.py", 5),)),
    )
    codes = sorted(str(d.code) for d in by_path[ROOT / "stats.py"])
    assert codes == sorted([CODE_SYNTAX, CODE_FIX])
    fix_diag = next(d for d in by_path[ROOT / "stats.py"] if d.code == CODE_FIX)
    assert fix_diag.message == "verified fix available (5 tests pass)"
    assert fix_diag.severity == types.DiagnosticSeverity.Information
    assert fix_diag.data == {"fixId": "fix-9"}
    (collection,) = by_path[ROOT / "tests/test_stats.py"]
    assert collection.code == CODE_COLLECTION and "ImportError" in collection.message
    assert syntax_problem(ROOT / "ok.py", "x = 1\n") is None


# ---------------------------------------------------------------- state


def _run(tests: tuple[R.TestCaseResult, ...], selected: tuple[str, ...]) -> R.TestRunResult:
    return R.TestRunResult(root=ROOT, tests=tests, exit_code=1, duration=0.1, selected=selected)


def test_state_merges_partial_runs() -> None:
    state = ProjectState(root=ROOT)
    a_fail = _case("tests/test_a.py::test_1")
    b_fail = _case("tests/test_b.py::test_2")
    state.ledger.record(_run((a_fail,), ("tests/test_a.py",)), {a_fail.nodeid: (MEDIAN,)})
    state.ledger.record(_run((b_fail,), ("tests/test_b.py",)), {})
    assert set(state.failures) == {"tests/test_a.py::test_1", "tests/test_b.py::test_2"}
    assert state.failures["tests/test_a.py::test_1"].suspects == (MEDIAN,)
    # Re-running test_a (now passing) clears only its failure.
    passed = R.TestCaseResult(nodeid="tests/test_a.py::test_1", outcome="passed")
    state.ledger.record(_run((passed,), ("tests/test_a.py",)))
    assert set(state.failures) == {"tests/test_b.py::test_2"}
    # A test that vanished from a re-run file (renamed) is cleared too.
    state.ledger.record(_run((), ("/project/tests/test_b.py",)))
    assert state.failures == {}


def test_state_full_run_replaces_everything_and_cancelled_runs_are_ignored() -> None:
    state = ProjectState(root=ROOT)
    state.ledger.record(_run((_case("tests/test_a.py::t"),), ("tests/test_a.py",)))
    cancelled = R.TestRunResult(root=ROOT, tests=(), exit_code=2, duration=0, cancelled=True)
    state.ledger.record(cancelled)
    assert set(state.failures) == {"tests/test_a.py::t"}
    state.ledger.record(_run((), ()))
    assert state.failures == {}


# ------------------------------------------------------------------- cli


def test_cli_registers_serve_and_parses_tcp() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    server_cli.register(sub)
    args = parser.parse_args(["serve", "--tcp", "127.0.0.1:2087", "--log-file", "/tmp/x.log"])
    assert args.tcp == "127.0.0.1:2087" and args.log_file == Path("/tmp/x.log")
    assert server_cli.parse_host_port("localhost:2087") == ("localhost", 2087)
    assert server_cli.parse_host_port("[::1]:9000") == ("::1", 9000)
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--stdio", "--tcp", "h:1"])
    for bad in ("2087", "host:port", "host:0", ":80"):
        with pytest.raises(CyclefixError):
            server_cli.parse_host_port(bad)


def test_install_hint_only_for_registry_names() -> None:
    assert "cyclefix models install qwen" in install_hint("qwen", "model qwen is not installed")
    assert install_hint("/m/x.gguf", "missing") == "missing"
    assert install_hint("scripted:/r.json", "missing") == "missing"


def test_run_summary_tells_the_editor_about_tests_not_run() -> None:
    failing = _case("tests/test_a.py::test_1")
    run = _run((failing, R.TestCaseResult(nodeid="tests/test_a.py::test_2", outcome="passed")), ())
    assert run_status_line(run) == "1/2 tests pass, 1 failing"
    stopped = dataclasses.replace(run, notes=("stopped at the timeout limit: 7 test(s) not run",))
    assert run_status_line(stopped) == (
        "1/2 tests pass, 1 failing; stopped at the timeout limit: 7 test(s) not run"
    )


HELPER_MODULE = """\
def helper(x):
    if x > 1:
        return x - 1
    return x


def caller(x):
    return helper(x)
"""

HELPER_TESTS = """\
from m import caller


def test_two():
    assert caller(2) == 2


def test_one():
    assert caller(1) == 1
"""


def test_each_failure_is_localized_with_the_runs_passing_tests(tmp_path: Path) -> None:
    # Alone, the failing test blames `caller` (its assert names it); with the passing test that
    # ran all of `caller` but not the faulty line of `helper`, the run points at `helper`.
    from cyclefix.refine import RefineConfig, check
    from cyclefix.session.ledger import localize

    (tmp_path / "conftest.py").write_text("")
    (tmp_path / "m.py").write_text(HELPER_MODULE)
    (tmp_path / "test_m.py").write_text(HELPER_TESTS)
    run = check(tmp_path, config=RefineConfig())
    assert run.traced and [t.nodeid for t in run.failures] == ["test_m.py::test_two"]
    suspects = localize(run)["test_m.py::test_two"]
    assert [t.qualname for t in suspects][:2] == ["helper", "caller"]
