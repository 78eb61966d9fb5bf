"""The EvalPlus protocol: its sanitizer, its task list, its stop words and time limits, base and
plus scored apart per round, and bootstrap intervals."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from cyclefix.bench import cli as bench_cli
from cyclefix.bench import mbpp_oracle
from cyclefix.bench.evalplus import (
    EVALPLUS_STOP,
    EvalPlusBackend,
    load_evalplus_humaneval,
    load_evalplus_mbpp,
    mbpp_plus_v020,
)
from cyclefix.bench.evalplus_sanitize import code_extract, sanitize
from cyclefix.bench.evalplus_scores import (
    ScoreLine,
    render_evalplus,
    summarize_evalplus,
    verdicts,
)
from cyclefix.bench.metrics import bootstrap_interval
from cyclefix.bench.prompt import ANSWER_PREFIX, STOP_SEQUENCES, assemble_solution
from cyclefix.bench.records import RoundResult, RoundStatus
from cyclefix.models.backend import (
    ChatMessage,
    GenerationOptions,
    GenerationResult,
    TextCallback,
    TextCheck,
)
from cyclefix.runner.results import Outcome, TestCaseResult, TestRunResult

FIXTURES = Path(__file__).parent / "fixtures" / "bench"


@pytest.fixture(autouse=True)
def _no_pytest_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


ANSWER = """Here is the solution:
```python
import math
from typing import List

LIMIT = 10

@cache
def decorated(n):
    return n

def area(r: float) -> float:
    return math.pi * square(r)  # why: reuse

def square(x):
    return x * x

def unused():
    return 0

print(area(2))
assert area(1) > 3
```
It computes the area."""


def test_sanitizer_keeps_imports_and_what_the_entry_point_reaches() -> None:
    assert sanitize(ANSWER, "area") == (
        "import math\nfrom typing import List\n"
        "def area(r: float) -> float:\n    return math.pi * square(r)  # why: reuse\n"
        "def square(x):\n    return x * x"
    )


def test_sanitizer_keeps_the_first_of_two_definitions_and_skips_functions_without_return() -> None:
    code = "def f(x):\n    print(x)\n\ndef f(x):\n    return 1\n\ndef f(x):\n    return 2\n"
    assert sanitize(code, "f") == "def f(x):\n    return 1"


def test_code_extract_takes_the_longest_parsable_run_of_lines() -> None:
    text = "Try this:\ndef f():\n    return 1\nwhich returns one.\nx = (\n"
    assert code_extract(text) == "def f():\n    return 1"


def test_sanitizer_without_definitions_gives_the_extracted_code() -> None:
    assert sanitize("Sure.\nx = 1\nprint(x)\nDone.", "f") == "x = 1\nprint(x)"


def test_evalplus_round_zero_adds_nothing_of_the_prompt() -> None:
    (task,) = [t for t in load_evalplus_humaneval() if t.task_id == "HumanEval/0"]
    answer = "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n" + (
        "    return any(abs(a - b) < threshold for a in numbers for b in numbers if a is not b)\n"
    )
    solution, note = assemble_solution(task, ANSWER_PREFIX + answer + "```")
    # EvalPlus scores a chat answer alone: the prompt's `from typing import List` is not added.
    assert note == "ok" and "from typing import List" not in solution
    assert solution.startswith("def has_close_elements(") and '"""' in solution


def test_evalplus_answer_without_the_entry_point_becomes_the_stub() -> None:
    (task,) = [t for t in load_evalplus_humaneval() if t.task_id == "HumanEval/0"]
    solution, note = assemble_solution(task, "```python\ndef other():\n    return 1\n```")
    assert note == "no_code" and "NotImplementedError" in solution


def test_evalplus_entry_point_bound_by_assignment_counts() -> None:
    (task,) = [t for t in load_evalplus_mbpp(FIXTURES / "mbpp") if t.task_id == "Mbpp/14"]
    answer = ANSWER_PREFIX + "find_Volume = lambda l, b, h: l * b * h / 2\n```"
    solution, note = assemble_solution(task, answer)
    assert note == "ok" and solution.startswith("find_Volume = lambda")


def test_mbpp_plus_v020_drops_the_21_ill_formed_tasks_and_cuts_links() -> None:
    rows = [
        {"task_id": "Mbpp/83", "prompt": "x"},
        {"task_id": "Mbpp/734", "prompt": '"""\nSee https://example.org/a-b/ now.\n"""\n'},
    ]
    assert mbpp_plus_v020(rows) == [{"task_id": "Mbpp/734", "prompt": '"""\nSee  now.\n"""\n'}]


