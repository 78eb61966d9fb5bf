"""The run ledger: partial runs merge, what a run re-ran is replaced, the rest is kept."""

from __future__ import annotations

from pathlib import Path

from cyclefix.refine import Target, TestCaseResult, TestRunResult
from cyclefix.session.ledger import RunLedger, covers

ROOT = Path("/project")
MEDIAN = Target(path="stats.py", qualname="median", start_line=1, end_line=2, source="")


def _case(nodeid: str, outcome: str = "failed") -> TestCaseResult:
    return TestCaseResult(nodeid=nodeid, outcome=outcome)  # type: ignore[arg-type]


def _run(tests: tuple[TestCaseResult, ...], selected: tuple[str, ...]) -> TestRunResult:
    return TestRunResult(root=ROOT, tests=tests, exit_code=1, duration=0.1, selected=selected)


def test_a_run_of_one_file_keeps_what_is_known_of_the_others() -> None:
    ledger = RunLedger(ROOT)
    ledger.record(_run((_case("t/test_a.py::x"),), ("t/test_a.py",)), {"t/test_a.py::x": (MEDIAN,)})
    ledger.record(_run((_case("t/test_b.py::y"),), ("t/test_b.py",)))
    assert ledger.failing_nodeids() == ("t/test_a.py::x", "t/test_b.py::y")
    assert ledger.suspects == {"t/test_a.py::x": (MEDIAN,)}


def test_a_test_gone_from_a_rerun_file_is_forgotten_with_its_suspects() -> None:
    ledger = RunLedger(ROOT)
    ledger.record(_run((_case("t/test_a.py::x"),), ("t/test_a.py",)), {"t/test_a.py::x": (MEDIAN,)})
    ledger.record(_run((), ("/project/t/test_a.py",)))
    assert ledger.cases == {} and ledger.suspects == {}


def test_cancelled_runs_change_nothing_and_replace_all_starts_afresh() -> None:
    ledger = RunLedger(ROOT)
    ledger.record(_run((_case("t/test_a.py::x"),), ("t/test_a.py",)))
    cancelled = TestRunResult(root=ROOT, tests=(), exit_code=2, duration=0, cancelled=True)
    ledger.record(cancelled)
    assert ledger.failing_nodeids() == ("t/test_a.py::x",)
    ledger.replace_all(_run((_case("t/test_b.py::y", "passed"),), ("t/test_b.py",)))
    assert list(ledger.cases) == ["t/test_b.py::y"]


def test_run_of_gives_the_known_results_as_a_refinements_first_run() -> None:
    ledger = RunLedger(ROOT)
    ledger.record(
        _run((_case("t/test_a.py::x"), _case("t/test_a.py::ok", "passed")), ("t/test_a.py",))
    )
    run = ledger.run_of(("t/test_a.py::x", "t/test_a.py::ok"))
    assert run is not None
    assert [c.nodeid for c in run.failures] == ["t/test_a.py::x"]
    assert run.selected == ("t/test_a.py::x", "t/test_a.py::ok")
    assert ledger.run_of(("t/test_a.py::unknown",)) is None


def test_covers_reads_files_folders_and_node_ids() -> None:
    assert covers((), "t/test_a.py::x")
    assert covers(("t",), "t/test_a.py::x")
    assert covers(("t/test_a.py::x",), "t/test_a.py::x[1]")
    assert not covers(("t/test_b.py",), "t/test_a.py::x")
