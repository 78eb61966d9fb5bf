"""Phase timings: where a fix's seconds went, per attempt and for the whole command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cyclefix.bench.harness import BenchRun, select_tasks
from cyclefix.bench.humaneval import load_humaneval
from cyclefix.bench.run_settings import BenchSettings
from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, fix
from cyclefix.refine.report import phases

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONFIG = RefineConfig(rounds=2, budget_seconds=120, extend_to_budget=False, per_test_timeout=2.0)
LEAP_WRONG = "```python\ndef is_leap_year(year: int) -> bool:\n    return year % 4 == 0\n```\n"
LEAP_FIX = (
    "```python\ndef is_leap_year(year: int) -> bool:\n"
    "    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n```\n"
)
ATTEMPT_PHASES = ("score_s", "prompt_eval_s", "generate_s", "tests_s")
COMMAND_PHASES = (
    "model_load_s",
    "initial_tests_s",
    "localize_s",
    "score_s",
    "prompt_eval_s",
    "generate_s",
    "tests_s",
    "overhead_s",
)


@pytest.fixture
def leap(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES / "leap_year", tmp_path / "leap_year")
    return tmp_path / "leap_year"


def test_each_attempt_splits_its_seconds_into_non_negative_phases(leap: Path) -> None:
    result = fix(leap, ScriptedBackend([LEAP_WRONG, LEAP_FIX], token_delay=0.001), config=CONFIG)
    assert result.status == "fixed"
    for attempt in result.attempts:
        assert all(getattr(attempt, name) >= 0 for name in ATTEMPT_PHASES)
        assert attempt.phase_seconds <= attempt.seconds
    # Both candidates reached the tests, and the scripted model streamed each answer.
    assert all(a.tests_s > 0 and a.generate_s > 0 for a in result.attempts)


def test_an_attempts_test_time_splits_into_process_start_collection_and_tests(leap: Path) -> None:
    result = fix(leap, ScriptedBackend([LEAP_WRONG, LEAP_FIX]), config=CONFIG)
    for attempt in result.attempts:
        split = attempt.tests_phases
        assert split is not None
        assert min(split.startup_s, split.collect_s, split.tests_s) >= 0
        # The processes ran within the attempt's test time, their phases within the processes.
        assert split.startup_s + split.collect_s + split.tests_s <= split.total_s
        assert split.total_s <= attempt.tests_s


def test_the_phases_of_a_fix_add_up_to_its_seconds(leap: Path) -> None:
    result = fix(leap, ScriptedBackend([LEAP_WRONG, LEAP_FIX]), config=CONFIG)
    split = phases(result)
    assert list(split) == list(COMMAND_PHASES)
    assert all(value >= 0 for value in split.values()), split
    assert sum(split.values()) == pytest.approx(result.seconds)


def test_a_fix_that_runs_the_users_tests_itself_counts_them(leap: Path) -> None:
    result = fix(leap, ScriptedBackend([LEAP_FIX]), config=CONFIG)
    assert result.initial_tests_s > 0 and result.localize_s > 0
    assert result.model_load_s == 0  # the caller loaded the model


def test_fix_json_carries_phases_that_add_up_to_the_command(leap: Path, tmp_path: Path) -> None:
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([LEAP_WRONG, LEAP_FIX]))
    command = ["fix", str(leap), "--json", "--model", f"scripted:{replies}"]
    proc = subprocess.run(
        [sys.executable, "-m", "cyclefix.cli", *command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    split = data["phases"]
    assert list(split) == list(COMMAND_PHASES)
    assert all(value >= 0 for value in split.values()), split
    # The command ran the user's tests before loading the model.
    assert split["initial_tests_s"] > 0
    # Each of the 8 phases is rounded to the millisecond.
    assert sum(split.values()) == pytest.approx(data["seconds"], abs=0.005)
    attempts = [a for r in data["rounds"] for a in r["attempts"]]
    assert len(attempts) == 2
    for attempt in attempts:
        assert all(attempt[name] >= 0 for name in ATTEMPT_PHASES)
        assert attempt["prompt_tokens_cached"] == 0  # a scripted model has no KV cache


def test_bench_records_carry_each_attempts_phases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    tasks = select_tasks(load_humaneval(), ids=["HumanEval/2"])
    bad = "```python\ndef truncate_number(number: float) -> float:\n    return number + 1\n```\n"
    good = "```python\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n```\n"
    backend = ScriptedBackend([bad, good])
    lines = BenchRun(tasks, backend, BenchSettings(suite="humaneval", rounds=1), tmp_path).run()
    (refined,) = [line for line in lines if line.round == 1]
    (attempt,) = refined.attempts
    assert attempt.verdict == "passed" and attempt.tests_s > 0
    assert all(getattr(attempt, name) >= 0 for name in ATTEMPT_PHASES)