def test_evalplus_mbpp_keeps_every_task_and_its_prompt_verbatim() -> None:
    tasks = load_evalplus_mbpp(FIXTURES / "mbpp")
    # Mbpp/2 is outside MBPP's test split (11-510) and still an MBPP+ task.
    assert [t.task_id for t in tasks] == ["Mbpp/2", "Mbpp/11", "Mbpp/12", "Mbpp/14"]
    raw = json.loads((FIXTURES / "mbpp" / "MbppPlus-v0.1.0.jsonl").read_text().splitlines()[0])
    assert tasks[0].prompt == raw["prompt"] and tasks[0].protocol == "evalplus"
    assert "set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10)))" in tasks[0].visible_tests


class _Recording:
    name = "recording"

    def __init__(self) -> None:
        self.options: list[GenerationOptions] = []

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
        until: TextCheck | None = None,
    ) -> GenerationResult:
        self.options.append(options)
        return GenerationResult("", 1, 1, seconds=0.0, prompt_seconds=0.0, finish_reason="stop")

    def close(self) -> None:
        """Nothing to free."""


def test_round_zero_stops_where_evalplus_stops_and_refinement_is_untouched() -> None:
    inner = _Recording()
    backend = EvalPlusBackend(inner)  # type: ignore[arg-type]
    round_zero = GenerationOptions(stop=STOP_SEQUENCES, answer_prefix=ANSWER_PREFIX)
    refine = GenerationOptions(stop=("\n```",))
    backend.generate([ChatMessage("user", "x")], round_zero)
    backend.generate([ChatMessage("user", "x")], refine)
    assert [o.stop for o in inner.options] == [EVALPLUS_STOP, ("\n```",)]
    assert backend.name == "recording"


def test_time_limit_is_four_times_the_reference_and_at_least_one_second() -> None:
    assert mbpp_oracle.time_limit_for(0.001) == 1.0
    assert mbpp_oracle.time_limit_for(0.5) == 2.0


def test_a_candidate_that_never_returns_fails_on_its_time_limit() -> None:
    def forever(n: int) -> int:
        while True:
            n += 1

    with pytest.raises(mbpp_oracle.InputTimeout), mbpp_oracle.time_limit(0.05):
        forever(0)


def test_the_runners_own_alarm_survives_an_input_time_limit() -> None:
    def runner_alarm(signum: int, frame: object) -> None:
        raise AssertionError("the test's own timeout")

    previous = signal.signal(signal.SIGALRM, runner_alarm)
    signal.setitimer(signal.ITIMER_REAL, 100.0)
    try:
        with mbpp_oracle.time_limit(5.0):
            pass
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 90.0 < remaining <= 100.0
        assert signal.getsignal(signal.SIGALRM) is runner_alarm
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run(tests: dict[str, Outcome]) -> TestRunResult:
    cases = tuple(
        TestCaseResult(f"test_hidden.py::{name}", outcome) for name, outcome in tests.items()
    )
    return TestRunResult(root=Path("."), tests=cases, exit_code=0, duration=0.0)


def test_verdicts_read_base_and_plus_apart() -> None:
    base_only = _run({"test_base_inputs": "passed", "test_plus_inputs": "failed"})
    assert verdicts(base_only, has_plus=True) == (True, False)
    plus_only = _run({"test_base_inputs": "failed", "test_plus_inputs": "passed"})
    assert verdicts(plus_only, has_plus=True) == (False, False)
    # An answer whose tests never ran (its import hung) fails both, never leaves plus unscored.
    assert verdicts(_run({}), has_plus=True) == (False, False)
    # HumanEval's single `check` test: base only.
    assert verdicts(_run({"test_hidden": "passed"}), has_plus=False) == (True, None)


def _line(task: str, k: int, status: RoundStatus, passed: bool, visible: bool) -> RoundResult:
    return RoundResult("evalplus-mbpp", "m", task, 0, k, status, passed, visible)


