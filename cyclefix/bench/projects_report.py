"""The real-project suite's own report: per library, the time curve, and per bug.

Appended to report.md after the per-round tables every suite has, and written as projects.json.
A bug counts as fixed only by the judge (the library's own tests run fresh), never by cyclefix's
own verdict; "claimed, regressed" counts the fixes cyclefix verified that the judge refused.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cyclefix.bench.projects_manifest import InjectedBug, Manifest
from cyclefix.bench.records import RoundResult, group_runs

PROJECTS_FILE = "projects.json"
# Seconds at which the fix rate is read off (issue 19 part 6).
TIME_MARKS = (15, 30, 60, 120, 300)


@dataclass(frozen=True)
class BugOutcome:
    model: str
    bug_id: str
    library: str
    sample: int
    fixed: bool  # judged by the library's own tests
    claimed: bool  # cyclefix verified a fix
    restored: bool  # the fix is the shipped code again
    # The user's wait for the judged fix: the initial test run plus the refine loop.
    seconds: float | None
    rank: int | None  # the injected function among the localizer's suspects; None: absent
    suspects: int
    private: bool
    cross_module: bool


def bug_outcomes(
    records: Iterable[RoundResult], manifest: Manifest, rounds: int
) -> list[BugOutcome]:
    """One outcome per complete (model, bug, sample) run of the manifest's bugs."""
    bugs: dict[str, InjectedBug] = {b.bug_id: b for b in manifest.bugs}
    found: list[BugOutcome] = []
    for (model, task_id, sample), by_round in group_runs(records):
        bug = bugs.get(task_id)
        if bug is None or any(k not in by_round for k in range(rounds + 1)):
            continue
        first, last = by_round[0], by_round[rounds]
        fixed = bool(last.passed)
        fix_seconds = last.extra.get("fix_seconds")
        seconds = (
            round(first.seconds + float(fix_seconds), 3)
            if fixed and isinstance(fix_seconds, int | float)
            else None
        )
        rank = first.extra.get("rank")
        found.append(
            BugOutcome(
                model=model,
                bug_id=task_id,
                library=bug.library,
                sample=sample,
                fixed=fixed,
                claimed=last.fix_status == "fixed",
                restored=fixed and bool(last.extra.get("restored")),
                seconds=seconds,
                rank=rank if isinstance(rank, int) else None,
                suspects=int(first.extra.get("suspects", 0) or 0),
                private=bug.private,
                cross_module=bug.cross_module,
            )
        )
    return sorted(found, key=lambda o: (o.model, o.library, o.bug_id, o.sample))


@dataclass(frozen=True)
class LibraryFigures:
    library: str
    runs: int
    fixed: int
    restored: int
    other_fix: int  # judged fixed, not the shipped code
    claimed_regressed: int  # cyclefix verified, the judge refused
    median_seconds: float | None  # of the judged fixes
    ranked_first: int
    mean_rank: float | None  # over the runs whose injected function was a suspect at all
    not_suspected: int


def library_figures(outcomes: Sequence[BugOutcome], library: str) -> LibraryFigures:
    ranks = [o.rank for o in outcomes if o.rank is not None]
    times = [o.seconds for o in outcomes if o.seconds is not None]
    return LibraryFigures(
        library=library,
        runs=len(outcomes),
        fixed=sum(o.fixed for o in outcomes),
        restored=sum(o.restored for o in outcomes),
        other_fix=sum(o.fixed and not o.restored for o in outcomes),
        claimed_regressed=sum(o.claimed and not o.fixed for o in outcomes),
        median_seconds=float(statistics.median(times)) if times else None,
        ranked_first=sum(r == 1 for r in ranks),
        mean_rank=statistics.fmean(ranks) if ranks else None,
        not_suspected=len(outcomes) - len(ranks),
    )


