"""`cyclefix bench compare` task by task: where runs differ, and what some run reached."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pytest

from cyclefix.bench import cli as bench_cli
from cyclefix.bench.across_runs import render_task_outcomes, task_outcomes
from cyclefix.bench.records import RESULTS_FILE, RoundResult
from cyclefix.errors import CyclefixError


def lines(
    passes: dict[str, Sequence[bool]], model: str = "m", sample: int = 0
) -> list[RoundResult]:
    """Result lines of one run: task -> pass after round 0, 1, ..."""
    return [
        RoundResult("s", model, task, sample, k, "given" if k == 0 else "done", ok, ok)
        for task, by_round in passes.items()
        for k, ok in enumerate(by_round)
    ]


def test_counts_each_run_every_run_and_some_run_after_the_last_round() -> None:
    a = lines({"T/10": [False, True], "T/2": [False, False], "T/3": [True, True]})
    b = lines({"T/10": [False, False], "T/2": [False, True], "T/3": [True, True]})
    (outcome,) = task_outcomes([a, b], ["A", "B"])
    assert outcome.round == 1 and outcome.tasks == 3
    assert (outcome.passing(0), outcome.passing(1)) == (2, 2)
    assert (outcome.in_every_run, outcome.in_some_run) == (1, 3)
    # Tasks in number order; the one every run passes is not listed as a difference.
    assert outcome.differing == (("T/2", (0.0, 1.0)), ("T/10", (1.0, 0.0)))


def test_only_tasks_every_run_finished_at_the_last_round_all_reached() -> None:
    a = lines({"t1": [False, True, True], "t2": [False, False, True]})
    b = lines({"t1": [False, False], "t3": [True, True]})
    (outcome,) = task_outcomes([a, b], ["A", "B"])
    assert outcome.round == 1 and outcome.rates == (("t1", (1.0, 0.0)),)


def test_several_samples_give_each_task_a_share() -> None:
    a = lines({"t": [False, True]}) + lines({"t": [False, False]}, sample=1)
    b = lines({"t": [True, True]})
    (outcome,) = task_outcomes([a, b], ["A", "B"])
    assert outcome.rates == (("t", (0.5, 1.0)),)
    assert "| t | 0.50 | pass |" in render_task_outcomes([outcome])


def test_single_model_runs_pair_whatever_their_names_others_by_name() -> None:
    base = lines({"t": [False, False]}, model="base")
    tuned = lines({"t": [False, True]}, model="tuned")
    (outcome,) = task_outcomes([base, tuned], ["A", "B"])
    assert outcome.model == "base" and outcome.rates == (("t", (0.0, 1.0)),)
    both = base + tuned
    assert [o.model for o in task_outcomes([both, tuned], ["A", "B"])] == ["tuned"]
    other = lines({"t": [True]}, model="other") + lines({"t": [True]}, model="more")
    assert render_task_outcomes(task_outcomes([both, other], ["A", "B"])) == (
        "No model appears in every run."
    )


def test_the_report_names_each_run_and_the_ceiling() -> None:
    a = lines({"t1": [False, True], "t2": [False, False]})
    b = lines({"t1": [False, True], "t2": [False, True]})
    text = render_task_outcomes(task_outcomes([a, b], ["A", "B"]))
    assert "| A | 1/2 (50.0%) |" in text and "| B | 2/2 (100.0%) |" in text
    assert "In every run: 1/2 (50.0%). In some run: 2/2 (100.0%)" in text
    assert "Tasks whose outcome differs: 1" in text and "| t2 | fail | pass |" in text
    same = render_task_outcomes(task_outcomes([a, a], ["A", "B"]))
    assert "Every task has the same outcome in every run." in same


def _write_run(folder: Path, records: list[RoundResult]) -> Path:
    folder.mkdir()
    (folder / RESULTS_FILE).write_text("".join(r.to_json() + "\n" for r in records))
    return folder


def test_compare_reads_results_folders_without_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [
        _write_run(tmp_path / name, lines({"t1": [False, r1], "t2": [True, True]}))
        for name, r1 in (("a", False), ("b", True), ("c", True))
    ]
    parser = argparse.ArgumentParser(prog="cyclefix")
    bench_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", "compare", *map(str, runs)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"C = {runs[2]}" in out
    # A against C per round, named so, then the tasks.
    assert "| Round | pass@1 A | pass@1 C | Δ |" in out and "| 1 | 50.0 | 100.0 | +50.0 |" in out
    assert "| t1 | fail | pass | pass |" in out


def test_compare_of_an_empty_folder_says_there_is_no_summary(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="cyclefix")
    bench_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", "compare", str(tmp_path), str(tmp_path)])
    with pytest.raises(CyclefixError, match="no bench summary"):
        args.func(args)


def test_compare_of_a_missing_folder_names_it(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="cyclefix")
    bench_cli.register(parser.add_subparsers(dest="command", required=True))
    missing = tmp_path / "no-such-run"
    args = parser.parse_args(["bench", "compare", str(missing), str(tmp_path)])
    with pytest.raises(CyclefixError, match=f"no such results folder: {missing}"):
        args.func(args)
