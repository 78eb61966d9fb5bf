"""`cyclefix fix --apply` over a QuixBugs-layout checkout, judged by re-running its tests.

This is how an outside judge scores cyclefix on a bug set: for each program, in a fresh copy
of the checkout, run

    cyclefix fix python_programs/P.py --tests python_testcases/test_P.py --json --apply

then run that test file again with plain pytest, in a separate process with its own timeout,
and count the program fixed only if every test passes. The layout is QuixBugs's (Python part):
python_programs/, python_testcases/test_P.py, conftest.py, json_testcases/. One JSON line per
program goes to --out, cyclefix's own JSON beside it (OUT.d/P.json); a rerun skips programs
already there.

    .venv/bin/python benchmarks/quixbugs.py ~/QuixBugs --out bench-out/quixbugs.jsonl
    .venv/bin/python benchmarks/quixbugs.py ~/QuixBugs --programs gcd bitcount --model qwen2.5-coder-0.5b
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CYCLEFIX = Path(sys.executable).parent / "cyclefix"
# The fix rate is also told at these seconds of the whole command (issue 19).
WITHIN_SECONDS = (15, 30, 60, 120, 300)


@dataclass(frozen=True)
class ProgramRun:
    program: str
    model: str
    fixed: bool  # the independent pytest run passed
    cyclefix_status: str  # "status" of cyclefix's JSON, or why there is none
    cyclefix_exit: int | None
    command_seconds: float
    tests_passed: int
    tests_failed: int
    pytest_tail: str


def _counts(output: str) -> tuple[int, int]:
    """Passed and failed (errors and timeouts included) from pytest's last line."""
    last = output.strip().splitlines()[-1] if output.strip() else ""
    passed = failed = 0
    for part in last.replace("=", " ").split(","):
        words = part.split()
        if len(words) >= 2 and words[0].isdigit():
            if words[1] == "passed":
                passed = int(words[0])
            elif words[1] in ("failed", "error", "errors"):
                failed += int(words[0])
    return passed, failed


def run_program(
    checkout: Path, program: str, model: str, timeout: float, json_dir: Path
) -> ProgramRun:
    with tempfile.TemporaryDirectory(prefix="quixbugs-") as tmp:
        work = Path(tmp) / "QuixBugs"
        shutil.copytree(checkout, work, ignore=shutil.ignore_patterns(".git", "__pycache__"))
        source = f"python_programs/{program}.py"
        test = f"python_testcases/test_{program}.py"
        command = [str(CYCLEFIX), "fix", source, "--tests", test, "--json", "--apply"]
        command += ["--model", model]
        started = time.monotonic()
        status, code = "", None
        try:
            done = subprocess.run(
                command, cwd=work, capture_output=True, text=True, timeout=timeout, check=False
            )
            code = done.returncode
            (json_dir / f"{program}.json").write_text(done.stdout, encoding="utf-8")
            try:
                status = str(json.loads(done.stdout).get("status", "?"))
            except json.JSONDecodeError:
                status = "no JSON: " + (done.stderr.strip().splitlines() or ["?"])[-1][:200]
        except subprocess.TimeoutExpired:
            status = f"killed after {timeout:.0f} s"
        seconds = time.monotonic() - started
        try:
            check = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
                cwd=work, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            output, rc = check.stdout + check.stderr, check.returncode
        except subprocess.TimeoutExpired:
            output, rc = "independent pytest run hung (120 s)", -1
        passed, failed = _counts(output)
        return ProgramRun(
            program=program,
            model=model,
            fixed=rc == 0,
            cyclefix_status=status,
            cyclefix_exit=code,
            command_seconds=round(seconds, 1),
            tests_passed=passed,
            tests_failed=failed,
            pytest_tail=output.strip()[-300:],
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="QuixBugs-layout folder")
    parser.add_argument("--programs", nargs="+", help="program names (default: every test file)")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per fix command")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "quixbugs.jsonl")
    args = parser.parse_args()
    programs = args.programs or sorted(
        p.stem.removeprefix("test_") for p in (args.checkout / "python_testcases").glob("test_*.py")
    )
    done: set[tuple[str, str]] = set()
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            row = json.loads(line)
            done.add((row["program"], row["model"]))
    json_dir = args.out.with_suffix(".d")
    json_dir.mkdir(parents=True, exist_ok=True)
    runs: list[ProgramRun] = []
    for program in programs:
        if (program, args.model) in done:
            continue
        run = run_program(args.checkout, program, args.model, args.timeout, json_dir)
        runs.append(run)
        with args.out.open("a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(run)) + "\n")
        mark = "fixed" if run.fixed else "NOT fixed"
        print(f"{program}: {mark} ({run.cyclefix_status}, {run.command_seconds} s)", flush=True)
    rows = [json.loads(line) for line in args.out.read_text().splitlines()]
    rows = [r for r in rows if r["model"] == args.model and r["program"] in programs]
    fixed = [r for r in rows if r["fixed"]]
    median = statistics.median(r["command_seconds"] for r in fixed) if fixed else None
    print(f"{args.model}: {len(fixed)}/{len(rows)} fixed; median command seconds (fixed): {median}")
    within = ", ".join(
        f"{sum(r['command_seconds'] <= limit for r in fixed)} within {limit} s"
        for limit in WITHIN_SECONDS
    )
    print(f"fixed against time (whole command): {within}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
