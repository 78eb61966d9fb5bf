"""From result lines to per-model, per-round figures (summary.json), and two runs compared."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cyclefix.bench import metrics
from cyclefix.bench.records import ORIGINS, AttemptOrigin, RoundResult, group_runs
from cyclefix.errors import CyclefixError

SUMMARY_FILE = "summary.json"
_K_CHOICES = (1, 2, 5, 10, 20, 50, 100)


@dataclass(frozen=True)
class RoundSummary:
    round: int
    runs: int  # (task, sample) runs counted
    passed: int  # runs whose code passes the hidden tests after this round
    pass_at_k: dict[str, float]  # "1" -> pass@1 (a fraction), ...
    initially_failing: int
    fix_rate: float | None  # share of the round-0 failures passing now
    ran: int  # runs that generated in this round
    attempts: int
    copies: int
    copy_rate: float | None
    duplicates: int
    fixed_here: int  # runs whose verified fix came in this round
    prompt_tokens: int
    completion_tokens: int
    decode_seconds: float
    tokens_per_second: float | None
    # Mean wall seconds per run spent up to and including this round.
    mean_seconds: float
    # Per refining run rather than per attempt: the runs that asked the model this round, and
    # those whose round ended on a copy (the guard's resamples were copies too), so the round
    # produced nothing new; defaults keep summaries written before these fields loadable.
    refined: int = 0
    ended_on_copy: int = 0
    ended_on_copy_rate: float | None = None
    # 95% bootstrap interval of pass@1 over tasks (metrics.bootstrap_interval).
    pass_at_1_ci: tuple[float, float] | None = None


@dataclass(frozen=True)
class FixOrigin:
    """The verified fixes whose passing candidate had one origin, and how many of them also
    pass the hidden tests: a token edit that fits a few examples is not always the task."""

    origin: AttemptOrigin
    verified: int
    passing_hidden: int


@dataclass(frozen=True)
class ModelSummary:
    model: str
    suite: str
    tasks: int
    samples: int
    complete_runs: int
    incomplete_runs: int
    rounds: tuple[RoundSummary, ...]
    # Over runs fixed by refinement: mean and median round of the verified fix.
    rounds_to_fix_mean: float | None
    rounds_to_fix_median: float | None
    # Verified fixes (visible tests pass) that also pass the hidden tests.
    verified_fixes: int
    verified_fixes_passing_hidden: int
    round0_notes: dict[str, int] = field(default_factory=dict)
    # How the refinement attempts ended, over all rounds: "copy", "tests_failed", "passed", ...
    verdicts: dict[str, int] = field(default_factory=dict)
    # The same for the attempts continued from a fork of a copy (refine.fork).
    forked_verdicts: dict[str, int] = field(default_factory=dict)
    # Verified fixes by the origin of their passing candidate, in ORIGINS' order.
    fix_origins: tuple[FixOrigin, ...] = ()


def k_values(samples: int) -> list[int]:
    return [k for k in _K_CHOICES if k <= samples] or [1]


def summarize_model(records: Sequence[RoundResult], rounds: int) -> ModelSummary:
    """Figures for one model's lines; runs missing a round are counted apart, not scored."""
    if not records:
        raise CyclefixError("no results to summarize")
    model = records[0].model
    suite = records[0].suite
    complete: list[dict[int, RoundResult]] = []
    incomplete = 0
    for _key, by_round in group_runs(records):
        if all(k in by_round for k in range(rounds + 1)):
            complete.append(by_round)
        else:
            incomplete += 1
    samples = max((r[0].sample for r in complete), default=0) + 1
    by_task: dict[str, list[dict[int, RoundResult]]] = {}
    for run in complete:
        by_task.setdefault(run[0].task_id, []).append(run)
    ks = k_values(min((len(v) for v in by_task.values()), default=1))
    failing0 = [not run[0].passed for run in complete]
    cumulative = [0.0] * len(complete)
    round_summaries: list[RoundSummary] = []
    for k in range(rounds + 1):
        lines = [run[k] for run in complete]
        for i, line in enumerate(lines):
            cumulative[i] += line.seconds
        counts = [(len(runs), sum(run[k].passed for run in runs)) for runs in by_task.values()]
        per_task = [c / n for n, c in counts]
        # The model's answers: a part of an earlier answer or a token edit is not one.
        attempts = [a for line in lines for a in line.attempts if not (a.partial or a.token_edit)]
        copies = sum(a.copy for a in attempts)
        refining = [line for line in lines if line.attempts]
        # A rewrite tried after a tested fork may be a copy; the round still tested the fork.
        ended_on_copy = sum(
            line.attempts[-1].copy and not any(a.tests_total for a in line.attempts)
            for line in refining
        )
        completion = sum(line.completion_tokens for line in lines)
        decode = sum(line.decode_seconds for line in lines)
        round_summaries.append(
            RoundSummary(
                round=k,
                runs=len(lines),
                passed=sum(line.passed for line in lines),
                pass_at_k={str(kk): metrics.mean_pass_at_k(counts, kk) for kk in ks},
                initially_failing=sum(failing0),
                fix_rate=(
                    metrics.fix_rate(failing0, [line.passed for line in lines]) if k > 0 else None
                ),
                ran=sum(1 for line in lines if line.status in ("generated", "fixed", "refined")),
                attempts=len(attempts),
                copies=copies,
                copy_rate=metrics.copy_rate(copies, len(attempts)) if k > 0 else None,
                duplicates=sum(a.verdict == "duplicate" for a in attempts),
                fixed_here=sum(line.status == "fixed" for line in lines),
                prompt_tokens=sum(line.prompt_tokens for line in lines),
                completion_tokens=completion,
                decode_seconds=round(decode, 3),
                tokens_per_second=metrics.tokens_per_second(completion, decode),
                mean_seconds=sum(cumulative) / len(cumulative) if cumulative else 0.0,
                refined=len(refining),
                ended_on_copy=ended_on_copy,
                ended_on_copy_rate=(
                    metrics.copy_rate(ended_on_copy, len(refining)) if k > 0 else None
                ),
                pass_at_1_ci=metrics.bootstrap_interval(per_task),
            )
        )
    fixed_at = [k for run in complete for k, line in run.items() if line.status == "fixed"]
    to_fix = metrics.rounds_to_fix(fixed_at)
    verified = [line for run in complete for line in run.values() if line.status == "fixed"]
    notes: dict[str, int] = {}
    for run in complete:
        if run[0].note:
            notes[run[0].note] = notes.get(run[0].note, 0) + 1
    verdicts: dict[str, int] = {}
    forked: dict[str, int] = {}
    for run in complete:
        for line in run.values():
            for attempt in line.attempts:
                verdicts[attempt.verdict] = verdicts.get(attempt.verdict, 0) + 1
                if attempt.forked:
                    forked[attempt.verdict] = forked.get(attempt.verdict, 0) + 1
    return ModelSummary(
        model=model,
        suite=suite,
        tasks=len(by_task),
        samples=samples,
        complete_runs=len(complete),
        incomplete_runs=incomplete,
        rounds=tuple(round_summaries),
        rounds_to_fix_mean=to_fix[0] if to_fix else None,
        rounds_to_fix_median=to_fix[1] if to_fix else None,
        verified_fixes=len(verified),
        verified_fixes_passing_hidden=sum(line.passed for line in verified),
        round0_notes=notes,
        verdicts=_most_first(verdicts),
        forked_verdicts=_most_first(forked),
        fix_origins=fix_origins(verified, records),
    )


