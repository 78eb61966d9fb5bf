"""benchmarks/fix_rate.py end to end through the real `cyclefix fix --json`, scripted model."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "bench"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fix_rate", REPO / "benchmarks" / "fix_rate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up by name while the class is being made.
    sys.modules["fix_rate"] = module
    spec.loader.exec_module(module)
    return module


def test_fix_rate_runs_the_cli_per_bug_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fix_rate = _load_script()
    replies = tmp_path / "replies.json"
    # Every `cyclefix fix` starts a fresh scripted model: this answer fixes only off_by_one.
    answer = "```python\ndef total(n):\n    return sum(range(n + 1))\n```\n"
    replies.write_text(json.dumps([answer]))
    out = tmp_path / "runs.jsonl"
    argv = ["--models", f"scripted:{replies}", "--limit", "1", "--rounds", "1",
            "--examples", str(FIXTURES / "folder"), "--bugs-dir", str(tmp_path / "bugs"),
            "--data", str(FIXTURES / "mbpp"), "--out", str(out)]  # fmt: skip
    assert fix_rate.main(argv) == 0
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    status = {(r["bug_set"], r["bug"]): r["status"] for r in runs}
    assert status[("examples", "already_ok")] == "already_passing"
    assert status[("examples", "off_by_one")] == "fixed"
    assert status[("examples", "overfit")] == "not_fixed"
    assert [s for (kind, _), s in status.items() if kind == "mbpp"] == ["not_fixed"]
    assert all(r["copies_reaching_user"] == 0 for r in runs)
    table = capsys.readouterr().out
    assert f"| scripted:{replies} | examples | 1/2 | 50 |" in table
    assert f"| scripted:{replies} | all | 1/3 | 33 |" in table
    # Everything is on file: a second run starts no `cyclefix fix` and prints the same table.
    assert fix_rate.main(argv) == 0
    assert out.read_text().count("\n") == len(runs)
    assert capsys.readouterr().out == table
