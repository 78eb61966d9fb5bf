"""Compare the refinement rounds of two bench runs that share their round 0.

A prompt or loop change is measured by resuming a copy of a finished run that keeps only the
round-0 lines of the tasks that failed their visible tests: the new code then refines exactly
the same one-shot answers. This prints, over the tasks refined in both runs, the attempts,
copies, first-attempt copies (first attempt of each round), tasks fixed (visible tests) and
passing (hidden tests) after the last round, wall seconds and completion tokens; it reads an
interrupted run too (`cyclefix bench compare` gives the per-round figures and the tasks that differ).

    python benchmarks/refine_ab.py bench-out/mbpp-1.5b-before bench-out/mbpp-1.5b-after
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Rows = dict[tuple[str, int], dict[str, Any]]


@dataclass
class RefineStats:
    attempts: int = 0
    copies: int = 0
    first_copies: int = 0
    first_attempts: int = 0
    fixed_visible: int = 0
    passed_hidden: int = 0
    seconds: float = 0.0
    completion_tokens: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)


def load(folder: Path) -> Rows:
    rows: Rows = {}
    for line in (folder / "results.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows[(row["task_id"], row["round"])] = row
    return rows


def refine_stats(rows: Rows, tasks: list[str], last_round: int) -> RefineStats:
    stats = RefineStats()
    for task in tasks:
        for number in range(1, last_round + 1):
            row = rows[(task, number)]
            stats.seconds += row["seconds"]
            for index, attempt in enumerate(row["attempts"]):
                stats.attempts += 1
                stats.copies += attempt["copy"]
                stats.completion_tokens += attempt["completion_tokens"]
                stats.verdicts[attempt["verdict"]] += 1
                if index == 0:
                    stats.first_attempts += 1
                    stats.first_copies += attempt["copy"]
        last = rows[(task, last_round)]
        stats.fixed_visible += bool(last["visible_passed"])
        stats.passed_hidden += bool(last["passed"])
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="results folder A (the baseline)")
    parser.add_argument("b", type=Path, help="results folder B (the change)")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    a, b = load(args.a), load(args.b)
    refined = sorted(t for (t, r), row in a.items() if r == 0 and row["visible_passed"] is False)
    both = [t for t in refined if (t, args.rounds) in a and (t, args.rounds) in b]
    print(f"{len(both)} of {len(refined)} refined tasks finished in both runs")
    for name, rows in (("A", a), ("B", b)):
        s = refine_stats(rows, both, args.rounds)
        print(
            f"{name}: attempts {s.attempts}, copies {s.copies} "
            f"({s.copies / max(s.attempts, 1):.0%}), first-attempt copies "
            f"{s.first_copies}/{s.first_attempts}, fixed (visible) {s.fixed_visible}, "
            f"passing (hidden) {s.passed_hidden}, {s.seconds:.0f} s, "
            f"{s.completion_tokens} completion tokens"
        )
        print("   verdicts:", ", ".join(f"{k} {v}" for k, v in s.verdicts.most_common()))


if __name__ == "__main__":
    main()
