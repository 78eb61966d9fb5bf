"""What confinement costs one candidate run: the same tests on a scratch copy, with and without,
and what a warm worker saves.

Makes a small project (one module, one test file of 10 tests), copies it once, and runs its
tests on the copy as the refine loop runs a candidate's: `run_tests` with the product's
settings (plugins autoloaded, candidate limits), once with `confinement=` (Landlock, private
HOME and TMPDIR, import remapping), once without (namespaces, dropped capabilities and
signed results apply to both), and once confined but forked from a warm worker
(runner.warm), in turn run by run. Prints a markdown table of medians, beside the tests' own
time (pytest's durations of the 10 tests).

    .venv/bin/python benchmarks/sandbox_cost.py [--runs 20] [--no-autoload] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cyclefix.runner import Confinement, SandboxLimits, WarmWorkers, run_tests, scratch_copy
from cyclefix.runner.confine import landlock_abi
from cyclefix.runner.isolation import detect_isolation

MODULE = '''def clamp(value, low, high):
    """value, kept within [low, high]."""
    return max(low, min(value, high))
'''
TESTS = "from shapes import clamp\n\n" + "\n\n".join(
    f"def test_clamp_{i}():\n    assert clamp({i}, 2, 7) == {min(max(i, 2), 7)}" for i in range(10)
)


# The three ways of running, taken in turn.
LABELS = ("with", "without", "warm")


def make_project(root: Path) -> Path:
    root.mkdir()
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (root / "shapes.py").write_text(MODULE)
    (root / "test_shapes.py").write_text(TESTS + "\n")
    return root


def one_run(
    original: Path, copy: Path, *, confined: bool, autoload: bool, warm: WarmWorkers | None
) -> tuple[float, float]:
    """The run's seconds, and the tests' own (their setup, call and teardown)."""
    started = time.perf_counter()
    run = run_tests(
        copy,
        limits=SandboxLimits(max_hangs=2),
        autoload_plugins=autoload,
        confinement=Confinement(original) if confined else None,
        warm=warm,
    )
    seconds = time.perf_counter() - started
    if not run.all_passed or len(run.tests) != 10:
        raise SystemExit(f"the benchmark project failed ({confined=}): {run.output_tail[-2000:]}")
    return seconds, sum(t.duration for t in run.tests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-autoload", action="store_true", help="do not autoload plugins")
    parser.add_argument("--json", type=Path, help="also write the timings here")
    args = parser.parse_args()
    autoload = not args.no_autoload
    times: dict[str, list[float]] = {"without": [], "with": [], "warm": []}
    own: list[float] = []
    with tempfile.TemporaryDirectory(prefix="cyclefix-bench-") as folder, WarmWorkers() as warm:
        original = make_project(Path(folder) / "project")
        with scratch_copy(original) as copy:
            one_run(original, copy, confined=True, autoload=autoload, warm=None)  # warm caches
            one_run(original, copy, confined=True, autoload=autoload, warm=warm)  # its worker
            for index in range(args.runs):
                order = LABELS[index % 3 :] + LABELS[: index % 3]
                for label in order:
                    seconds, tests_own = one_run(
                        original,
                        copy,
                        confined=label != "without",
                        autoload=autoload,
                        warm=warm if label == "warm" else None,
                    )
                    times[label].append(seconds)
                    own.append(tests_own)
    without, confined = (statistics.median(times[k]) for k in ("without", "with"))
    isolation = detect_isolation()
    print(
        f"Landlock ABI {landlock_abi()}, network namespace {isolation.network_isolated}, "
        f"private /proc {isolation.private_proc}, plugins autoloaded {autoload}, "
        f"Python {sys.version.split()[0]}, {args.runs} runs each (alternating)\n"
    )
    print("| candidate run (10 tests) | median s | min s | max s |")
    print("| --- | --- | --- | --- |")
    rows = (
        ("without confinement", "without"),
        ("with confinement", "with"),
        ("with confinement, forked from a warm worker", "warm"),
    )
    for label, key in rows:
        values = times[key]
        print(
            f"| {label} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} |"
        )
    print(f"| cost | {confined - without:+.3f} ({(confined / without - 1) * 100:+.1f}%) | | |")
    print(
        f"| the tests' own time | {statistics.median(own):.3f} | {min(own):.3f} | {max(own):.3f} |"
    )
    if args.json:
        args.json.write_text(json.dumps(times, indent=2))


if __name__ == "__main__":
    main()
