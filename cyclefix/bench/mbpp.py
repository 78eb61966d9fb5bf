"""MBPP (Austin et al. 2021) and MBPP+ (EvalPlus) as bench tasks.

MBPP: the test split (task ids 11-510); the model sees the description and the first assert
(the visible test); all of the task's asserts score. MBPP+: the same problems with EvalPlus's
corrected descriptions; the prompt's assert is visible; the reference solution's outputs on the
base and the extra generated inputs score.
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cyclefix.bench import mbpp_oracle
from cyclefix.bench.examples import confirmed_asserts
from cyclefix.bench.tasks import HIDDEN_TEST_FILE, BenchTask, TaskProtocol
from cyclefix.errors import CyclefixError

MBPP_FILE = "mbpp.jsonl"
MBPP_PLUS_FILE = "MbppPlus-v0.1.0.jsonl"
TEST_SPLIT = range(11, 511)
ORACLE_FILE = "_mbpp_oracle.py"
REFERENCE_FILE = "_reference.py"
INPUTS_FILE = "mbpp_inputs.json"


def find_data_dir(explicit: Path | None = None) -> Path:
    """The folder holding mbpp.jsonl: --data, $CYCLEFIX_MBPP_DIR, or ../shared/data/mbpp."""
    if explicit is not None:
        candidates = [explicit]
    else:
        env = os.environ.get("CYCLEFIX_MBPP_DIR")
        repo = Path(__file__).resolve().parents[2]
        candidates = [Path(env)] if env else []
        candidates += [Path.cwd() / "../shared/data/mbpp", repo / "../shared/data/mbpp"]
    for cand in candidates:
        if (cand / MBPP_FILE).is_file():
            return cand.resolve()
    where = ", ".join(str(c) for c in candidates)
    raise CyclefixError(
        f"MBPP data not found (looked in {where}); pass --data DIR, a folder holding {MBPP_FILE}"
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CyclefixError(f"cannot read {path}: {exc}") from exc


def defined_functions(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def called_names(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names = [
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    ]
    return list(dict.fromkeys(names))


def entry_point(reference: str, asserts: Sequence[str]) -> str:
    """The reference's function that the asserts call (MBPP names it only in its tests)."""
    defined = set(defined_functions(reference))
    for line in asserts:
        for name in called_names(line):
            if name in defined:
                return name
    raise CyclefixError("no function of the reference solution is called by the tests")


def signature_of(reference: str, name: str) -> str:
    tree = ast.parse(reference)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return f"def {name}({ast.unparse(node.args)}):"
    return f"def {name}(*args):"


def mbpp_prompt(description: str, visible: Sequence[str], entry: str) -> str:
    """The request as EvalPlus words MBPP+: the description and the visible asserts, quoted.

    The function is named outright only when no assert names it.
    """
    lines = [description.strip(), *visible]
    if not any(entry in line for line in visible):
        lines.append(f"Write the Python function `{entry}`.")
    body = "\n".join(lines)
    return f'"""\n{body}\n"""\n'


def tests_source(title: str, setup: str, asserts: Sequence[str], prefix: str) -> str:
    """A pytest module: `setup`, then one `test_<prefix>_<n>` function per assert."""
    parts = [
        f'"""{title}"""',
        "",
        "import math  # noqa: F401",
        "",
        "from solution import *  # noqa: F403",
    ]
    if setup.strip():
        parts += ["", setup.strip()]
    for i, line in enumerate(asserts, 1):
        parts += ["", "", f"def test_{prefix}_{i}():", f"    {line.strip()}"]
    return "\n".join(parts) + "\n"


def visible_module(setup: str, asserts: Sequence[str]) -> str:
    return tests_source(
        "The test shown with the task: the only one the model may learn from.",
        setup,
        asserts,
        "visible",
    )


def load_mbpp(data_dir: Path | None = None) -> list[BenchTask]:
    """The MBPP test split: first assert visible, every assert scored."""
    rows = read_jsonl(find_data_dir(data_dir) / MBPP_FILE)
    tasks: list[BenchTask] = []
    for row in rows:
        number = int(row["task_id"])
        if number not in TEST_SPLIT:
            continue
        code = row["code"].replace("\r\n", "\n")
        asserts = [a.strip() for a in row["test_list"]]
        setup = row.get("test_setup_code", "") or ""
        entry = entry_point(code, asserts)
        tasks.append(
            BenchTask(
                task_id=f"MBPP/{number}",
                kind="generate",
                prompt=mbpp_prompt(row["text"], asserts[:1], entry),
                entry_point=entry,
                description=row["text"].strip(),
                fallback_signature=signature_of(code, entry),
                visible_tests=visible_module(setup, asserts[:1]),
                hidden_files={
                    HIDDEN_TEST_FILE: tests_source(
                        "MBPP's asserts for this task: scored, never shown to the model.",
                        setup,
                        asserts,
                        "assert",
                    )
                },
                hidden_tests=(HIDDEN_TEST_FILE,),
                hidden_timeout=10.0,
            )
        )
    return tasks


