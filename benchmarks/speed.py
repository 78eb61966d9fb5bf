"""Where does the time to a verified fix go? The phases of `cyclefix fix`, per bug set.

Runs the real CLI, `cyclefix fix PROJECT --json`, once per bug project and model, over the
examples/ projects and the MBPP bugs of benchmarks/fix_rate.py (cyclefix.bench.bugs), and
prints per set the median seconds of each phase the JSON reports (model load, the user's run
of the tests, localizing, scoring copies, prompt evaluation, generation, the candidates' test
runs, overhead) plus the process start the JSON cannot see (wall time less its `seconds`), and
the model's own prompt and generation throughput; the candidates' test runs are split into
process start, collection and the tests themselves. A stacked bar chart (PNG) shows the mean of
each phase, which, unlike medians, adds up to the mean command. One JSON line per run goes to
--out; a rerun skips the runs already there.

With --raw, each run also records the prompts its model calls read (OUT.prompts/), and plain
llama.cpp (benchmarks/llama_raw.py: same model, same threads, same machine, one run) reads
them from an empty cache and decodes greedily: its prompt and generation tokens per second are
printed beside cyclefix's own.

    .venv/bin/python benchmarks/speed.py --limit 20
    .venv/bin/python benchmarks/speed.py --no-bugs --only leap_year --models qwen2.5-coder-0.5b
    .venv/bin/python benchmarks/speed.py --limit 20 --threads 2 --raw

Test runs skip installed pytest plugins (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1), as fix_rate.py's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fix_rate import _pinned, bug_projects, cyclefix_command, read_records

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ("qwen2.5-coder-1.5b",)
# The command's phases as `cyclefix fix --json` reports them ("phases"), in the order they
# happen, with the table's name for each; "start" is the process start before the JSON's clock.
PHASES = (
    ("start", "process start"),
    ("model_load_s", "model load"),
    ("initial_tests_s", "initial tests"),
    ("localize_s", "localize"),
    ("score_s", "score copies"),
    ("prompt_eval_s", "prompt eval"),
    ("generate_s", "generate"),
    ("tests_s", "tests"),
    ("overhead_s", "overhead"),
)
# The candidates' test runs split where the runner can tell (an attempt's "tests_phases").
TEST_PHASES = (
    ("startup_s", "tests: start"),
    ("collect_s", "tests: collect"),
    ("tests_s", "tests: run"),
)


@dataclass(frozen=True)
class SpeedRun:
    model: str
    bug_set: str
    bug: str
    status: str  # cyclefix fix's status, or "timeout" / "crashed"
    wall_s: float  # the whole process, start-up included
    # Phase name (PHASES) -> seconds; "start" is wall_s less the JSON's seconds.
    phases: dict[str, float] = field(default_factory=dict)
    # TEST_PHASES name -> seconds over the attempts' test runs.
    test_phases: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0  # evaluated, i.e. less those reused from the KV cache
    completion_tokens: int = 0
    # Of those, drawn from a scored copy without evaluating them (models.replay).
    completion_tokens_replayed: int = 0
    attempts: int = 0
    error: str = ""


def speed_run_from_json(
    model: str, bug_set: str, bug: str, data: dict[str, Any], wall: float
) -> SpeedRun:
    attempts = [a for r in data.get("rounds", []) for a in r.get("attempts", [])]
    phases = {name: float(v) for name, v in dict(data.get("phases", {})).items()}
    phases["start"] = max(0.0, wall - float(data.get("seconds", 0.0)))
    return SpeedRun(
        model=model,
        bug_set=bug_set,
        bug=bug,
        status=str(data.get("status", "unknown")),
        wall_s=round(wall, 3),
        phases={name: round(phases.get(name, 0.0), 3) for name, _ in PHASES},
        test_phases={
            name: round(
                sum(float((a.get("tests_phases") or {}).get(name, 0.0)) for a in attempts), 3
            )
            for name, _ in TEST_PHASES
        },
        prompt_tokens=sum(
            int(a.get("prompt_tokens", 0)) - int(a.get("prompt_tokens_cached", 0)) for a in attempts
        ),
        completion_tokens=sum(int(a.get("completion_tokens", 0)) for a in attempts),
        completion_tokens_replayed=sum(
            int(a.get("completion_tokens_replayed", 0)) for a in attempts
        ),
        attempts=len(attempts),
        error=str(data.get("error") or ""),
    )


def prompts_file(out: Path, model: str, bug_set: str, bug: str) -> Path:
    return out.with_suffix(".prompts") / model / bug_set / f"{bug}.jsonl"


def run_fix(model: str, bug_set: str, project: Path, args: argparse.Namespace) -> SpeedRun:
    fix_args = ["fix", str(project), "--json", "--model", model]
    fix_args += ["--rounds", str(args.rounds), "--budget", str(args.budget)]
    fix_args += ["--seed", str(args.seed)]
    cmd = [*cyclefix_command(), *fix_args]
    if args.raw:
        # This script runs the command in its own process, recording each call's prompt.
        record = prompts_file(args.out, model, bug_set, project.name)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, RECORD_FLAG, str(record), "--", *fix_args]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env=env,
            timeout=args.budget + 300,
            preexec_fn=_pinned(args.threads),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return SpeedRun(model, bug_set, project.name, "timeout", time.monotonic() - started)
    wall = time.monotonic() - started
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        error = f"exit {proc.returncode}: {tail[0][:200]}"
        return SpeedRun(model, bug_set, project.name, "crashed", wall, error=error)
    return speed_run_from_json(model, bug_set, project.name, data, wall)


RECORD_FLAG = "--record-prompts"


def record_prompts_and_fix(record: Path, cli_args: list[str]) -> int:
    """`cyclefix CLI_ARGS` in this process, appending each generation's messages, answer
    opening and token budget to `record` (one JSON line per call)."""
    from cyclefix.cli import main as cyclefix_main
    from cyclefix.models.backend import ChatMessage, GenerationOptions, GenerationResult
    from cyclefix.models.llama import LlamaCppBackend

    generate = LlamaCppBackend.generate

    def recorded(
        self: LlamaCppBackend,
        messages: list[ChatMessage],
        options: GenerationOptions,
        **kwargs: Any,
    ) -> GenerationResult:
        line = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "answer_prefix": options.answer_prefix,
            "max_tokens": options.max_tokens,
        }
        with record.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        return generate(self, messages, options, **kwargs)

    LlamaCppBackend.generate = recorded  # type: ignore[method-assign,assignment]
    return cyclefix_main(cli_args)


@dataclass(frozen=True)
class RawRow:
    model: str
    threads: int
    prompt_tps: float
    generate_tps: float
    prompts: int


def raw_rows(runs: list[SpeedRun], args: argparse.Namespace) -> list[RawRow]:
    """Plain llama.cpp on the prompts each model's runs recorded (benchmarks/llama_raw.py)."""
    from llama_raw import RawPrompt, raw_llama_speed, render_messages

    from cyclefix.models.llama_runtime import default_thread_count
    from cyclefix.models.load import open_path_or_name

    if args.threads is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
    threads = default_thread_count()  # as cyclefix's own calls choose them
    rows: list[RawRow] = []
    for model in dict.fromkeys(r.model for r in runs):
        path = open_path_or_name(model)
        prompts: list[RawPrompt] = []
        for r in runs:
            record = prompts_file(args.out, r.model, r.bug_set, r.bug)
            if r.model != model or not record.exists():
                continue
            for line in record.read_text(encoding="utf-8").splitlines():
                data = json.loads(line)
                text = render_messages(path, data["messages"]) + data["answer_prefix"]
                prompts.append(RawPrompt(text, data["max_tokens"]))
        if prompts:
            speed = raw_llama_speed(path, prompts, n_threads=threads)
            rows.append(
                RawRow(
                    model,
                    threads,
                    speed.prompt_tokens_per_second,
                    speed.generate_tokens_per_second,
                    len(prompts),
                )
            )
    return rows


