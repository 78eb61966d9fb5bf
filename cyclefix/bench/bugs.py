"""A folder suite of realistic bugs: MBPP reference solutions with one mutation their tests catch.

Each bug is a small project: `solution.py` (the mutant, with the task's description as the
function's docstring), `tests/test_solution.py` (all of the task's asserts, one test each) and
a pyproject.toml. Only mutants that make at least one assert fail (or hang), and that still
import, are kept. `bugs.json` beside them records what was mutated, outside every project.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from cyclefix.bench.mbpp import (
    MBPP_FILE,
    TEST_SPLIT,
    entry_point,
    find_data_dir,
    read_jsonl,
    tests_source,
)
from cyclefix.bench.mutate import KINDS, Mutant, mutants
from cyclefix.bench.prompt import with_docstring
from cyclefix.errors import CyclefixError
from cyclefix.refine import RefineConfig, check

INDEX_FILE = "bugs.json"
PYPROJECT = """[project]
name = "{name}"
version = "0.1.0"

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
"""


@dataclass(frozen=True)
class BuiltBug:
    name: str  # folder name
    task_id: int
    kind: str
    description: str  # what the mutation did: never shown to the model
    failing: int  # asserts the mutant fails
    total: int


def write_bug_project(folder: Path, source: str, tests: str) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "tests").mkdir(parents=True)
    (folder / "solution.py").write_text(source, encoding="utf-8")
    (folder / "tests" / "test_solution.py").write_text(tests, encoding="utf-8")
    (folder / "pyproject.toml").write_text(
        PYPROJECT.format(name=folder.name.replace("_", "-")), encoding="utf-8"
    )


def _ordered(found: list[Mutant], preferred: str, rng: random.Random) -> list[Mutant]:
    rng.shuffle(found)
    return [m for m in found if m.kind == preferred] + [m for m in found if m.kind != preferred]


def build_mbpp_bugs(
    out: Path,
    *,
    limit: int = 100,
    seed: int = 0,
    data_dir: Path | None = None,
    tries_per_task: int = 4,
    per_test_timeout: float = 3.0,
) -> list[BuiltBug]:
    """Write up to `limit` bug projects into `out`, kinds taken in turn; returns what was kept.

    Reuses an earlier build in `out` made with the same seed and limit.
    """
    if limit < 1:
        raise CyclefixError("--limit must be at least 1")
    index = out / INDEX_FILE
    if index.exists():
        try:
            data = json.loads(index.read_text(encoding="utf-8"))
            if data.get("seed") == seed and data.get("limit") == limit:
                return [BuiltBug(**b) for b in data["bugs"]]
        except (OSError, json.JSONDecodeError, TypeError, KeyError):
            pass
        raise CyclefixError(f"{out} holds bugs built with other settings; use another --out")
    if out.exists() and any(out.iterdir()):
        raise CyclefixError(f"{out} exists and is not empty; use another --out")
    rows = read_jsonl(find_data_dir(data_dir) / MBPP_FILE)
    rows = [r for r in rows if int(r["task_id"]) in TEST_SPLIT]
    rng = random.Random(seed)
    rng.shuffle(rows)
    out.mkdir(parents=True, exist_ok=True)
    config = RefineConfig(per_test_timeout=per_test_timeout, run_timeout=60.0)
    built: list[BuiltBug] = []
    for row in rows:
        if len(built) >= limit:
            break
        number = int(row["task_id"])
        code = row["code"].replace("\r\n", "\n").rstrip() + "\n"
        asserts = [a.strip() for a in row["test_list"]]
        try:
            entry = entry_point(code, asserts)
        except CyclefixError:
            continue
        preferred = KINDS[len(built) % len(KINDS)]
        tests = tests_source(
            "The task's tests: correct, they must pass.",
            row.get("test_setup_code", "") or "",
            asserts,
            "case",
        )
        for mutant in _ordered(mutants(code), preferred, rng)[:tries_per_task]:
            name = f"mbpp_{number}_{mutant.kind}"
            folder = out / name
            write_bug_project(
                folder, with_docstring(mutant.source, entry, row["text"].strip()), tests
            )
            run = check(folder, config=config)
            failing = len(run.failures)
            if run.collection_errors or not run.tests or failing == 0:
                shutil.rmtree(folder)
                continue
            built.append(
                BuiltBug(name, number, mutant.kind, mutant.description, failing, len(run.tests))
            )
            break
    index.write_text(
        json.dumps({"seed": seed, "limit": limit, "bugs": [asdict(b) for b in built]}, indent=2)
        + "\n",
        encoding="utf-8",
    )
    return built
