"""Seeded-bug refine samples: a reference with one mutation its tests catch -> the reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cyclefix.bench.mutate import KINDS, Mutant
from cyclefix.cli import main
from cyclefix.training.mbpp import MbppProblem, load_problems
from cyclefix.training.samples import record_from_json
from cyclefix.training.seeded import kinds_in_turn, seeded_records

FIXTURES = Path(__file__).parent / "fixtures" / "training"


@pytest.fixture(autouse=True)
def _no_pytest_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    # The data commands set it for their test runs; monkeypatch puts the old value back after.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def _problems(*ids: int) -> list[MbppProblem]:
    return [p for p in load_problems(FIXTURES / "mbpp_small.jsonl") if p.task_id in ids]


def test_kinds_come_in_turn() -> None:
    found = [Mutant(kind, 1, f"{kind} {i}", f"x = {i}\n") for i in range(2) for kind in KINDS[:2]]
    found.sort(key=lambda m: m.kind)  # all of one kind first
    ordered = kinds_in_turn(found)
    assert [m.kind for m in ordered] == [KINDS[0], KINDS[1], KINDS[0], KINDS[1]]
    assert sorted(ordered, key=lambda m: m.description) == sorted(
        found, key=lambda m: m.description
    )


def test_each_sample_is_a_caught_mutant_whose_target_is_the_reference() -> None:
    (problem,) = _problems(602)
    records, stats = seeded_records([problem], per_problem=2, on_progress=lambda _: None)
    assert stats.records == len(records) == 2
    assert stats.caught == 2 and stats.mutants_tried == stats.caught + stats.survived
    for record in records:
        assert record.kind == "refine"
        assert record.source.startswith("mbpp:602:")
        # The target is the reference with the docstring the faulty code shows: one edit apart.
        assert record.solution.startswith('def first_repeated_char(str1):\n  """')
        assert record.faulty_code != record.solution
        assert record.faulty_code.strip() in record.messages[-1].content
        assert record.feedback.startswith("Test Case Failed:")
        user = record.messages[record.pgm_spans[0].message].content
        hidden = "".join(user[s.start : s.end] for s in record.pgm_spans)
        assert problem.text.strip() not in hidden  # the intent is never masked
        assert record_from_json(record.to_json(), "x") == record
    assert len({r.faulty_code for r in records}) == 2


def test_the_same_seed_picks_the_same_mutants_whatever_the_workers() -> None:
    problems = _problems(602, 606)
    one, _ = seeded_records(problems, per_problem=1, seed=3, on_progress=lambda _: None)
    two, _ = seeded_records(problems, per_problem=1, seed=3, workers=2, on_progress=lambda _: None)
    assert [r.faulty_code for r in one] == [r.faulty_code for r in two]
    assert [r.source.split(":")[1] for r in one] == ["602", "606"]


def test_seeded_cli_writes_refine_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "seeded.jsonl"
    code = main(
        [
            "data",
            "seeded",
            "--problems",
            f"{FIXTURES / 'mbpp_small.jsonl'}:train",
            "-o",
            str(out),
            "--limit",
            "1",
            "--per-problem",
            "1",
        ]
    )
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["refine"]
    assert "1 refine samples from 1 problems" in capsys.readouterr().out


def test_seeded_refuses_the_test_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["data", "seeded", "--problems", "mbpp-test", "-o", str(tmp_path / "x.jsonl")]
    assert main(args) != 0
    assert "test split is for evaluation" in capsys.readouterr().err
