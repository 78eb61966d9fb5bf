"""AST mutants and the MBPP bug builder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cyclefix.bench.bugs import INDEX_FILE, build_mbpp_bugs
from cyclefix.bench.folder import load_folder
from cyclefix.bench.mutate import KINDS, mutants, replace_node
from cyclefix.errors import CyclefixError

FIXTURES = Path(__file__).parent / "fixtures" / "bench"

SOURCE = '''\
def clip_sum(xs, limit):
    """Sum xs, but never above limit."""  # keep me
    total = 0
    for i in range(len(xs)):
        total += xs[i]
    if total > limit and limit >= 0:
        return limit
    return total


def scaled(c, a, b):
    return c - a * b


def ok(x):
    return x == 1
'''


def _run(source: str, name: str, *args: Any) -> Any:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    return namespace[name](*args)


def test_every_kind_is_produced_and_each_mutant_changes_one_spot() -> None:
    found = mutants(SOURCE)
    assert {m.kind for m in found} == set(KINDS)
    for m in found:
        assert m.source != SOURCE
        # The rest of the file keeps its text, comments included.
        assert "# keep me" in m.source
        changed = [
            a for a, b in zip(SOURCE.splitlines(), m.source.splitlines(), strict=True) if a != b
        ]
        assert len(changed) == 1, m.description


def test_mutants_behave_as_described() -> None:
    by_description = {m.description: m.source for m in mutants(SOURCE)}
    flipped = by_description["line 6: `>` became `>=`"]
    assert _run(flipped, "clip_sum", [2, 3], 5) == 5 and _run(SOURCE, "clip_sum", [2, 3], 5) == 5
    shorter = by_description["line 4: range stop `len(xs)` became `len(xs) - 1`"]
    assert _run(shorter, "clip_sum", [1, 2, 3], 100) == 3
    # Precedence survives: `c - a * b` with `*` swapped is `c - (a + b)`, not `c - a + b`.
    swapped = by_description["line 12: `*` became `+`"]
    assert _run(swapped, "scaled", 10, 2, 3) == 5
    negated = by_description["line 16: returns the negation"]
    assert _run(negated, "ok", 1) is False


def test_replace_node_handles_non_ascii_columns() -> None:
    import ast

    source = 'x = "é" + y\n'
    tree = ast.parse(source)
    node = tree.body[0].value  # type: ignore[attr-defined]
    assert replace_node(source, node.right, "z") == 'x = "é" + z\n'


def test_unparsable_source_has_no_mutants() -> None:
    assert mutants("def f(:\n") == []


def test_build_mbpp_bugs_keeps_only_mutants_the_tests_catch(tmp_path: Path) -> None:
    out = tmp_path / "bugs"
    bugs = build_mbpp_bugs(out, limit=3, seed=1, data_dir=FIXTURES / "mbpp")
    assert len(bugs) == 3
    assert {b.kind for b in bugs} <= set(KINDS)
    for bug in bugs:
        assert 0 < bug.failing <= bug.total
        project = out / bug.name
        assert (project / "solution.py").is_file() and (
            project / "tests" / "test_solution.py"
        ).is_file()
        # What was mutated stays outside the project the model's loop reads.
        assert bug.description not in (project / "solution.py").read_text()
    index = json.loads((out / INDEX_FILE).read_text())
    assert [b["name"] for b in index["bugs"]] == [b.name for b in bugs]
    # The built folder is a folder suite, and building again with the same settings reuses it.
    assert [t.task_id for t in load_folder(out)] == sorted(b.name for b in bugs)
    assert build_mbpp_bugs(out, limit=3, seed=1, data_dir=FIXTURES / "mbpp") == bugs
    with pytest.raises(CyclefixError):
        build_mbpp_bugs(out, limit=2, seed=1, data_dir=FIXTURES / "mbpp")