def test_a_fix_that_fits_only_the_visible_test_raises_base_but_not_plus() -> None:
    records = [
        _line("a", 0, "generated", False, False),
        _line("a", 1, "fixed", False, True),
        _line("b", 0, "generated", True, True),
        _line("b", 1, "done", True, True),
    ]
    scores = {
        ("m", "a", 0, "round0"): ScoreLine("m", "a", 0, "round0", False, False),
        ("m", "a", 0, "fix"): ScoreLine("m", "a", 0, "fix", True, False),
        ("m", "b", 0, "round0"): ScoreLine("m", "b", 0, "round0", True, True),
    }
    (summary,) = summarize_evalplus(records, scores, "evalplus-mbpp", 1)
    assert [(r.base, r.plus) for r in summary.rounds] == [(0.5, 0.5), (1.0, 0.5)]
    assert summary.unscored == 0
    assert "| 1 | 100.0 [100.0-100.0] | 50.0 [" in render_evalplus([summary])


def test_a_run_without_its_score_lines_is_not_counted() -> None:
    records = [_line("a", 0, "generated", True, True), _line("a", 1, "done", True, True)]
    assert summarize_evalplus(records, {}, "evalplus-mbpp", 1) == []


def test_bootstrap_interval_holds_the_mean_and_is_reproducible() -> None:
    values = [1.0] * 30 + [0.0] * 10
    low, high = bootstrap_interval(values) or (0.0, 0.0)
    assert low < 0.75 < high and high - low < 0.35
    assert bootstrap_interval(values) == bootstrap_interval(values)
    assert bootstrap_interval([1.0] * 5) == (1.0, 1.0)
    assert bootstrap_interval([]) is None


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cyclefix")
    bench_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def fence(code: str) -> str:
    return f"```python\n{code.strip()}\n```\n"


def test_cli_scores_mbpp_and_mbpp_plus_apart_for_every_round(tmp_path: Path) -> None:
    replies = [
        # Mbpp/11: removes every occurrence; right on the base inputs, wrong on "aaa".
        fence("def remove_Occ(s, ch):\n    return s.replace(ch, '')\n"),
        # Mbpp/12: fails its visible assert, then a fix that assumes three columns.
        fence("def sort_matrix(M):\n    return M\n"),
        fence("def sort_matrix(M):\n    return sorted(M, key=lambda r: r[0] + r[1] + r[2])\n"),
    ]
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(replies))
    out = tmp_path / "out"
    args = _parse(
        [
            "bench",
            "evalplus-mbpp",
            "--data",
            str(FIXTURES / "mbpp"),
            "--model",
            f"scripted:{script}",
            "--tasks",
            "Mbpp/11",
            "Mbpp/12",
            "--rounds",
            "1",
            "--out",
            str(out),
        ]
    )
    assert args.func(args) == 0
    data = json.loads((out / "evalplus.json").read_text())
    (model,) = data["models"].values()
    assert [(r["base"], r["plus"]) for r in model["rounds"]] == [(0.5, 0.0), (1.0, 0.0)]
    report = (out / "report.md").read_text()
    assert "| Round | MBPP | MBPP+ |" in report and "| 0 | 50.0 [" in report


def test_cli_round_zero_alone_scores_humaneval_answers_as_given(tmp_path: Path) -> None:
    replies = [
        # Right, but uses `List` without importing it: EvalPlus adds nothing, so it fails.
        fence(
            "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
            "    return any(abs(a - b) < threshold for i, a in enumerate(numbers)\n"
            "               for b in numbers[i + 1:])\n"
        ),
        fence("def truncate_number(number: float) -> float:\n    return number % 1.0\n"),
    ]
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(replies))
    out = tmp_path / "out"
    args = _parse(
        [
            "bench",
            "evalplus-humaneval",
            "--model",
            f"scripted:{script}",
            "--tasks",
            "HumanEval/0",
            "HumanEval/2",
            "--rounds",
            "0",
            "--out",
            str(out),
        ]
    )
    assert args.func(args) == 0
    (model,) = json.loads((out / "evalplus.json").read_text())["models"].values()
    assert [(r["base"], r["plus"]) for r in model["rounds"]] == [(0.5, None)]
    assert "| Round | HumanEval | HumanEval+ |" in (out / "report.md").read_text()


def test_without_plus_tests_the_report_says_plus_is_not_measured() -> None:
    records = [_line("a", 0, "generated", True, True)]
    scores = {("m", "a", 0, "round0"): ScoreLine("m", "a", 0, "round0", True, None)}
    summaries = summarize_evalplus(records, scores, "evalplus-humaneval", 0)
    assert [(r.base, r.plus) for r in summaries[0].rounds] == [(1.0, None)]
    assert "HumanEval+ is not measured" in render_evalplus(summaries)
