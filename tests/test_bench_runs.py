"""Scripted-backend runs of every suite, resuming, the report files and the CLI."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from cyclefix.bench import cli as bench_cli
from cyclefix.bench.folder import load_folder
from cyclefix.bench.harness import BenchRun, select_tasks
from cyclefix.bench.humaneval import load_humaneval
from cyclefix.bench.mbpp import load_mbpp, load_mbpp_plus
from cyclefix.bench.records import RESULTS_FILE, AttemptStats, RoundResult
from cyclefix.bench.report import compare_table, model_section
from cyclefix.bench.run_settings import BenchSettings, load_all
from cyclefix.bench.summary import (
    FixOrigin,
    ModelSummary,
    load_summary,
    summarize,
    summary_to_json,
)
from cyclefix.models.backend import (
    ChatMessage,
    GenerationOptions,
    GenerationResult,
    TextCallback,
    TextCheck,
)
from cyclefix.models.scripted import ScriptedBackend

FIXTURES = Path(__file__).parent / "fixtures" / "bench"


@pytest.fixture(autouse=True)
def _no_pytest_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    # The bench CLI does this too: task test runs need no installed plugins, and load faster.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def fence(code: str) -> str:
    return f"```python\n{code.strip()}\n```\n"


HE_GOOD_0 = fence("""
from typing import List

def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for i, a in enumerate(numbers):
        for j, b in enumerate(numbers):
            if i != j and abs(a - b) < threshold:
                return True
    return False
""")
HE_BAD_2 = fence("def truncate_number(number: float) -> float:\n    return number % 1.0 + 1\n")
HE_FIX_2 = fence("def truncate_number(number: float) -> float:\n    return number % 1.0\n")
HE_BAD_4 = fence("""
from typing import List

def mean_absolute_deviation(numbers: List[float]) -> float:
    return 0.0
