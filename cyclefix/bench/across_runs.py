"""Several runs of one suite task by task: where they differ, and the most that choosing
among their answers could reach (a task counts if any run passed it), a ceiling for any
way of picking one answer from the model's samples."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cyclefix.bench.records import RoundResult, group_runs


@dataclass(frozen=True)
class TaskOutcomes:
    """One model's tasks after one round, in every run: the share of each task's samples whose
    code passes the hidden tests, per run in the order given."""

    model: str
    round: int
    labels: tuple[str, ...]
    rates: tuple[tuple[str, tuple[float, ...]], ...]  # (task id, rate per run), tasks in order

    @property
    def tasks(self) -> int:
        return len(self.rates)

    def passing(self, run: int) -> float:
        return sum(per_run[run] for _task, per_run in self.rates)

    @property
    def in_every_run(self) -> float:
        return sum(min(per_run) for _task, per_run in self.rates)

    @property
    def in_some_run(self) -> float:
        return sum(max(per_run) for _task, per_run in self.rates)

    @property
    def differing(self) -> tuple[tuple[str, tuple[float, ...]], ...]:
        return tuple((task, per_run) for task, per_run in self.rates if len(set(per_run)) > 1)


def _task_order(task_id: str) -> tuple[str, int]:
    """HumanEval/2 before HumanEval/10."""
    match = re.fullmatch(r"(.*?)(\d+)", task_id)
    return (match[1], int(match[2])) if match else (task_id, -1)


def _rates_at(records: Sequence[RoundResult], round_: int) -> dict[tuple[str, str], float]:
    """(model, task) -> share of the task's samples passing after `round_` (samples without
    that round left out)."""
    passed: dict[tuple[str, str], list[bool]] = {}
    for (model, task_id, _sample), by_round in group_runs(records):
        if round_ in by_round:
            passed.setdefault((model, task_id), []).append(by_round[round_].passed)
    return {key: sum(v) / len(v) for key, v in passed.items()}


def task_outcomes(
    runs: Sequence[Sequence[RoundResult]], labels: Sequence[str]
) -> list[TaskOutcomes]:
    """Per model found in every run (runs of one model each pair whatever their model names):
    the tasks every run finished, after the last round all of them reached."""
    if len(runs) != len(labels):
        raise ValueError("one label per run")
    if any(not records for records in runs):
        return []
    round_ = min(max(r.round for r in records) for records in runs)
    by_run = [_rates_at(records, round_) for records in runs]
    models = [sorted({model for model, _task in rates}) for rates in by_run]
    if all(len(names) == 1 for names in models):
        # One model per run: compare them whatever their names (a model against its tune).
        by_run = [{(models[0][0], task): r for (_m, task), r in rates.items()} for rates in by_run]
    out: list[TaskOutcomes] = []
    for model in models[0]:
        per_run = [{task for m, task in rates if m == model} for rates in by_run]
        common = per_run[0].intersection(*per_run[1:])
        if not common:
            continue
        rates = tuple(
            (task, tuple(run_rates[model, task] for run_rates in by_run))
            for task in sorted(common, key=_task_order)
        )
        out.append(TaskOutcomes(model, round_, tuple(labels), rates))
    return out


def _share(count: float, total: int) -> str:
    """`total` is never 0: a model without common tasks has no outcomes."""
    return f"{count:g}/{total} ({100 * count / total:.1f}%)"


def _cell(rate: float) -> str:
    return "pass" if rate == 1 else "fail" if rate == 0 else f"{rate:.2f}"


def render_task_outcomes(outcomes: Sequence[TaskOutcomes]) -> str:
    """Markdown: each run's passing tasks, in every run and in some run, then the tasks whose
    outcome differs between runs."""
    if not outcomes:
        return "No model appears in every run."
    parts: list[str] = []
    for o in outcomes:
        parts += [
            f"### {o.model}: tasks passing the hidden tests after round {o.round}",
            "",
            "| Run | passing |",
            "|---|---|",
            *(f"| {label} | {_share(o.passing(i), o.tasks)} |" for i, label in enumerate(o.labels)),
            "",
            f"In every run: {_share(o.in_every_run, o.tasks)}. In some run: "
            f"{_share(o.in_some_run, o.tasks)}, the most that choosing among these runs' "
            "answers task by task could reach.",
            "",
        ]
        differing = o.differing
        if not differing:
            parts += ["Every task has the same outcome in every run.", ""]
            continue
        parts += [
            f"Tasks whose outcome differs: {len(differing)}",
            "",
            "| Task | " + " | ".join(o.labels) + " |",
            "|---|" + "---|" * len(o.labels),
            *(f"| {task} | " + " | ".join(map(_cell, rates)) + " |" for task, rates in differing),
            "",
        ]
    return "\n".join(parts).rstrip() + "\n"
