"""Base and plus scores of an EvalPlus-protocol run, per round, with bootstrap intervals.

The harness records one pass/fail per round (every hidden test: base and plus). EvalPlus
reports two figures, so each scoring run's own tests are read as it happens (a
workspace.score_listener) into evalplus_scores.jsonl: the round-0 code's and the verified fix's
base and plus verdicts. The code a user holds after round k is the fix once it came, else the
round-0 code, so those two lines give every round.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from cyclefix.bench import metrics
from cyclefix.bench.records import RoundResult, group_runs
from cyclefix.bench.workspace import TaskWorkspace
from cyclefix.runner.results import TestRunResult

SCORES_FILE = "evalplus_scores.jsonl"
EVALPLUS_FILE = "evalplus.json"
BASE_TEST = "test_base_inputs"
ScoreSource = Literal["round0", "fix"]

# One-shot figures the Qwen2.5-Coder technical report gives for the instruct models under
# EvalPlus (bf16 weights; the registry's GGUFs are Q4_K_M): base, plus.
PUBLISHED: dict[str, dict[str, tuple[float, float | None]]] = {
    "qwen2.5-coder-1.5b": {"evalplus-humaneval": (70.7, 66.5), "evalplus-mbpp": (69.2, 59.4)},
    "qwen2.5-coder-0.5b": {"evalplus-humaneval": (61.6, 57.3), "evalplus-mbpp": (52.4, 43.7)},
}
_LABELS = {"evalplus-humaneval": ("HumanEval", "HumanEval+"), "evalplus-mbpp": ("MBPP", "MBPP+")}


@dataclass(frozen=True)
class ScoreLine:
    model: str
    task_id: str
    sample: int
    source: ScoreSource
    base: bool
    # None when the task has no plus tests (HumanEval here).
    plus: bool | None


def verdicts(result: TestRunResult, has_plus: bool) -> tuple[bool, bool | None]:
    """(base, plus) of one scoring run: plus is every hidden test, base the base inputs' alone;
    plus None for a suite without plus tests (HumanEval here)."""
    if not has_plus:
        return result.all_passed, None
    names = {t.nodeid.rsplit("::", 1)[-1]: t for t in result.tests}
    base_test = names.get(BASE_TEST)
    if base_test is None:  # the answer never let its tests run (an import that hangs or fails)
        return False, False
    clean = not result.collection_errors and not result.timed_out and not result.cancelled
    return clean and base_test.outcome == "passed", result.all_passed


class ScoreRecorder:
    """A score listener writing one line per scoring run of `model`'s tasks."""

    def __init__(self, out_dir: Path, model: str, samples: int, has_plus: bool) -> None:
        self.path = out_dir / SCORES_FILE
        self.model = model
        self.samples = samples
        self.has_plus = has_plus
        self._lock = threading.Lock()

    def _sample(self, ws: TaskWorkspace) -> int | None:
        # The harness names a run's folder "<task slug>-s<sample>".
        for sample in range(self.samples):
            if ws.root.name == f"{ws.task.slug}-s{sample}":
                return sample
        return None

    def __call__(
        self, ws: TaskWorkspace, changed: Mapping[str, str] | None, result: TestRunResult
    ) -> None:
        sample = self._sample(ws)
        if sample is None or result.cancelled:
            return
        base, plus = verdicts(result, self.has_plus)
        source: ScoreSource = "round0" if changed is None else "fix"
        line = ScoreLine(self.model, ws.task.task_id, sample, source, base, plus)
        text = json.dumps(asdict(line)) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())


def scores_recorded(suite: str, out_dir: Path, model: str, samples: int) -> Any:
    """While an EvalPlus suite runs, its base and plus verdicts are recorded as scored."""
    if not suite.startswith("evalplus-"):
        return contextlib.nullcontext()
    from cyclefix.bench.workspace import score_listener

    return score_listener(ScoreRecorder(out_dir, model, samples, suite == "evalplus-mbpp"))


def read_scores(out_dir: Path) -> dict[tuple[str, str, int, str], ScoreLine]:
    """Score lines by (model, task, sample, source); a later line replaces an earlier one."""
    path = out_dir / SCORES_FILE
    out: dict[tuple[str, str, int, str], ScoreLine] = {}
    if not path.exists():
        return out
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            line = ScoreLine(**json.loads(raw))
        except (json.JSONDecodeError, TypeError):
            continue  # a torn last line from a killed run; that run is redone
        out[line.model, line.task_id, line.sample, line.source] = line
    return out


@dataclass(frozen=True)
class EvalPlusRound:
    round: int
    base: float
    base_ci: tuple[float, float] | None
    plus: float | None
    plus_ci: tuple[float, float] | None


@dataclass(frozen=True)
class EvalPlusSummary:
    model: str
    suite: str
    tasks: int
    runs: int
    # Complete runs without their score lines (not counted).
    unscored: int
    rounds: tuple[EvalPlusRound, ...]


def _rate(by_task: Mapping[str, list[bool]]) -> tuple[float, tuple[float, float] | None]:
    per_task = [sum(v) / len(v) for v in by_task.values()]
    return sum(per_task) / len(per_task), metrics.bootstrap_interval(per_task)