def raw_table(runs: list[SpeedRun], rows: list[RawRow]) -> str:
    """cyclefix's own calls beside plain llama.cpp on the same prompts, tokens per second."""
    head = ["model", "threads", "prompts", "raw prompt tok/s", "raw gen tok/s"]
    head += ["cyclefix prompt tok/s", "cyclefix gen tok/s (evaluated)", "gen ratio"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        sel = [r for r in runs if r.model == row.model and r.phases]
        prompt_s = sum(r.phases["prompt_eval_s"] for r in sel)
        generate_s = sum(r.phases["generate_s"] for r in sel)
        # Steps drawn from a scored copy cost no evaluation: only the others are compared.
        tokens = sum(r.completion_tokens - r.completion_tokens_replayed for r in sel)
        own_gen = tokens / generate_s if generate_s > 0 else 0.0
        cells = [row.model, str(row.threads), str(row.prompts)]
        cells += [f"{row.prompt_tps:.1f}", f"{row.generate_tps:.1f}"]
        cells.append(_throughput(sum(r.prompt_tokens for r in sel), prompt_s))
        cells.append(f"{own_gen:.1f}" if own_gen else "-")
        cells.append(f"{own_gen / row.generate_tps:.2f}" if own_gen and row.generate_tps else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _groups(runs: list[SpeedRun]) -> dict[tuple[str, str], list[SpeedRun]]:
    """Runs that produced a JSON result, by (model, set), then each model's over all sets."""
    groups: dict[tuple[str, str], list[SpeedRun]] = {}
    for r in runs:
        if r.phases:
            groups.setdefault((r.model, r.bug_set), []).append(r)
            groups.setdefault((r.model, "all"), []).append(r)
    if len({bug_set for _, bug_set in groups}) == 2:
        # One set: its "all" rows say the same again.
        groups = {key: sel for key, sel in groups.items() if key[1] != "all"}
    return groups


def _throughput(tokens: int, seconds: float) -> str:
    return f"{tokens / seconds:.1f}" if seconds > 0 else "-"


def table(runs: list[SpeedRun]) -> str:
    """Median seconds per phase and of the whole command, per model and set, with the model's
    prompt and generation tokens per second over all its calls."""
    head = ["model", "set", "runs", "fixed", *(title for _, title in PHASES), "total"]
    head += [title for _, title in TEST_PHASES]
    head += ["prompt tok/s", "gen tok/s"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (model, bug_set), sel in _groups(runs).items():
        fixed = sum(1 for r in sel if r.status == "fixed")
        medians = [statistics.median(r.phases[name] for r in sel) for name, _ in PHASES]
        prompt_s = sum(r.phases["prompt_eval_s"] for r in sel)
        generate_s = sum(r.phases["generate_s"] for r in sel)
        cells = [model, bug_set, str(len(sel)), str(fixed)]
        cells += [f"{m:.2f}" for m in medians]
        cells.append(f"{statistics.median(r.wall_s for r in sel):.2f}")
        cells += [
            f"{statistics.median(r.test_phases.get(name, 0.0) for r in sel):.2f}"
            for name, _ in TEST_PHASES
        ]
        cells.append(_throughput(sum(r.prompt_tokens for r in sel), prompt_s))
        cells.append(_throughput(sum(r.completion_tokens for r in sel), generate_s))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def bar_chart(runs: list[SpeedRun], png: Path) -> None:
    """One stacked bar per (model, set): the mean seconds of each phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _groups(runs)
    labels = [f"{model}\n{bug_set}" for model, bug_set in groups]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(labels) + 2), 4.5))
    bottoms = [0.0] * len(labels)
    for name, title in PHASES:
        means = [statistics.fmean(r.phases[name] for r in sel) for sel in groups.values()]
        ax.bar(labels, means, bottom=bottoms, label=title)
        bottoms = [b + m for b, m in zip(bottoms, means, strict=True)]
    ax.set_ylabel("seconds (mean per command)")
    ax.set_title("cyclefix fix: where the time goes")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)


def bug_sets(args: argparse.Namespace) -> dict[str, list[Path]]:
    sets: dict[str, list[Path]] = {}
    if not args.no_examples:
        sets["examples"] = bug_projects(args.examples)
    if not args.no_bugs:
        from cyclefix.bench.bugs import build_mbpp_bugs

        folder = args.bugs_dir or REPO / "bench-out" / f"mbpp-bugs-seed{args.seed}-{args.limit}"
        print(f"Building {args.limit} MBPP bugs in {folder} ...", file=sys.stderr, flush=True)
        built = build_mbpp_bugs(folder, limit=args.limit, seed=args.seed, data_dir=args.data)
        sets["mbpp"] = [folder / b.name for b in built]
    if args.only:
        sets = {k: [p for p in v if p.name in args.only] for k, v in sets.items()}
    return {k: v for k, v in sets.items() if v}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--limit", type=int, default=20, help="MBPP bugs (default 20)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--budget", type=float, default=300.0, help="seconds per fix (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="mutation and sampling seed")
    parser.add_argument("--examples", type=Path, default=REPO / "examples")
    parser.add_argument("--no-examples", action="store_true", help="only the MBPP bugs")
    parser.add_argument("--no-bugs", action="store_true", help="only the examples")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these projects")
    parser.add_argument("--bugs-dir", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=None, help="folder holding mbpp.jsonl")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "speed.jsonl")
    parser.add_argument("--png", type=Path, default=None, help="default: OUT with .png")
    parser.add_argument(
        "--threads", type=int, default=None, help="pin each `cyclefix fix` to this many CPUs"
    )
    parser.add_argument(
        "--raw", action="store_true", help="plain llama.cpp on the same prompts beside"
    )
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [RECORD_FLAG]:
        return record_prompts_and_fix(Path(argv[1]), argv[3:])
    args = parser.parse_args(argv)

    sets = bug_sets(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = read_records(args.out, SpeedRun)
    have = {(r.model, r.bug_set, r.bug) for r in done}
    runs = list(done)
    todo = [
        (model, bug_set, project)
        for model in args.models
        for bug_set, projects in sets.items()
        for project in projects
        if (model, bug_set, project.name) not in have
    ]
    try:
        with args.out.open("a", encoding="utf-8") as fh:
            for count, (model, bug_set, project) in enumerate(todo, 1):
                result = run_fix(model, bug_set, project, args)
                if result.status == "cancelled":
                    raise KeyboardInterrupt
                runs.append(result)
                fh.write(json.dumps(asdict(result)) + "\n")
                fh.flush()
                print(
                    f"[{count}/{len(todo)}] {model} {bug_set}/{project.name}: "
                    f"{result.status} ({result.wall_s:.1f} s) {result.error}",
                    file=sys.stderr,
                    flush=True,
                )
    except KeyboardInterrupt:
        print("Interrupted; run the same command again to resume.", file=sys.stderr)
    names = {k: {p.name for p in v} for k, v in sets.items()}
    selected = [
        r
        for r in runs
        if r.model in args.models and r.bug_set in sets and r.bug in names[r.bug_set]
    ]
    print(table(selected))
    if args.raw:
        print()
        print(raw_table(selected, raw_rows(selected, args)))
    png = args.png or args.out.with_suffix(".png")
    bar_chart(selected, png)
    print(f"chart: {png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