def fixed_within(
    outcomes: Sequence[BugOutcome], marks: Sequence[int] = TIME_MARKS
) -> dict[int, int]:
    """For each mark, the runs judged fixed within that many seconds."""
    return {
        mark: sum(o.seconds is not None and o.seconds <= mark for o in outcomes) for mark in marks
    }


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _library_rows(figures: Sequence[LibraryFigures]) -> list[str]:
    head = ["Library", "bugs", "fixed", "restored", "other fix", "claimed, regressed",
            "median s", "ranked 1st", "mean rank", "not suspected"]  # fmt: skip
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in figures:
        cells = [
            f.library,
            str(f.runs),
            f"{f.fixed} ({_pct(f.fixed, f.runs)})",
            str(f.restored),
            str(f.other_fix),
            str(f.claimed_regressed),
            _num(f.median_seconds),
            f"{f.ranked_first} ({_pct(f.ranked_first, f.runs)})",
            _num(f.mean_rank),
            str(f.not_suspected),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _curve_rows(outcomes: Sequence[BugOutcome]) -> list[str]:
    curve = fixed_within(outcomes)
    head = ["", *(f"≤ {mark} s" for mark in curve)]
    cells = ["fixed", *(f"{n} ({_pct(n, len(outcomes))})" for n in curve.values())]
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        "| " + " | ".join(cells) + " |",
    ]


def _bug_rows(outcomes: Sequence[BugOutcome], bugs: dict[str, InjectedBug]) -> list[str]:
    head = ["Bug", "function", "kind", "private", "other module's tests", "rank", "fixed",
            "restored", "s"]  # fmt: skip
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for o in outcomes:
        bug = bugs[o.bug_id]
        cells = [
            o.bug_id if o.sample == 0 else f"{o.bug_id}#{o.sample}",
            f"`{bug.path}::{bug.function}`",
            bug.kind,
            "yes" if bug.private else "",
            "yes" if bug.cross_module else "",
            "-" if o.rank is None else f"{o.rank}/{o.suspects}",
            "yes" if o.fixed else ("claimed, regressed" if o.claimed else ""),
            "yes" if o.restored else "",
            _num(o.seconds),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def models_of(outcomes: Sequence[BugOutcome]) -> list[str]:
    return list(dict.fromkeys(o.model for o in outcomes))


def render_projects_section(outcomes: Sequence[BugOutcome], manifest: Manifest) -> str:
    """Markdown: per model, the per-library table, the fix rate against time, every bug."""
    bugs = {b.bug_id: b for b in manifest.bugs}
    ran = {o.library for o in outcomes}
    versions = ", ".join(f"{s.name} {s.version}" for s in manifest.libraries if s.name in ran)
    parts = [
        "## Real projects",
        "",
        f"Libraries run (sdists pinned by sha256; {len(manifest.bugs)} bugs seeded with seed "
        f"{manifest.seed} in {len(manifest.libraries)} libraries): {versions}.",
        "Fixed: every test that passed on the library as shipped passes again, in a fresh run "
        "of its own suite (the judge), whatever cyclefix said. Restored: the fix is the shipped "
        "code again (layout, comments and docstrings aside); other fix: judged fixed otherwise. "
        "Claimed, regressed: cyclefix verified a fix that the judge refused. Seconds: the "
        "initial test run plus the refine loop. Rank: where the injected function stood among "
        "the localizer's suspects on the failing run (1 = first).",
        "",
    ]
    for model in models_of(outcomes):
        mine = [o for o in outcomes if o.model == model]
        libraries = list(dict.fromkeys(o.library for o in mine))
        figures = [library_figures([o for o in mine if o.library == lib], lib) for lib in libraries]
        total = library_figures(mine, "all")
        parts += [f"### {model}", "", *_library_rows([*figures, total]), ""]
        parts += ["Fix rate against time:", "", *_curve_rows(mine), ""]
        parts += [*_bug_rows(mine, bugs), ""]
    return "\n".join(parts)


def projects_summary(outcomes: Sequence[BugOutcome]) -> dict[str, Any]:
    """projects.json: per model, per-library figures, the time curve, and each outcome."""
    data: dict[str, Any] = {}
    for model in models_of(outcomes):
        mine = [o for o in outcomes if o.model == model]
        libraries = list(dict.fromkeys(o.library for o in mine))
        data[model] = {
            "libraries": [
                asdict(library_figures([o for o in mine if o.library == lib], lib))
                for lib in libraries
            ],
            "all": asdict(library_figures(mine, "all")),
            "fixed_within": {str(k): v for k, v in fixed_within(mine).items()},
            "outcomes": [asdict(o) for o in mine],
        }
    return data