""")


def summary_of(out: Path, rounds: int) -> ModelSummary:
    (summary,) = summarize(load_all(out), rounds)
    return summary


def pass1(summary: ModelSummary) -> list[float]:
    return [r.pass_at_k["1"] for r in summary.rounds]


def test_humaneval_round_zero_then_refinement_scored_on_hidden_tests(tmp_path: Path) -> None:
    tasks = select_tasks(load_humaneval(), ids=["HumanEval/0", "HumanEval/2", "HumanEval/4"])
    backend = ScriptedBackend([HE_GOOD_0, HE_BAD_2, HE_FIX_2, HE_BAD_4])
    run = BenchRun(tasks, backend, BenchSettings(suite="humaneval", rounds=2), tmp_path)
    lines = run.run()
    assert run.errors == []
    assert len(lines) == 9
    by_key = {(r.task_id, r.round): r for r in lines}
    assert by_key["HumanEval/2", 1].status == "fixed"
    assert by_key["HumanEval/2", 2].status == "done" and by_key["HumanEval/2", 2].passed
    # The passing attempt keeps its code (a vote's candidates scored after the run); no other.
    fixed = by_key["HumanEval/2", 1].attempts
    assert [a.code.strip() for a in fixed if a.verdict == "passed"] == [
        HE_FIX_2.split("\n", 1)[1].rsplit("```", 1)[0].strip()
    ]
    assert all(a.code == "" for a in by_key["HumanEval/4", 1].attempts)
    # A copy is sampled again twice in its round (hotter, then from the signature alone), and
    # the round's two extra answers follow (a model that only copies copies there too).
    assert [a.verdict for a in by_key["HumanEval/4", 1].attempts] == ["copy"] * 5
    # Round 0 only ever saw the prompt; the refinement saw the docstring examples, never `check`.
    refine_prompt = backend.calls[2][-1].content
    assert "truncate_number(3.5)" in refine_prompt and "def check" not in refine_prompt
    summary = summary_of(tmp_path, 2)
    assert pass1(summary) == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert summary.rounds[1].fix_rate == pytest.approx(0.5)
    assert summary.rounds[1].copy_rate == pytest.approx(5 / 6)
    assert summary.rounds[2].copy_rate == pytest.approx(1.0)
    # Per refining run: round 1 refined 2 runs, one (HumanEval/4) ended on its third copy.
    assert (summary.rounds[1].refined, summary.rounds[1].ended_on_copy) == (2, 1)
    assert summary.rounds[1].ended_on_copy_rate == pytest.approx(1 / 2)
    assert (summary.rounds[2].refined, summary.rounds[2].ended_on_copy) == (1, 1)
    assert summary.rounds[0].ended_on_copy_rate is None
    assert summary.rounds_to_fix_mean == 1.0
    assert summary.verified_fixes == summary.verified_fixes_passing_hidden == 1
    assert summary.verdicts == {"copy": 10, "passed": 1}
    assert summary.fix_origins == (FixOrigin("answer", 1, 1),)


HE_WORSE_2 = fence("def truncate_number(number: float) -> float:\n    return number % 1.0 + 2\n")


def test_agreement_answers_vote_on_a_fix_passing_one_example(tmp_path: Path) -> None:
    tasks = select_tasks(load_humaneval(), ids=["HumanEval/2"])
    backend = ScriptedBackend([HE_BAD_2, HE_FIX_2])  # the script repeats its last reply
    settings = BenchSettings(suite="humaneval", rounds=1, agreement_answers=3)
    lines = {r.round: r for r in BenchRun(tasks, backend, settings, tmp_path).run()}
    # The fix passes truncate_number's one example: the first answer drawn is the same code,
    # a second vote for it, and two more could only tie: the draws end there.
    assert [a.verdict for a in lines[1].attempts] == ["passed", "duplicate"]
    assert lines[1].status == "fixed" and lines[1].attempts[0].fix


@pytest.mark.parametrize("extend", [False, True])
def test_extend_goes_on_past_the_rounds_and_the_last_rounds_line_holds_the_extra_ones(
    tmp_path: Path, extend: bool
) -> None:
    tasks = select_tasks(load_humaneval(), ids=["HumanEval/2"])
    # Round 1's answer and its two extra answers fail; the fix comes only past the round.
    worse = [HE_WORSE_2.replace("+ 2", f"+ {n}") for n in (2, 3, 4)]
    backend = ScriptedBackend([HE_BAD_2, *worse, HE_FIX_2])
    settings = BenchSettings(
        suite="humaneval", rounds=1, budget_seconds=60, extend_to_budget=extend
    )
    lines = {r.round: r for r in BenchRun(tasks, backend, settings, tmp_path).run()}
    assert set(lines) == {0, 1}
    verdicts = [a.verdict for a in lines[1].attempts]
    if extend:
        assert lines[1].status == "fixed" and lines[1].passed
        assert verdicts == ["tests_failed"] * 3 + ["passed"]
        assert "extend_to_budget" in json.loads((tmp_path / "run.json").read_text())
    else:
        assert lines[1].status == "refined" and not lines[1].passed
        assert verdicts == ["tests_failed"] * 3
        assert "extend_to_budget" not in json.loads((tmp_path / "run.json").read_text())


MBPP_REMOVE_OCC = fence("""
def remove_Occ(s, ch):
    s = s.replace(ch, "", 1)
    i = s.rfind(ch)
    return s if i < 0 else s[:i] + s[i + 1:]
