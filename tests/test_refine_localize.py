"""Spectrum-based localization: what the failing and passing tests executed ranks suspects."""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import pytest

from cyclefix.refine.check import suspects
from cyclefix.refine.localize import localize
from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.spectrum import ochiai, score_functions
from cyclefix.runner import SandboxLimits, run_tests
from cyclefix.runner.results import ExecutedFunction, Frame, TestCaseResult, TestRunResult

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "invoicing"

MONEY = (
    "def percent_of(cents, percent):\n"  # 1
    "    if percent == 0:\n"  # 2
    "        return 0\n"  # 3
    "    return cents * percent // 100\n"  # 4
)
INVOICE = (
    "from shop.money import percent_of\n"  # 1
    "\n"  # 2
    "class Invoice:\n"  # 3
    "    def __init__(self, cents, percent):\n"  # 4
    "        self.cents, self.percent = cents, percent\n"  # 5
    "\n"  # 6
    "    def tax(self):\n"  # 7
    "        return percent_of(self.cents, self.percent)\n"  # 8
    "\n"  # 9
    "    def summary(self):\n"  # 10
    "        return f'tax {self.tax()}'\n"  # 11
)
TEST_SOURCE = "def test_tax():\n    invoice = Invoice(125, 10)\n    assert invoice.tax() == 13\n"

INIT = ExecutedFunction("shop/invoice.py", "Invoice.__init__", 4, (5,))
TAX = ExecutedFunction("shop/invoice.py", "Invoice.tax", 7, (8,))
SUMMARY = ExecutedFunction("shop/invoice.py", "Invoice.summary", 10, (11,))