def _plus_description(prompt: str) -> tuple[str, list[str]]:
    """MBPP+'s prompt is a docstring: description lines, then the visible assert(s)."""
    text = prompt.strip()
    for quote in ('"""', "'''"):
        if text.startswith(quote) and text.endswith(quote):
            text = text[3:-3]
    description: list[str] = []
    asserts: list[str] = []
    for line in text.strip().splitlines():
        (asserts if line.strip().startswith("assert ") else description).append(line.strip())
    return "\n".join(description).strip(), asserts


_PLUS_HIDDEN_TEST = """\
\"\"\"MBPP+ scoring: the reference's outputs on EvalPlus inputs; never shown to the model.\"\"\"

import json
from pathlib import Path

import _mbpp_oracle
import _reference
from solution import {entry}

_DATA = json.loads((Path(__file__).parent / "{inputs}").read_text(encoding="utf-8"))


def _check(inputs):
    _mbpp_oracle.check_inputs(
        _DATA["task"], _DATA["entry"], {entry}, _reference.{entry}, inputs, _DATA["atol"]
    )


def test_base_inputs():
    _check(_DATA["base"])


def test_plus_inputs():
    _check(_DATA["plus"])
"""


def _plus_hidden_test(entry: str) -> str:
    return _PLUS_HIDDEN_TEST.format(entry=entry, inputs=INPUTS_FILE)


def plus_task(
    row: dict[str, Any],
    visible: Sequence[str],
    oracle_source: str,
    *,
    task_id: str,
    prompt: str,
    protocol: TaskProtocol = "cycle",
) -> BenchTask:
    """An MBPP+ row as a task: `visible` asserts give feedback; base and plus inputs score."""
    number = int(str(row["task_id"]).split("/")[-1])
    entry = row["entry_point"]
    reference = row["canonical_solution"].strip() + "\n"
    inputs = {
        "task": number,
        "entry": entry,
        "atol": float(row.get("atol", 0) or 0),
        "base": row["base_input"],
        "plus": row["plus_input"],
    }
    return BenchTask(
        task_id=task_id,
        kind="generate",
        prompt=prompt,
        entry_point=entry,
        description=_plus_description(row["prompt"])[0],
        fallback_signature=signature_of(reference, entry),
        visible_tests=visible_module("", visible) if visible else "",
        hidden_files={
            HIDDEN_TEST_FILE: _plus_hidden_test(entry),
            ORACLE_FILE: oracle_source,
            REFERENCE_FILE: reference,
            INPUTS_FILE: json.dumps(inputs),
        },
        hidden_tests=(HIDDEN_TEST_FILE,),
        hidden_timeout=60.0,
        protocol=protocol,
    )


def confirmed_prompt_asserts(rows: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Each row's prompt asserts that its reference passes (a few fail and would mislead)."""
    parsed = {row["task_id"]: _plus_description(row["prompt"])[1] for row in rows}
    confirmed = confirmed_asserts(
        {row["task_id"]: (row["canonical_solution"], parsed[row["task_id"]]) for row in rows}
    )
    return {tid: [parsed[tid][i] for i in confirmed[tid]] for tid in parsed}


def oracle_source() -> str:
    return Path(mbpp_oracle.__file__).read_text(encoding="utf-8")


def load_mbpp_plus(data_dir: Path | None = None) -> list[BenchTask]:
    """MBPP+ problems of the MBPP test split: prompt's assert visible, EvalPlus inputs scored."""
    rows = read_jsonl(find_data_dir(data_dir) / MBPP_PLUS_FILE)
    rows = [row for row in rows if int(str(row["task_id"]).split("/")[-1]) in TEST_SPLIT]
    visible = confirmed_prompt_asserts(rows)
    source = oracle_source()
    tasks: list[BenchTask] = []
    for row in rows:
        number = int(str(row["task_id"]).split("/")[-1])
        description, shown = _plus_description(row["prompt"])
        tasks.append(
            plus_task(
                row,
                visible[row["task_id"]],
                source,
                task_id=f"MBPP+/{number}",
                # The prompt keeps every assert MBPP+ shows; only confirmed ones give feedback.
                prompt=mbpp_prompt(description, shown, row["entry_point"]),
            )
        )
    return tasks
