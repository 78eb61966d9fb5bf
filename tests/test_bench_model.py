"""`cyclefix bench` with the real llama.cpp runtime and the real 0.5B GGUF, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cyclefix.bench.records import RESULTS_FILE
from cyclefix.bench.summary import load_summary

pytestmark = pytest.mark.model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_folder_bench_with_the_real_model(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "cyclefix.cli", "bench", "folder", str(EXAMPLES),
               "--model", "qwen2.5-coder-0.5b", "--rounds", "1", "--limit", "1",
               "--out", str(out)]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in (out / RESULTS_FILE).read_text().splitlines()]
    # Round 0 is the buggy project itself: every task fails it; round 1 is the model's work.
    assert sorted((line["task_id"], line["round"]) for line in lines) == [
        (task, r) for task in sorted({line["task_id"] for line in lines}) for r in (0, 1)
    ]
    assert all(not line["passed"] for line in lines if line["round"] == 0)
    refined = [line for line in lines if line["round"] == 1]
    assert len(refined) == 1 and all(line["completion_tokens"] > 0 for line in refined)
    _, (summary,) = load_summary(out)
    assert summary.model == "qwen2.5-coder-0.5b" and summary.complete_runs == 1
    assert "| Round | pass@1 |" in (out / "report.md").read_text()