def summarize_evalplus(
    records: Sequence[RoundResult],
    scores: Mapping[tuple[str, str, int, str], ScoreLine],
    suite: str,
    rounds: int,
) -> list[EvalPlusSummary]:
    """Per model and round: base and plus pass@1 over tasks, each with its 95% interval."""
    per_model: dict[str, list[list[tuple[bool, bool | None]]]] = {}
    tasks_of: dict[str, list[str]] = {}
    unscored: dict[str, int] = {}
    for (model, task_id, sample), by_round in group_runs(records):
        if not all(k in by_round for k in range(rounds + 1)):
            continue
        first = scores.get((model, task_id, sample, "round0"))
        fixed = [k for k, line in by_round.items() if line.status == "fixed"]
        fix = scores.get((model, task_id, sample, "fix")) if fixed else None
        if first is None or (fixed and fix is None):
            unscored[model] = unscored.get(model, 0) + 1
            continue
        held = [fix if fix is not None and k >= fixed[0] else first for k in range(rounds + 1)]
        per_model.setdefault(model, []).append([(s.base, s.plus) for s in held])
        tasks_of.setdefault(model, []).append(task_id)
    out: list[EvalPlusSummary] = []
    for model, runs in per_model.items():
        table: list[EvalPlusRound] = []
        for k in range(rounds + 1):
            base: dict[str, list[bool]] = {}
            plus: dict[str, list[bool]] = {}
            for task_id, run in zip(tasks_of[model], runs, strict=True):
                base.setdefault(task_id, []).append(run[k][0])
                if run[k][1] is not None:
                    plus.setdefault(task_id, []).append(bool(run[k][1]))
            base_rate, base_ci = _rate(base)
            plus_rate, plus_ci = _rate(plus) if plus else (None, None)
            table.append(EvalPlusRound(k, base_rate, base_ci, plus_rate, plus_ci))
        out.append(
            EvalPlusSummary(
                model=model,
                suite=suite,
                tasks=len(set(tasks_of[model])),
                runs=len(runs),
                unscored=unscored.get(model, 0),
                rounds=tuple(table),
            )
        )
    return out


def _cell(value: float | None, ci: tuple[float, float] | None) -> str:
    if value is None:
        return "-"
    shown = f"{100 * value:.1f}"
    return shown if ci is None else f"{shown} [{100 * ci[0]:.1f}-{100 * ci[1]:.1f}]"


def render_evalplus(summaries: Sequence[EvalPlusSummary]) -> str:
    """The report section: base and plus side by side, round 0 to the last."""
    if not summaries:
        return ""
    base_name, plus_name = _LABELS.get(summaries[0].suite, ("base", "plus"))
    parts = [
        "## EvalPlus protocol: base and plus tests by round",
        "",
        f"{base_name}: the base tests; {plus_name}: base and EvalPlus's extra inputs (both must "
        "pass). Round 0 is EvalPlus's own one-shot protocol; rounds 1 on see only the visible "
        "examples, so a gain in base that plus does not share fits the examples, not the task. "
        "[lo-hi]: 95% bootstrap interval over tasks.",
        "",
    ]
    if all(r.plus is None for s in summaries for r in s.rounds):
        parts += [
            f"{plus_name} is not measured: its extra inputs ship in no installable package. "
            f"The pass@1 table above is {base_name}.",
            "",
        ]
    else:
        parts += [f"The pass@1 table above, every hidden test, is {plus_name}.", ""]
    for s in summaries:
        published = PUBLISHED.get(s.model, {}).get(s.suite)
        parts += [
            f"### {s.model}",
            "",
            f"{s.tasks} tasks, {s.runs} runs"
            + (f", {s.unscored} without score lines (not counted)" if s.unscored else ""),
            "",
            f"| Round | {base_name} | {plus_name} |",
            "|---|---|---|",
        ]
        parts += [
            f"| {r.round} | {_cell(r.base, r.base_ci)} | {_cell(r.plus, r.plus_ci)} |"
            for r in s.rounds
        ]
        if published is not None:
            plus = "-" if published[1] is None else f"{published[1]:.1f}"
            parts += [
                "",
                f"Published one-shot (Qwen2.5-Coder report, bf16): {base_name} "
                f"{published[0]:.1f}, {plus_name} {plus}.",
            ]
        parts.append("")
    return "\n".join(parts)


def evalplus_to_json(summaries: Sequence[EvalPlusSummary]) -> dict[str, Any]:
    return {
        "schema": "cyclefix.bench.evalplus/1",
        "models": {
            s.model: {**asdict(s), "published": PUBLISHED.get(s.model, {}).get(s.suite)}
            for s in summaries
        },
    }


def write_evalplus_outputs(out_dir: Path, suite: str, rounds: int) -> None:
    """evalplus.json, and the base/plus section appended to report.md."""
    from cyclefix.bench.report import REPORT_FILE
    from cyclefix.bench.run_settings import load_all

    summaries = summarize_evalplus(load_all(out_dir), read_scores(out_dir), suite, rounds)
    if not summaries:
        return
    (out_dir / EVALPLUS_FILE).write_text(
        json.dumps(evalplus_to_json(summaries), indent=2) + "\n", encoding="utf-8"
    )
    report = out_dir / REPORT_FILE
    text = report.read_text(encoding="utf-8") if report.exists() else ""
    report.write_text(text.rstrip("\n") + "\n\n" + render_evalplus(summaries), encoding="utf-8")