""")
MBPP_SORT_BAD = fence("def sort_matrix(M):\n    return M\n")
MBPP_SORT_FIX = fence("def sort_matrix(M):\n    return sorted(M, key=sum)\n")
# Passes the one visible assert (find_Volume(10,8,6) == 240) and nothing else.
MBPP_VOLUME_OVERFIT = fence("def find_Volume(l, b, h):\n    return 240\n")


def test_mbpp_visible_first_assert_hidden_all_asserts(tmp_path: Path) -> None:
    tasks = load_mbpp(FIXTURES / "mbpp")[:3]
    backend = ScriptedBackend([MBPP_REMOVE_OCC, MBPP_SORT_BAD, MBPP_SORT_FIX, MBPP_VOLUME_OVERFIT])
    run = BenchRun(tasks, backend, BenchSettings(suite="mbpp", rounds=1), tmp_path)
    lines = {(r.task_id, r.round): r for r in run.run()}
    assert run.errors == []
    # The overfit answer passes its visible test, so nothing is refined; hidden tests catch it.
    volume = lines["MBPP/14", 0]
    assert volume.visible_passed is True and volume.passed is False
    assert lines["MBPP/14", 1].status == "done"
    assert lines["MBPP/12", 1].status == "fixed" and lines["MBPP/12", 1].passed
    assert pass1(summary_of(tmp_path, 1)) == pytest.approx([1 / 3, 2 / 3])


def test_mbpp_plus_scores_the_extra_inputs(tmp_path: Path) -> None:
    tasks = load_mbpp_plus(FIXTURES / "mbpp")
    volume = fence("def find_Volume(l, b, h):\n    return (l * b * h) / 2\n")
    backend = ScriptedBackend([MBPP_REMOVE_OCC, MBPP_SORT_BAD, MBPP_SORT_FIX, volume])
    run = BenchRun(tasks, backend, BenchSettings(suite="mbpp+", rounds=1), tmp_path)
    lines = {(r.task_id, r.round): r for r in run.run()}
    assert run.errors == []
    assert lines["MBPP+/11", 0].passed and lines["MBPP+/14", 0].passed
    assert not lines["MBPP+/12", 0].passed and lines["MBPP+/12", 1].passed


FOLDER_REPLIES = [
    fence("def total(n):\n    return sum(range(n + 1))\n"),
    fence("def is_even(n):\n    return n == 2\n"),
]


def test_folder_suite_with_hidden_tests(tmp_path: Path) -> None:
    tasks = load_folder(FIXTURES / "folder")
    run = BenchRun(tasks, ScriptedBackend(FOLDER_REPLIES), BenchSettings(suite="folder", rounds=1),
                   tmp_path)  # fmt: skip
    lines = {(r.task_id, r.round): r for r in run.run()}
    assert run.errors == []
    assert lines["already_ok", 0].status == "given" and lines["already_ok", 0].passed
    assert lines["off_by_one", 1].status == "fixed" and lines["off_by_one", 1].passed
    # Verified against the visible tests, rejected by the hidden one.
    assert lines["overfit", 1].status == "fixed" and not lines["overfit", 1].passed
    summary = summary_of(tmp_path, 1)
    assert pass1(summary) == pytest.approx([1 / 3, 2 / 3])
    assert (summary.verified_fixes, summary.verified_fixes_passing_hidden) == (2, 1)
    # The task folders themselves are untouched.
    assert "range(n))" in (FIXTURES / "folder" / "off_by_one" / "total.py").read_text()


def _valid_lines(out: Path) -> list[dict[str, object]]:
    text = (out / RESULTS_FILE).read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_resume_after_cancel_skips_finished_runs(tmp_path: Path) -> None:
    tasks = load_folder(FIXTURES / "folder")
    settings = BenchSettings(suite="folder", rounds=1)
    cancel = threading.Event()
    first = BenchRun(tasks, ScriptedBackend(FOLDER_REPLIES), settings, tmp_path)
    done = first.run(cancel=cancel, on_done=lambda *_: cancel.set())
    assert {r.task_id for r in done} == {"already_ok"}
    # A torn line, as a killed process may leave, is dropped on the next open.
    with (tmp_path / RESULTS_FILE).open("a") as fh:
        fh.write('{"suite": "folder", "mod')
    backend = ScriptedBackend(FOLDER_REPLIES)
    second = BenchRun(tasks, backend, settings, tmp_path)
    assert [t.task_id for t, _ in second.pending()] == ["off_by_one", "overfit"]
    second.run()
    assert len(backend.calls) == 2
    assert len(_valid_lines(tmp_path)) == 6
    assert BenchRun(tasks, ScriptedBackend(FOLDER_REPLIES), settings, tmp_path).pending() == []


class _CancelOnRefine:
    """Answers round 0, then stops the run the moment refinement asks for text."""

    def __init__(self, first_reply: str, cancel: threading.Event) -> None:
        self.inner = ScriptedBackend([first_reply])
        self.cancel = cancel

    @property
    def name(self) -> str:
        return "scripted"

    def generate(
        self, messages: Sequence[ChatMessage], options: GenerationOptions, *,
        on_text: TextCallback | None = None, cancel: threading.Event | None = None,
        until: TextCheck | None = None,
    ) -> GenerationResult:  # fmt: skip
        if self.inner.calls:
            self.cancel.set()
        return self.inner.generate(messages, options, on_text=on_text, cancel=cancel, until=until)

    def forks_along(self, *args: object, **kwargs: object) -> None:
        """No logits to score an answer with."""
        return None

    def close(self) -> None:
        pass


def test_interrupted_refinement_resumes_from_the_stored_round_zero(tmp_path: Path) -> None:
    tasks = select_tasks(load_humaneval(), ids=["HumanEval/2"])
    settings = BenchSettings(suite="humaneval", rounds=1)
    cancel = threading.Event()
    BenchRun(tasks, _CancelOnRefine(HE_BAD_2, cancel), settings, tmp_path).run(cancel=cancel)
    assert [line["round"] for line in _valid_lines(tmp_path)] == [0]
    backend = ScriptedBackend([HE_FIX_2])
    BenchRun(tasks, backend, settings, tmp_path).run()
    # No new round-0 generation: the refinement started from the stored answer.
    assert len(backend.calls) == 1 and "number % 1.0 + 1" in backend.calls[0][-1].content
    rounds = {(r.round, r.status) for r in load_all(tmp_path)}
    assert rounds == {(0, "generated"), (1, "fixed")}


def test_a_carried_over_round_zero_is_judged_by_todays_visible_tests(tmp_path: Path) -> None:
    # Round 0 recorded when the task showed no examples; the suite now shows some.
    tasks = select_tasks(load_humaneval(), ids=["HumanEval/2"])
    settings = BenchSettings(suite="humaneval", rounds=1)
    cancel = threading.Event()
    BenchRun(tasks, _CancelOnRefine(HE_BAD_2, cancel), settings, tmp_path).run(cancel=cancel)
    (line,) = _valid_lines(tmp_path)
    line["visible_passed"] = None
    (tmp_path / RESULTS_FILE).write_text(json.dumps(line) + "\n")
    backend = ScriptedBackend([HE_FIX_2])
    BenchRun(tasks, backend, settings, tmp_path).run()
    assert len(backend.calls) == 1
    rounds = {(r.round, r.status) for r in load_all(tmp_path)}
    assert rounds == {(0, "generated"), (1, "fixed")}


def test_ctrl_c_keeps_finished_lines_and_raises(tmp_path: Path) -> None:
    tasks = load_folder(FIXTURES / "folder")
    run = BenchRun(tasks, ScriptedBackend(FOLDER_REPLIES), BenchSettings(suite="folder", rounds=1),
                   tmp_path)  # fmt: skip

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.run(on_done=interrupt)
    lines = _valid_lines(tmp_path)
    assert {line["task_id"] for line in lines} == {"already_ok"} and len(lines) == 2


def test_other_settings_in_the_same_folder_are_refused(tmp_path: Path) -> None:
    from cyclefix.errors import CyclefixError

    tasks = load_folder(FIXTURES / "folder")
    BenchRun(
        tasks, ScriptedBackend(FOLDER_REPLIES), BenchSettings(suite="folder", rounds=1), tmp_path
    )
    with pytest.raises(CyclefixError, match="rounds=1"):
        BenchRun(tasks, ScriptedBackend(FOLDER_REPLIES), BenchSettings(suite="folder", rounds=2),
                 tmp_path)  # fmt: skip


def _bench(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cyclefix")
    bench_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_cli_writes_report_summary_and_plot_and_compares(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps(FOLDER_REPLIES))
    out = tmp_path / "out"
    argv = ["bench", "folder", str(FIXTURES / "folder"), "--model", f"scripted:{replies}",
            "--rounds", "1", "--out", str(out), "--workers", "2"]  # fmt: skip
    assert _bench(argv) == 0
    report = (out / "report.md").read_text()
    assert "| Round | pass@1 | fix rate | copy rate" in report
    assert "scripted:replies.json" in report and "Machine:" in report
    assert (out / "pass_by_round.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data, (summary,) = load_summary(out)
    assert data["settings"]["rounds"] == 1 and summary.complete_runs == 3
    assert pass1(summary) == pytest.approx([1 / 3, 2 / 3])
    # A rerun finds nothing to do and leaves the results as they were.
    before = (out / RESULTS_FILE).read_text()
    assert _bench(argv) == 0
    assert (out / RESULTS_FILE).read_text() == before
    capsys.readouterr()
    assert _bench(["bench", "compare", str(out), str(out / "summary.json")]) == 0
    table = capsys.readouterr().out
    assert "| 1 | 66.7 | 66.7 | +0.0 |" in table


def test_compare_pairs_models_by_name() -> None:
    def model(name: str, passes: list[bool]) -> ModelSummary:
        lines = [
            RoundResult("s", name, f"t{i}", 0, 0, "given", ok, ok) for i, ok in enumerate(passes)
        ]
        (summary,) = summarize(lines, 0)
        return summary

    a = [model("m1", [True, False]), model("m2", [False, False])]
    b = [model("m2", [True, True])]
    table = compare_table(a, b)
    assert "m2" in table and "m1" not in table and "| 0 | 0.0 | 100.0 | +100.0 |" in table
    assert compare_table([model("x", [True])], [model("y", [False])]).count("###") == 1
    assert compare_table(a, [model("z", [True])]) == "No model appears in both runs."


def test_summary_written_before_the_ended_on_copy_fields_still_loads(tmp_path: Path) -> None:
    lines = [RoundResult("s", "m", "t", 0, 0, "given", False, False)]
    data = json.loads(json.dumps(summary_to_json(summarize(lines, 0), {}, {})))
    for round_ in data["models"]["m"]["rounds"]:
        for key in ("refined", "ended_on_copy", "ended_on_copy_rate"):
            del round_[key]
    (tmp_path / "summary.json").write_text(json.dumps(data))
    _data, (summary,) = load_summary(tmp_path)
    assert summary.rounds[0].refined == 0 and summary.rounds[0].ended_on_copy_rate is None


def test_summary_uses_every_sample_for_pass_at_k_and_skips_incomplete_runs() -> None:
    def line(task: str, sample: int, round_: int, ok: bool, status: str = "done") -> RoundResult:
        return RoundResult("s", "m", task, sample, round_, status, ok, ok)  # type: ignore[arg-type]

    lines = [
        line("a", 0, 0, True, "given"), line("a", 0, 1, True),
        line("a", 1, 0, True, "given"), line("a", 1, 1, True),
        line("b", 0, 0, False, "given"), line("b", 0, 1, True, "fixed"),
        line("b", 1, 0, False, "given"), line("b", 1, 1, False, "refined"),
        line("c", 0, 0, False, "given"),  # round 1 missing: not counted
    ]  # fmt: skip
    (summary,) = summarize(lines, 1)
    assert (summary.tasks, summary.samples, summary.complete_runs) == (2, 2, 4)
    assert summary.incomplete_runs == 1
    r0, r1 = summary.rounds
    assert r0.pass_at_k == {"1": pytest.approx(0.5), "2": pytest.approx(0.5)}
    # Task a: 2/2 pass; task b: 1/2 -> pass@1 (1 + 0.5) / 2, pass@2 (1 + 1) / 2.
    assert r1.pass_at_k == {"1": pytest.approx(0.75), "2": pytest.approx(1.0)}
    assert r1.fix_rate == pytest.approx(0.5) and r1.fixed_here == 1


def summary_of_one_round(*tried: AttemptStats) -> ModelSummary:
    """The summary of one task fixed in round 1 by these attempts."""
    lines = [
        RoundResult("s", "m", "t", 0, 0, "given", False, False),
        RoundResult("s", "m", "t", 0, 1, "fixed", True, True, attempts=tried),
    ]
    (summary,) = summarize(lines, 1)
    return summary


def stats(
    verdict: str, *, forked: bool = False, partial: bool = False, token_edit: bool = False
) -> AttemptStats:
    copy = verdict == "copy"
    return AttemptStats(
        verdict, copy, 0.2, 10, 5, 1.0, 1.0, 1.0,
        forked=forked, partial=partial, token_edit=token_edit,
    )  # fmt: skip


def test_summary_and_report_count_the_forked_attempts_apart() -> None:
    summary = summary_of_one_round(
        stats("copy"), stats("tests_failed", forked=True), stats("passed", forked=True)
    )
    assert summary.verdicts == {"copy": 1, "tests_failed": 1, "passed": 1}
    assert summary.forked_verdicts == {"tests_failed": 1, "passed": 1}
    assert "(refine.fork): tests_failed 1, passed 1" in model_section(summary)


def test_verified_fixes_are_counted_by_who_wrote_the_passing_candidate(tmp_path: Path) -> None:
    def fixed(task: str, passing: AttemptStats, hidden: bool) -> list[RoundResult]:
        tried = (stats("tests_failed"), passing)
        return [
            RoundResult("s", "m", task, 0, 0, "given", False, False),
            RoundResult("s", "m", task, 0, 1, "fixed", hidden, True, attempts=tried),
        ]

    lines = [
        *fixed("a", stats("passed"), True),
        *fixed("b", stats("passed", token_edit=True), False),
        *fixed("c", stats("passed", token_edit=True), True),
        *fixed("d", stats("passed", token_edit=True), False),
    ]
    (summary,) = summarize(lines, 1)
    assert summary.fix_origins == (FixOrigin("answer", 1, 1), FixOrigin("token_edit", 3, 1))
    assert (
        "Verified fixes by who wrote them: the model's answers 1 (1 pass the hidden tests), "
        "token edits 3 (1 pass the hidden tests)"
    ) in model_section(summary)
    (tmp_path / "summary.json").write_text(json.dumps(summary_to_json([summary], {}, {})))
    _data, (loaded,) = load_summary(tmp_path)
    assert loaded.fix_origins == summary.fix_origins


def test_parts_of_answers_are_not_counted_as_the_models_answers_in_the_copy_rate() -> None:
    summary = summary_of_one_round(
        stats("tests_failed"), stats("copy", partial=True), stats("passed", partial=True)
    )
    assert (summary.rounds[1].attempts, summary.rounds[1].copies) == (1, 0)
    assert summary.verdicts == {"tests_failed": 1, "copy": 1, "passed": 1}


def test_a_round_that_tested_a_candidate_did_not_end_on_a_copy() -> None:
    def attempt(verdict: str, tests_total: int = 0) -> AttemptStats:
        return AttemptStats(verdict, verdict == "copy", 0.2, 10, 5, 1.0, 1.0, 1.0, 0, tests_total)

    tested = (attempt("copy"), attempt("tests_failed", 2), attempt("copy"))
    untested = (attempt("copy"), attempt("copy"), attempt("copy"))
    lines = [RoundResult("s", "m", task, 0, 0, "given", False, False) for task in ("a", "b")] + [
        RoundResult("s", "m", "a", 0, 1, "refined", False, False, attempts=tested),
        RoundResult("s", "m", "b", 0, 1, "refined", False, False, attempts=untested),
    ]
    (summary,) = summarize(lines, 1)
    assert (summary.rounds[1].refined, summary.rounds[1].ended_on_copy) == (2, 1)
