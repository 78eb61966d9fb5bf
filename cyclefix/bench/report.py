"""report.md (tables per model and round), pass_by_round.png, and the `compare` table."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cyclefix.bench.records import AttemptOrigin
from cyclefix.bench.summary import ModelSummary, RoundSummary, pair_models

REPORT_FILE = "report.md"
PLOT_FILE = "pass_by_round.png"
_ORIGIN_LABELS: dict[AttemptOrigin, str] = {
    "answer": "the model's answers",
    "token_edit": "token edits",
    "part": "parts of an answer",
}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _ci(interval: tuple[float, float] | None) -> str:
    """A 95% interval as " [lo-hi]" in percent, beside the figure it qualifies."""
    return "" if interval is None else f" [{100 * interval[0]:.1f}-{100 * interval[1]:.1f}]"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    system = f"{platform.system()} {platform.machine()}"
    return f"{system}, {cpu}, {cores} usable cores, Python {platform.python_version()}"


def round_table(summary: ModelSummary) -> str:
    ks = list(summary.rounds[0].pass_at_k) if summary.rounds else ["1"]
    head = [
        "Round",
        *(f"pass@{k}" for k in ks),
        "fix rate",
        "copy rate",
        "copies/attempts",
        "ended on copy",
        "fixed here",
        "prompt tok",
        "completion tok",
        "tok/s",
        "mean s/task",
    ]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.rounds:
        cells = [
            str(r.round),
            *(_pct(r.pass_at_k.get(k)) + (_ci(r.pass_at_1_ci) if k == "1" else "") for k in ks),
            _pct(r.fix_rate),
            _pct(r.copy_rate),
            f"{r.copies}/{r.attempts}" if r.round else "-",
            f"{r.ended_on_copy}/{r.refined}" if r.round else "-",
            str(r.fixed_here) if r.round else "-",
            str(r.prompt_tokens),
            str(r.completion_tokens),
            _num(r.tokens_per_second),
            _num(r.mean_seconds),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def model_section(summary: ModelSummary) -> str:
    last = summary.rounds[-1] if summary.rounds else None
    lines = [
        f"### {summary.model}",
        "",
        f"{summary.tasks} tasks x {summary.samples} sample(s): "
        f"{summary.complete_runs} complete runs"
        + (
            f", {summary.incomplete_runs} incomplete (not counted)"
            if summary.incomplete_runs
            else ""
        ),
        "",
        round_table(summary),
        "",
        f"- Round 0 failures fixed by refinement: "
        f"{_pct(last.fix_rate) if last else '-'}% of {last.initially_failing if last else 0}",
        f"- Verified fixes (visible tests pass): {summary.verified_fixes}, of which "
        f"{summary.verified_fixes_passing_hidden} also pass the hidden tests",
        f"- Rounds to a verified fix: mean {_num(summary.rounds_to_fix_mean, 2)}, "
        f"median {_num(summary.rounds_to_fix_median)}",
    ]
    if summary.fix_origins:
        shown = ", ".join(
            f"{_ORIGIN_LABELS[o.origin]} {o.verified} ({o.passing_hidden} pass the hidden tests)"
            for o in summary.fix_origins
        )
        lines.append(f"- Verified fixes by who wrote them: {shown}")
    if summary.verdicts:
        shown = ", ".join(f"{k} {v}" for k, v in summary.verdicts.items())
        lines.append(f"- Refinement attempts by verdict: {shown}")
    if summary.forked_verdicts:
        shown = ", ".join(f"{k} {v}" for k, v in summary.forked_verdicts.items())
        lines.append(f"- Of those, continued from a branch off a copy (refine.fork): {shown}")
    if summary.round0_notes:
        notes = ", ".join(f"{k}: {v}" for k, v in sorted(summary.round0_notes.items()))
        lines.append(
            f"- Round-0 answers without a usable function (a stub was refined instead): {notes}"
        )
    return "\n".join(lines)


def render_report(
    summaries: Sequence[ModelSummary], settings: dict[str, Any], meta: dict[str, Any]
) -> str:
    suite = settings.get("suite", "?")
    parts = [
        f"# cyclefix bench: {suite}",
        "",
        f"- Command: `{meta.get('command', '?')}`",
        f"- Date: {meta.get('date', '?')}",
        *(
            f"- Earlier: {h.get('date', '?')} `{h.get('command', '?')}`"
            for h in meta.get("history", [])[:-1]
        ),
        f"- Machine: {meta.get('machine', '?')}",
        f"- Settings: rounds {settings.get('rounds')}, samples {settings.get('samples')}, "
        f"round-0 temperature {settings.get('temperature')}, seed {settings.get('seed')}, "
        f"max tokens {settings.get('max_tokens')}, budget {settings.get('budget_seconds')} s"
        + (
            f"; past round {settings.get('rounds')} the loop went on within the budget "
            "(`--extend`): that round's line holds the extra rounds"
            if settings.get("extend_to_budget")
            else ""
        ),
        "",
        "pass@k is on the hidden tests, for the code the user has after each round (a verified fix "
        "from that round or earlier, else the round-0 code). Fix rate: share of the runs failing "
        "at round 0 that pass after the round. Copy rate: refinement answers identical to the "
        "faulty code (whitespace and comments ignored), over every attempt; the loop rejects them "
        "and samples again, so none reaches the user. Ended on copy: refining runs whose round "
        "still ended on a copy after those resamples, so the round produced nothing new. "
        "tok/s: completion tokens per second of decoding. [lo-hi] beside pass@1: its 95% "
        "bootstrap interval over tasks (how far another draw of tasks could move it).",
        "",
    ]
    for s in summaries:
        parts += [model_section(s), ""]
    if meta.get("errors"):
        parts += ["## Harness errors (runs not counted)", ""]
        parts += [f"- {e}" for e in meta["errors"]]
        parts.append("")
    return "\n".join(parts)


def write_plot(summaries: Sequence[ModelSummary], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for s in summaries:
        xs = [r.round for r in s.rounds]
        ys = [100 * r.pass_at_k.get("1", 0.0) for r in s.rounds]
        ax.plot(xs, ys, marker="o", label=f"{s.model} (N={s.complete_runs})")
    ax.set_xlabel("round (0 = one-shot generation)")
    ax.set_ylabel("pass@1 on hidden tests (%)")
    ax.set_title(title)
    ax.set_ylim(0, 100)  # the whole scale: small gains should look small
    ax.set_xticks(sorted({r.round for s in summaries for r in s.rounds}))
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _delta(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "-"
    return f"{100 * (b - a):+.1f}"


def compare_table(
    a: Sequence[ModelSummary], b: Sequence[ModelSummary], name_a: str = "A", name_b: str = "B"
) -> str:
    """Markdown: pass@1, fix rate, copy rate and ended-on-copy of two runs per round, B - A."""
    pairs = pair_models(a, b)
    if not pairs:
        return "No model appears in both runs."
    figures = ("pass@1", "fix rate", "copy rate", "ended on copy")
    head = ["Round", *(c for f in figures for c in (f"{f} {name_a}", f"{f} {name_b}", "Δ"))]
    parts: list[str] = []
    for ma, mb in pairs:
        parts += [
            f"### {name_a}: {ma.model} ({ma.complete_runs} runs) vs "
            f"{name_b}: {mb.model} ({mb.complete_runs} runs)",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        rounds_b = {r.round: r for r in mb.rounds}
        for ra in ma.rounds:
            rb: RoundSummary | None = rounds_b.get(ra.round)
            if rb is None:
                continue
            pa, pb = ra.pass_at_k.get("1"), rb.pass_at_k.get("1")
            cells = [str(ra.round), _pct(pa), _pct(pb), _delta(pa, pb)]
            for x, y in (
                (ra.fix_rate, rb.fix_rate),
                (ra.copy_rate, rb.copy_rate),
                (ra.ended_on_copy_rate, rb.ended_on_copy_rate),
            ):
                cells += [_pct(x), _pct(y), _delta(x, y)]
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
    return "\n".join(parts)
