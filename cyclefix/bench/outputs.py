"""What a bench run writes besides its results: the command history, summary.json, report.md,
the plot, and the real-project section and projects.json."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cyclefix.bench.projects_run import ProjectSuite

HISTORY_FILE = "commands.jsonl"


def log_command(out_dir: Path, meta: dict[str, Any], models: list[str]) -> None:
    """Every bench command that wrote into out_dir, for the report's provenance."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    entry = {"date": meta["date"], "command": meta["command"], "models": models,
             "tasks": meta["tasks"]}  # fmt: skip
    with (out_dir / HISTORY_FILE).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def read_history(out_dir: Path) -> list[dict[str, Any]]:
    import json

    path = out_dir / HISTORY_FILE
    if not path.exists():
        return []
    entries: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


def write_outputs(out_dir: Path, settings: Any, meta: dict[str, Any]) -> None:
    import json

    from cyclefix.bench.report import (
        PLOT_FILE,
        REPORT_FILE,
        machine_description,
        render_report,
        write_plot,
    )
    from cyclefix.bench.run_settings import load_all
    from cyclefix.bench.summary import SUMMARY_FILE, summarize, summary_to_json

    records = load_all(out_dir)
    if not records:
        return
    summaries = summarize(records, settings.rounds)
    meta = {**meta, "machine": machine_description(), "history": read_history(out_dir)}
    identity = settings.identity()
    (out_dir / SUMMARY_FILE).write_text(
        json.dumps(summary_to_json(summaries, identity, meta), indent=2) + "\n", encoding="utf-8"
    )
    (out_dir / REPORT_FILE).write_text(render_report(summaries, identity, meta), encoding="utf-8")
    write_plot(summaries, out_dir / PLOT_FILE, f"{settings.suite}: pass@1 by refinement round")


def write_projects_outputs(out_dir: Path, suite: ProjectSuite, rounds: int) -> None:
    """The real-project section appended to report.md, and projects.json."""
    import json

    from cyclefix.bench.projects_report import (
        PROJECTS_FILE,
        bug_outcomes,
        projects_summary,
        render_projects_section,
    )
    from cyclefix.bench.report import REPORT_FILE
    from cyclefix.bench.run_settings import load_all

    outcomes = bug_outcomes(load_all(out_dir), suite.manifest, rounds)
    if not outcomes:
        return
    report = out_dir / REPORT_FILE
    text = report.read_text(encoding="utf-8") if report.exists() else ""
    section = render_projects_section(outcomes, suite.manifest)
    report.write_text(text.rstrip("\n") + "\n\n" + section, encoding="utf-8")
    (out_dir / PROJECTS_FILE).write_text(
        json.dumps(projects_summary(outcomes), indent=2) + "\n", encoding="utf-8"
    )