def percent(*lines: int) -> ExecutedFunction:
    return ExecutedFunction("shop/money.py", "percent_of", 1, lines)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    for name, text in {
        "pyproject.toml": "",
        "shop/__init__.py": "",
        "shop/money.py": MONEY,
        "shop/invoice.py": INVOICE,
        "tests/test_invoice.py": "from shop.invoice import Invoice\n\n" + TEST_SOURCE,
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def failing(name: str, *executed: ExecutedFunction, assert_source: str = "") -> TestCaseResult:
    return TestCaseResult(
        nodeid=f"tests/test_invoice.py::{name}",
        outcome="failed",
        path="tests/test_invoice.py",
        line=3,
        exc_type="AssertionError",
        assert_source=assert_source or "assert invoice.tax() == 13",
        test_source=TEST_SOURCE,
        executed=executed,
    )


def passing(name: str, *executed: ExecutedFunction) -> TestCaseResult:
    return TestCaseResult(
        nodeid=f"tests/test_invoice.py::{name}", outcome="passed", executed=executed
    )


def traced(root: Path, *tests: TestCaseResult, is_traced: bool = True) -> TestRunResult:
    return TestRunResult(root=root, tests=tests, exit_code=1, duration=0.1, traced=is_traced)


def ranking(root: Path, run: TestRunResult) -> list[str]:
    loc = localize(ProjectIndex(root), run.failures, spectrum=run)
    return [t.qualname for t in loc.targets]


def test_ochiai_is_one_for_what_only_and_every_failing_test_ran() -> None:
    assert ochiai(failed=2, passed=0, total_failed=2) == 1.0
    assert ochiai(failed=0, passed=3, total_failed=2) == 0.0
    assert math.isclose(ochiai(failed=1, passed=1, total_failed=2), 0.5)


def test_a_helper_every_failing_test_reaches_outranks_the_caller_the_assert_names(
    project: Path,
) -> None:
    run = traced(
        project,
        failing("test_tax", INIT, TAX, percent(2, 4)),
        failing("test_summary", INIT, SUMMARY, TAX, percent(2, 4)),
        passing("test_zero_rate", INIT, TAX, percent(2, 3)),
    )
    assert ranking(project, run)[0] == "percent_of"
    assert ranking(project, traced(project, *run.tests, is_traced=False))[0] == "Invoice.tax"


def test_a_helper_only_failing_tests_reach_outranks_a_caller_passing_tests_reach(
    project: Path,
) -> None:
    run = traced(
        project,
        failing("test_tax", INIT, TAX, percent(2, 4)),
        passing("test_init", INIT, TAX),
    )
    order = ranking(project, run)
    assert order.index("percent_of") < order.index("Invoice.tax")


def test_among_equal_scores_the_deepest_callee_comes_first(project: Path) -> None:
    run = traced(
        project,
        failing("test_summary", INIT, SUMMARY, TAX, percent(2, 4)),
        passing("test_init", INIT),
    )
    assert ranking(project, run)[:3] == ["percent_of", "Invoice.tax", "Invoice.summary"]


def test_among_equal_scores_a_function_failing_tests_ran_more_of_comes_first(
    project: Path,
) -> None:
    # summary (what the assert calls) and percent_of tie and neither calls the other: a
    # one-line getter is a smaller place for the fault than the code the test ran more of.
    case = failing(
        "test_summary", INIT, SUMMARY, percent(2, 4), assert_source="assert s.summary() == 'x'"
    )
    run = traced(project, case, passing("test_init", INIT))
    assert ranking(project, run)[:2] == ["percent_of", "Invoice.summary"]


def test_a_spectrum_that_tells_nothing_apart_keeps_the_evidence_order(project: Path) -> None:
    run = traced(project, failing("test_tax", INIT, TAX, percent(2, 4)))
    order = ranking(project, run)
    assert order[0] == "Invoice.tax"  # what the failing assert calls
    assert "percent_of" in order  # executed, so still a suspect, after the evidence
    loc = localize(ProjectIndex(project), run.failures, spectrum=run)
    assert loc.lines == {}
    # No line is quoted as suspicious, but every line the failing test ran is a place for
    # token edits: a short function's few lines are few candidates.
    assert loc.scored_lines[("shop/money.py", "percent_of")] == ((2, 1.0), (4, 1.0))


def test_the_crash_frame_wins_among_equal_scores(project: Path) -> None:
    crash = Frame("shop/invoice.py", 8, "tax", "return percent_of(self.cents, self.percent)")
    case = failing("test_tax", INIT, TAX, percent(2, 4))
    crashed = dataclasses.replace(case, project_frames=(crash,))
    run = traced(project, crashed, passing("test_init", INIT))
    assert ranking(project, run)[0] == "Invoice.tax"


def test_the_suspicious_lines_are_those_only_failing_tests_ran(project: Path) -> None:
    run = traced(
        project,
        failing("test_tax", INIT, TAX, percent(2, 4)),
        passing("test_zero_rate", INIT, TAX, percent(2, 3)),
    )
    loc = localize(ProjectIndex(project), run.failures, spectrum=run)
    assert loc.lines[("shop/money.py", "percent_of")] == (4,)
    assert loc.primary is not None and loc.primary.nodeid.endswith("::test_tax")
    # Every line the failing test ran is kept with its score, the best first (2: run by both).
    scored = loc.scored_lines[("shop/money.py", "percent_of")]
    assert scored[0] == (4, 1.0) and [line for line, _ in scored] == [4, 2]
    assert all(score < 1.0 for _, score in scored[1:])


def test_suspicious_lines_are_not_given_for_a_file_changed_since_the_run(project: Path) -> None:
    run = traced(project, failing("test_tax", INIT, TAX, percent(2, 4)), passing("t", INIT))
    edited = {"shop/money.py": "\n\n" + MONEY}  # a candidate moved its lines
    loc = localize(ProjectIndex(project, edited), run.failures, spectrum=run)
    assert loc.targets[0].qualname == "percent_of"
    assert ("shop/money.py", "percent_of") not in loc.lines
    assert ("shop/money.py", "percent_of") not in loc.scored_lines


def test_an_untraced_run_keeps_the_evidence_ranking_with_a_note(project: Path) -> None:
    run = TestRunResult(
        root=project,
        tests=(failing("test_tax"),),
        exit_code=1,
        duration=0.1,
        notes=("not traced: a tracer is already installed (a debugger or coverage plugin)",),
    )
    loc = localize(ProjectIndex(project), run.failures, spectrum=run)
    assert loc.targets[0].qualname == "Invoice.tax"
    assert loc.notes == (
        "ranked by tracebacks and the failing asserts only: the test run was not traced: "
        "a tracer is already installed (a debugger or coverage plugin)",
    )


def test_functions_no_failing_test_ran_get_no_score() -> None:
    scores = score_functions(
        [failing("test_tax", TAX), passing("test_summary", SUMMARY)],
        ["tests/test_invoice.py::test_tax"],
    )
    assert set(scores) == {("shop/invoice.py", "Invoice.tax")}


def test_a_comprehension_counts_for_the_function_holding_it() -> None:
    inner = ExecutedFunction("shop/invoice.py", "Invoice.tax.<locals>.<genexpr>", 8, (8,))
    scores = score_functions([failing("test_tax", inner)], ["tests/test_invoice.py::test_tax"])
    assert set(scores) == {("shop/invoice.py", "Invoice.tax")}


def test_the_invoicing_example_is_localized_to_its_helper(tmp_path: Path) -> None:
    root = tmp_path / "invoicing"
    shutil.copytree(EXAMPLE, root)
    limits = SandboxLimits(per_test_timeout=5.0, run_timeout=60.0)
    run = run_tests(root, limits=limits, autoload_plugins=False, trace=True)
    assert run.traced and len(run.failures) == 2
    found = suspects(run)
    assert (found[0].path, found[0].qualname) == ("invoicing/money.py", "percent_of")
    loc = localize(ProjectIndex(root), run.failures, spectrum=run)
    line = loc.lines[("invoicing/money.py", "percent_of")][0]
    assert (
        "cents * percent // 100" in (root / "invoicing/money.py").read_text().splitlines()[line - 1]
    )


def test_one_failures_suspects_count_the_passing_tests_but_not_the_other_failures(
    project: Path,
) -> None:
    run = traced(
        project,
        failing("test_tax", INIT, TAX, percent(2, 4)),
        failing("test_summary", INIT, SUMMARY),
        passing("test_init", INIT),
    )
    found = suspects(run, [run.tests[0]])
    assert [t.qualname for t in found][:2] == ["percent_of", "Invoice.tax"]
    assert "Invoice.summary" not in [t.qualname for t in found]


def test_a_method_traced_without_its_class_name_is_found_by_its_line(project: Path) -> None:
    # Python < 3.11 names the code of Invoice.tax just "tax".
    bare_tax = ExecutedFunction("shop/invoice.py", "tax", 7, (8,))
    bare_init = ExecutedFunction("shop/invoice.py", "__init__", 4, (5,))
    run = traced(
        project,
        failing("test_tax", bare_init, bare_tax, percent(2, 4)),
        passing("test_init", bare_init),
    )
    assert ranking(project, run)[:2] == ["percent_of", "Invoice.tax"]
    edited = {"shop/invoice.py": "\n" + INVOICE}  # lines moved: the line says nothing now
    loc = localize(ProjectIndex(project, edited), run.failures, spectrum=run)
    assert ("shop/invoice.py", "Invoice.tax") not in loc.scores


def test_a_branch_only_failing_tests_take_lifts_its_function(project: Path) -> None:
    run = traced(
        project,
        failing("test_summary", SUMMARY, TAX, percent(2, 4)),
        passing("test_zero_rate", TAX, percent(2, 3)),
        passing("test_zero_again", TAX, percent(2, 3)),
    )
    # Invoice.summary is reached by the failing test alone, percent_of by every test; but
    # percent_of's line 4 runs only in the failing one, and it scores as that line.
    assert ranking(project, run)[0] == "percent_of"
    scores = score_functions(run.tests, ["tests/test_invoice.py::test_summary"])
    assert scores[("shop/money.py", "percent_of")].ochiai == 1.0
    assert math.isclose(scores[("shop/invoice.py", "Invoice.tax")].ochiai, 1 / math.sqrt(3))


def test_the_evidence_s_whole_module_fallback_gives_way_to_traced_functions_of_its_file(
    project: Path,
) -> None:
    """A test whose calls name no project function falls back to the whole module it imports;
    where the trace ranks that module's functions, they are the suspects, not the module."""
    unnamed = dataclasses.replace(
        failing("test_tax", INIT, TAX),
        test_source="def test_tax():\n    value = total_due()\n    assert value == 13\n",
        assert_source="assert value == 13",
    )
    run = traced(project, unnamed, passing("test_init", INIT))
    assert ranking(project, run)[:2] == ["Invoice.tax", "Invoice.__init__"]


CHECKS = (
    "def abort(message):\n"  # 1
    '    """Fail: the caller found a state it cannot handle."""\n'  # 2
    "    raise AssertionError(message)\n"  # 3
    "\n"  # 4
    "def normalize(parts):\n"  # 5
    "    if parts is None:\n"  # 6
    "        abort('no parts')\n"  # 7
    "    return parts\n"  # 8
    "\n"  # 9
    "def load(text):\n"  # 10
    "    return normalize(text.split() or None)\n"  # 11
)


def test_a_function_that_only_raises_comes_after_the_caller_that_chose_to_fail(
    tmp_path: Path,
) -> None:
    (tmp_path / "checks.py").write_text(CHECKS)
    load = ExecutedFunction("checks.py", "load", 10, (11,))
    messenger = ExecutedFunction("checks.py", "abort", 1, (3,))
    caller = ExecutedFunction("checks.py", "normalize", 5, (6, 7))
    run = traced(
        tmp_path,
        failing("test_empty", load, caller, messenger),
        passing("test_words", load, ExecutedFunction("checks.py", "normalize", 5, (6, 8))),
    )
    assert ranking(tmp_path, run) == ["normalize", "load", "abort"]


def test_suspects_are_not_cut_by_their_size(tmp_path: Path) -> None:
    long_body = "".join(f"    total += {n}\n" for n in range(200))
    source = f"def build(n):\n    total = n\n{long_body}    return check(total)\n\n"
    source += "def check(total):\n    return total > 0\n"
    (tmp_path / "long.py").write_text(source)
    build = ExecutedFunction("long.py", "build", 1, (2, 3))
    check = ExecutedFunction("long.py", "check", 206, (207,))
    run = traced(tmp_path, failing("test_build", build, check), passing("test_check", check))
    assert ranking(tmp_path, run) == ["build", "check"]
