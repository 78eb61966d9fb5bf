"""How often does `cyclefix fix` fix a real bug, how fast, and does a copy ever reach the user?

Runs the real CLI, `cyclefix fix PROJECT --json`, once per bug project and model, over
  examples/   the example projects (one bug each), and
  MBPP bugs   reference solutions of MBPP test-split tasks with one AST mutation their asserts
              catch (flipped comparison, off-by-one, swapped operator, and/or, wrong return),
              built by `cyclefix bench bugs` (cyclefix.bench.bugs),
and prints fixed/total, the median seconds to a verified fix, the copy rate, and tokens per
second for each model. Results go to a JSONL file, one line per (model, set, bug); a rerun skips
the lines already there, so an interrupted run resumes.

    .venv/bin/python benchmarks/fix_rate.py --limit 20
    .venv/bin/python benchmarks/fix_rate.py --models qwen2.5-coder-0.5b --limit 5 --threads 1

Test runs skip installed pytest plugins (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1; these projects need
none and plugin start-up dominates short runs); --pytest-plugins keeps them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")


@dataclass(frozen=True)
class BugRun:
    model: str
    bug_set: str
    bug: str
    status: str  # cyclefix fix's status, or "timeout" / "crashed"
    seconds: float  # the refine loop's own time (JSON "seconds")
    wall_seconds: float  # the whole command: start-up, model load, tests, loop
    rounds: int
    attempts: int
    copies: int
    # Attempts whose verdict was "passed" yet flagged a copy, or a fix with an empty diff:
    # a copy that reached the user. Must stay 0.
    copies_reaching_user: int
    completion_tokens: int
    generation_seconds: (
        float  # JSON attempt "generation_seconds" when present, else attempt seconds
    )
    error: str = ""


def bug_projects(folder: Path) -> list[Path]:
    """Sub-folders that are projects with tests (what `cyclefix bench folder` would run)."""
    from cyclefix.bench.folder import load_folder

    return [t.source_dir for t in load_folder(folder) if t.source_dir is not None]


def cyclefix_command() -> list[str]:
    found = shutil.which("cyclefix", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "cyclefix.cli"]


def _pinned(cpus: int | None) -> Any:
    """preexec_fn pinning the child to `cpus` CPUs; llama.cpp then uses that many threads."""
    if cpus is None or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))[:cpus]

    def pin() -> None:
        os.sched_setaffinity(0, allowed)

    return pin


def run_fix(model: str, bug_set: str, project: Path, args: argparse.Namespace) -> BugRun:
    cmd = [*cyclefix_command(), "fix", str(project), "--json", "--model", model]
    cmd += ["--rounds", str(args.rounds), "--budget", str(args.budget), "--seed", str(args.seed)]
    env = dict(os.environ)
    if not args.pytest_plugins:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=args.budget + 300,
            preexec_fn=_pinned(args.threads), check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        wall = time.monotonic() - started
        return BugRun(model, bug_set, project.name, "timeout", wall, wall, 0, 0, 0, 0, 0, 0.0)
    wall = time.monotonic() - started
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return BugRun(model, bug_set, project.name, "crashed", wall, wall, 0, 0, 0, 0, 0, 0.0,
                      error=f"exit {proc.returncode}: {tail[0][:200]}")  # fmt: skip
    return bug_run_from_json(model, bug_set, project.name, data, wall)


def bug_run_from_json(
    model: str, bug_set: str, bug: str, data: dict[str, Any], wall: float
) -> BugRun:
    attempts = [a for r in data.get("rounds", []) for a in r.get("attempts", [])]
    status = str(data.get("status", "unknown"))
    reached = sum(1 for a in attempts if a.get("verdict") == "passed" and a.get("copy"))
    if status == "fixed" and not str(data.get("diff", "")).strip():
        reached += 1
    return BugRun(
        model=model,
        bug_set=bug_set,
        bug=bug,
        status=status,
        seconds=float(data.get("seconds", 0.0)),
        wall_seconds=round(wall, 3),
        rounds=len(data.get("rounds", [])),
        attempts=len(attempts),
        copies=sum(1 for a in attempts if a.get("copy")),
        copies_reaching_user=reached,
        completion_tokens=sum(int(a.get("completion_tokens", 0)) for a in attempts),
        generation_seconds=sum(
            float(a.get("generation_seconds", a.get("seconds", 0.0))) for a in attempts
        ),
        error=str(data.get("error") or ""),
    )


R = TypeVar("R")


def read_records(path: Path, record: Callable[..., R]) -> list[R]:
    """The finished runs of a resumed benchmark: one JSON object per line, built by `record`."""
    if not path.exists():
        return []
    runs: list[R] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            runs.append(record(**json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            continue  # a torn last line: that bug is run again
    return runs


def table(runs: list[BugRun], models: list[str], sets: list[str]) -> str:
    head = ["model", "bugs", "fixed/total", "fix rate %", "median s to fix (loop)",
            "median s to fix (command)", "copy rate % (attempts)", "copies reaching user",
            "tok/s"]  # fmt: skip
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model in models:
        for bug_set in [*sets, "all"]:
            sel = [
                r for r in runs if r.model == model and (bug_set == "all" or r.bug_set == bug_set)
            ]
            scored = [r for r in sel if r.status != "already_passing"]
            if not scored:
                continue
            fixed = [r for r in scored if r.status == "fixed"]
            attempts = sum(r.attempts for r in scored)
            copies = sum(r.copies for r in scored)
            gen = sum(r.generation_seconds for r in scored)
            tokens = sum(r.completion_tokens for r in scored)
            cells = [
                model,
                bug_set,
                f"{len(fixed)}/{len(scored)}",
                f"{100 * len(fixed) / len(scored):.0f}",
                f"{statistics.median(r.seconds for r in fixed):.1f}" if fixed else "-",
                f"{statistics.median(r.wall_seconds for r in fixed):.1f}" if fixed else "-",
                f"{100 * copies / attempts:.1f}" if attempts else "-",
                str(sum(r.copies_reaching_user for r in scored)),
                f"{tokens / gen:.1f}" if gen else "-",
            ]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument(
        "--limit", type=int, default=30, help="MBPP bugs to build and run (default 30)"
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--budget", type=float, default=300.0, help="seconds per fix (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="mutation and sampling seed")
    parser.add_argument("--examples", type=Path, default=REPO / "examples")
    parser.add_argument("--no-examples", action="store_true", help="only the MBPP bugs")
    parser.add_argument(
        "--bugs-dir",
        type=Path,
        default=None,
        help="where the MBPP bug projects go (default bench-out/mbpp-bugs-seedS-K)",
    )
    parser.add_argument("--data", type=Path, default=None, help="folder holding mbpp.jsonl")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "fix_rate.jsonl")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="pin each `cyclefix fix` to this many CPUs (its llama.cpp threads)",
    )
    parser.add_argument("--pytest-plugins", action="store_true")
    args = parser.parse_args(argv)

    from cyclefix.bench.bugs import build_mbpp_bugs

    sets: dict[str, list[Path]] = {}
    if not args.no_examples:
        sets["examples"] = bug_projects(args.examples)
    bugs_dir = args.bugs_dir or REPO / "bench-out" / f"mbpp-bugs-seed{args.seed}-{args.limit}"
    print(f"Building {args.limit} MBPP bugs in {bugs_dir} ...", file=sys.stderr, flush=True)
    built = build_mbpp_bugs(bugs_dir, limit=args.limit, seed=args.seed, data_dir=args.data)
    sets["mbpp"] = [bugs_dir / b.name for b in built]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = read_records(args.out, BugRun)
    have = {(r.model, r.bug_set, r.bug) for r in done}
    runs = list(done)
    total = sum(len(v) for v in sets.values()) * len(args.models)
    count = len([r for r in done if r.model in args.models])
    try:
        with args.out.open("a", encoding="utf-8") as fh:
            for model in args.models:
                for bug_set, projects in sets.items():
                    for project in projects:
                        if (model, bug_set, project.name) in have:
                            continue
                        result = run_fix(model, bug_set, project, args)
                        if result.status == "cancelled":
                            raise KeyboardInterrupt
                        runs.append(result)
                        fh.write(json.dumps(asdict(result)) + "\n")
                        fh.flush()
                        count += 1
                        print(
                            f"[{count}/{total}] {model} {bug_set}/{project.name}: "
                            f"{result.status} ({result.wall_seconds:.0f} s, "
                            f"{result.attempts} attempts, {result.copies} copies) {result.error}",
                            file=sys.stderr,
                            flush=True,
                        )
    except KeyboardInterrupt:
        print("Interrupted; run the same command again to resume.", file=sys.stderr)
    selected = [r for r in runs if r.model in args.models and r.bug_set in sets
                and r.bug in {p.name for p in sets[r.bug_set]}]  # fmt: skip
    print(table(selected, list(args.models), list(sets)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
