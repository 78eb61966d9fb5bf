"""CYCLE phase II collection with a scripted model: passing -> plain, failing -> refine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cyclefix.bench.prompt import ANSWER_PREFIX
from cyclefix.cli import main
from cyclefix.models.scripted import ScriptedBackend
from cyclefix.training.collect import collect, mbpp_test_module, nearest_solution
from cyclefix.training.mbpp import MbppProblem, load_problems
from cyclefix.training.samples import record_from_json

pytest.importorskip("rank_bm25")

FIXTURES = Path(__file__).parent / "fixtures" / "training"


@pytest.fixture(autouse=True)
def _no_pytest_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    # The data commands set it for their test runs; monkeypatch puts the old value back after.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


REPEATED_OK = (
    "```python\ndef first_repeated_char(str1):\n    seen = set()\n    for c in str1:\n"
    '        if c in seen:\n            return c\n        seen.add(c)\n    return "None"\n```'
)
REPEATED_WRONG = (
    "```python\ndef first_repeated_char(str1):\n    seen = set()\n    for c in str1:\n"
    "        if c in seen:\n            return c\n        seen.add(c)\n    return None\n```"
)
REVERSE_WRONG = "```python\ndef reverse_words(s):\n    return s[::-1]\n```"


def _problems(*ids: int) -> list[MbppProblem]:
    return [p for p in load_problems(FIXTURES / "mbpp_small.jsonl") if p.task_id in ids]


def test_nearest_solution_prefers_the_closest_code() -> None:
    faulty = (
        "def f(xs):\n    seen = set()\n    for x in xs:\n        seen.add(x)\n    return None\n"
    )
    near = (
        "def f(xs):\n    seen = set()\n    for x in xs:\n        if x in seen:\n"
        "            return x\n        seen.add(x)\n"
    )
    far = "def f(s):\n  for i,c in enumerate(s):\n    if s[:i+1].count(c) > 1:\n      return c\n"
    assert nearest_solution(faulty, [far, near]) == near
    assert nearest_solution(faulty, [far]) == far


def test_test_module_has_one_test_per_assert() -> None:
    (problem,) = _problems(604)
    module = mbpp_test_module(problem)
    assert module.count("def test_assert_") == 3
    compile(module, "test_mbpp.py", "exec")


def test_passing_sample_is_plain_and_failing_one_is_refine() -> None:
    backend = ScriptedBackend([REPEATED_OK, REVERSE_WRONG])
    records, stats = collect(_problems(602, 604), backend, on_progress=lambda _: None)
    assert (stats.passing, stats.failing, stats.samples) == (1, 1, 2)
    by_kind = {(r.source, r.kind) for r in records}
    # 602: the passing sample and the reference are plain;
    # 604: the reference is plain and the failure becomes a refine sample.
    assert by_kind == {("mbpp:602", "plain"), ("mbpp:604", "plain"), ("mbpp:604", "refine")}
    assert sum(r.kind == "plain" and r.source == "mbpp:602" for r in records) == 2
    # A plain target is what round 0 asks for: the answer's opening, then the code.
    plain = next(r for r in records if r.kind == "plain")
    assert plain.target.startswith(ANSWER_PREFIX + "def ") and plain.target.endswith("\n```")
    refine = next(r for r in records if r.kind == "refine")
    assert "s[::-1]" in refine.faulty_code
    assert refine.feedback.startswith("Test Case Failed: assert reverse_words(")
    assert "Actual output" in refine.feedback
    assert refine.target.startswith(
        "```python\ndef reverse_words(s):\n        return ' '.join(reversed(s.split()))"
    )
    user = refine.messages[refine.pgm_spans[0].message].content
    hidden = "".join(user[s.start : s.end] for s in refine.pgm_spans)
    assert "s[::-1]" in hidden and refine.feedback in hidden
    assert "reverse words in a given string" not in hidden
    assert record_from_json(refine.to_json(), "x") == refine


def test_refine_target_is_the_bm25_nearest_correct_solution() -> None:
    # Two samples for 602: one wrong, one right and close to it; the reference is far from both.
    backend = ScriptedBackend([REPEATED_WRONG, REPEATED_OK])
    records, stats = collect(_problems(602), backend, samples=2, on_progress=lambda _: None)
    assert (stats.passing, stats.failing) == (1, 1)
    refine = next(r for r in records if r.kind == "refine")
    assert "seen.add(c)" in refine.solution and 'return "None"' in refine.solution


def test_collect_cli_writes_records_and_stats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replies = tmp_path / "replies.json"
    both_wrong = (
        "```python\nclass Pair:\n    def __init__(self, a, b):\n        self.a, self.b = a, b\n\n\n"
        "def max_chain_length(arr, n):\n    return 0\n\n\n"
        "def first_repeated_char(str1):\n    return None\n```"
    )
    replies.write_text(json.dumps([both_wrong]))
    out = tmp_path / "refine.jsonl"
    code = main(
        [
            "data",
            "collect",
            "--problems",
            f"{FIXTURES / 'mbpp_small.jsonl'}:train",
            "--model",
            f"scripted:{replies}",
            "-o",
            str(out),
            "--limit",
            "2",
            "--no-reference-plain",
        ]
    )
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["refine", "refine"]
    stats = json.loads((tmp_path / "refine.stats.json").read_text())
    assert stats["problems"] == 2 and stats["failing"] == 2
    assert "0/2 samples passed" in capsys.readouterr().out


def test_collect_refuses_the_test_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "data",
                "collect",
                "--problems",
                "mbpp-test",
                "--model",
                "scripted:x.json",
                "-o",
                str(tmp_path / "o.jsonl"),
            ]
        )
        == 2
    )
    assert "evaluation" in capsys.readouterr().err