def fix_origins(
    verified: Sequence[RoundResult], lines: Sequence[RoundResult]
) -> tuple[FixOrigin, ...]:
    """`verified` (lines whose round verified a fix) by who wrote the candidate that is the
    fix: the attempt marked so among its task's `lines` (an edit held from an earlier round,
    refine.held), else the round's last passing one."""
    marked = {(x.task_id, x.sample): a for x in lines for a in x.attempts if a.fix}
    counts = {origin: [0, 0] for origin in ORIGINS}
    for line in verified:
        passing = [a for a in line.attempts if a.verdict == "passed"]
        fix = marked.get((line.task_id, line.sample)) or (passing[-1] if passing else None)
        if fix is None:  # a line written without its attempts
            continue
        count = counts[fix.origin]
        count[0] += 1
        count[1] += line.passed
    return tuple(FixOrigin(o, n, hidden) for o, (n, hidden) in counts.items() if n)


def _most_first(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def summarize(records: Iterable[RoundResult], rounds: int) -> list[ModelSummary]:
    by_model: dict[str, list[RoundResult]] = {}
    for r in records:
        by_model.setdefault(r.model, []).append(r)
    return [summarize_model(lines, rounds) for lines in by_model.values()]


def summary_to_json(
    summaries: Sequence[ModelSummary], settings: dict[str, Any], meta: dict[str, Any]
) -> dict[str, Any]:
    return {
        "schema": "cyclefix.bench/1",
        "settings": settings,
        "meta": meta,
        "models": {s.model: asdict(s) for s in summaries},
    }


def _round_from_dict(data: dict[str, Any]) -> RoundSummary:
    fields = dict(data)
    ci = fields.get("pass_at_1_ci")
    fields["pass_at_1_ci"] = (float(ci[0]), float(ci[1])) if ci else None
    return RoundSummary(**fields)


def model_from_dict(data: dict[str, Any]) -> ModelSummary:
    fields = dict(data)
    fields["rounds"] = tuple(_round_from_dict(r) for r in data["rounds"])
    fields["fix_origins"] = tuple(FixOrigin(**o) for o in data.get("fix_origins", ()))
    return ModelSummary(**fields)


def load_summary(path: Path) -> tuple[dict[str, Any], list[ModelSummary]]:
    """A bench summary from an out folder or its summary.json."""
    file = path / SUMMARY_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        models = [model_from_dict(m) for m in data["models"].values()]
    except FileNotFoundError:
        raise CyclefixError(
            f"no bench summary at {file}; run `cyclefix bench` there first"
        ) from None
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CyclefixError(f"{file} is not a bench summary: {exc}") from exc
    return data, models


def pair_models(
    a: Sequence[ModelSummary], b: Sequence[ModelSummary]
) -> list[tuple[ModelSummary, ModelSummary]]:
    """Same-named models side by side; two single-model runs are paired whatever their names."""
    if len(a) == 1 and len(b) == 1:
        return [(a[0], b[0])]
    named = {m.model: m for m in b}
    return [(m, named[m.model]) for m in a if m.model in named]
