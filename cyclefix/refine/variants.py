"""Variant calls for refine.agreement: the tests' own calls with one literal argument changed.

A test that checks `assert make_a_pile(3) == [3, 5, 7]` tells how the function is called and
with what kind of value; `make_a_pile(4)` and `make_a_pile(2)` are inputs no test checks, where
programs that only fit the example part ways. Only calls whose arguments are all literals are
used, and each variant changes one argument in a way that keeps its type and stays near the
example (a neighbouring number, a reordered or shortened sequence, a string cut or turned
around): far-fetched inputs leave the task's domain, where right programs differ too.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cyclefix.refine.agreement import Behaviour
from cyclefix.refine.apply import write_atomic
from cyclefix.refine.round import Round, base_files
from cyclefix.refine.verify import Verifier
from cyclefix.runner.results import TestRunResult

# Variant calls per module: enough to split programs, few enough for one quick run.
MAX_VARIANTS = 24
# A literal this long in repr is data, not an example to vary (and a long test line).
MAX_ARGUMENT_CHARS = 400
VARIANT_FILE = "test_cyclefix_variants.py"
_UNMATCHED = "_CYCLEFIX_UNMATCHED"


@dataclass(frozen=True)
class ExampleCall:
    """One call a test asserts on: the function's name and its literal arguments."""

    function: str
    args: tuple[object, ...]


def example_calls(test_source: str) -> list[ExampleCall]:
    """The `assert NAME(literals...) == ...` calls of a test module, in order, once each."""
    try:
        tree = ast.parse(test_source)
    except SyntaxError:
        return []
    calls: list[ExampleCall] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare)):
            continue
        left = node.test.left
        if not (isinstance(left, ast.Call) and isinstance(left.func, ast.Name)) or left.keywords:
            continue
        try:
            args = tuple(ast.literal_eval(a) for a in left.args)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if any(len(repr(a)) > MAX_ARGUMENT_CHARS for a in args):
            continue
        call = ExampleCall(left.func.id, args)
        if call not in calls:
            calls.append(call)
    return calls


def _variants(value: object) -> Iterator[object]:
    """Values near `value`, of its type and sign, nearest first; some repeat (the caller
    drops repeats)."""
    if isinstance(value, bool):
        yield not value
    elif isinstance(value, int):
        sign = 1 if value >= 0 else -1
        size = abs(value)
        for other in (size + 1, size - 1, size + 2, size * 2, size + size // 2, size // 2,
                      size * 3, size + 10, size - 2, size + 3):  # fmt: skip
            if other >= 0:
                yield sign * other
    elif isinstance(value, float):
        yield from (value + 0.5, value * 2, value - 1.25, value / 2, value + 3.0)
    elif isinstance(value, str):
        if len(value) > 1:
            yield from (value[::-1], value[1:], value[:-1], value + value[0], value.swapcase())
            yield from (value + value, value[::2], value[-1] + value[:-1], value[: len(value) // 2])
        elif value:
            yield from (value + value, value.swapcase())
    elif isinstance(value, (list, tuple)):
        kind = type(value)
        items = list(value)
        if len(items) > 1:
            yield from (
                kind(items[::-1]),
                kind(items[1:]),
                kind(items[:-1]),
                kind(items + items[:1]),
                kind(items[1:] + items[:1]),
                kind(items + items),
                kind(items[::2]),
            )
            with contextlib.suppress(TypeError):  # items that do not compare
                ordered = sorted(items)
                yield from (kind(ordered), kind(ordered[::-1]))
        for i, item in enumerate(items[:4]):
            for near in list(_variants(item))[:2]:
                yield kind([*items[:i], near, *items[i + 1 :]])


def variant_calls(calls: Sequence[ExampleCall], limit: int = MAX_VARIANTS) -> list[str]:
    """Up to `limit` calls, each an example call with one argument varied, taken round-robin
    across the examples so every example lends some; none repeats an example's call."""
    seen = {f"{c.function}{_arguments(c.args)}" for c in calls}
    per_example: list[list[str]] = []
    for call in calls:
        lines: list[str] = []
        for position, arg in enumerate(call.args):
            for near in _variants(arg):
                args = (*call.args[:position], near, *call.args[position + 1 :])
                line = f"{call.function}{_arguments(args)}"
                if line not in seen and len(line) <= 2 * MAX_ARGUMENT_CHARS:
                    seen.add(line)
                    lines.append(line)
        per_example.append(lines)
    variants: list[str] = []
    depth = 0
    while len(variants) < limit and any(depth < len(lines) for lines in per_example):
        variants.extend(lines[depth] for lines in per_example if depth < len(lines))
        depth += 1
    return variants[:limit]


def _arguments(args: tuple[object, ...]) -> str:
    return "(" + ", ".join(repr(a) for a in args) + ")"


def variant_module(test_source: str, calls: Sequence[str]) -> str:
    """A test module with the test module's own imports and setup (its top-level statements
    but its functions and classes) and one test per variant call, each failing on purpose: the
    runner records what the call returned."""
    tree = ast.parse(test_source)
    setup = [
        ast.get_source_segment(test_source, node) or ""
        for node in tree.body
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
    ]
    parts = ['"""Variant calls of cyclefix (refine.agreement); written and removed by it."""', ""]
    parts += [s for s in setup if s]
    parts += ["", f"{_UNMATCHED} = object()"]
    for i, call in enumerate(calls):
        parts += ["", "", f"def test_variant_{i}():", f"    assert {call} == {_UNMATCHED}"]
    return "\n".join(parts) + "\n"


def variant_ids(module_rel: str, count: int) -> tuple[str, ...]:
    return tuple(f"{module_rel}::test_variant_{i}" for i in range(count))


@dataclass(frozen=True)
class VariantTests:
    """The variant module of a fix's failing tests, and how to run a candidate on it."""

    rel: str  # where it is written in the scratch copy, beside the test module it varies
    text: str
    ids: tuple[str, ...]

    @classmethod
    def of(cls, root: Path, run: TestRunResult) -> VariantTests | None:
        """From the first module of `run`'s failing tests that asserts on literal calls."""
        for rel in dict.fromkeys(t.nodeid.split("::", 1)[0] for t in run.failures):
            path = PurePosixPath(rel)
            module = str(path.parent / VARIANT_FILE)
            # Written in the scratch copy only: never beside a test outside the project, nor
            # over a file of the project's own.
            if ".." in path.parts or path.is_absolute():
                continue
            if (root / module).exists():
                continue
            try:
                source = (root / rel).read_text(encoding="utf-8")
                calls = variant_calls(example_calls(source))
            except (OSError, UnicodeDecodeError, ValueError):
                continue
            if calls:
                return cls(module, variant_module(source, calls), variant_ids(module, len(calls)))
        return None

    def behaviour(self, verifier: Verifier, rnd: Round, files: dict[str, str]) -> Behaviour:
        """What the candidate of `files` returned on each variant call, run confined in the
        round's scratch copy like any candidate (the module is removed after)."""
        path = rnd.scratch / self.rel

        def run() -> TestRunResult:
            write_atomic(path, self.text)
            try:
                return verifier.run_tests(rnd.scratch, [self.rel], scratch=True)
            finally:
                path.unlink(missing_ok=True)

        return outputs(
            verifier.with_files(rnd.scratch, files, base_files(rnd, files), run), self.ids
        )


def outputs(run: TestRunResult, variant_ids: Sequence[str]) -> Behaviour:
    """Each variant test's actual value in `run` (the variant module fails every test on purpose;
    the runner's record of a failing `assert CALL == ...` carries the call's value)."""
    by_id = {t.nodeid: t for t in run.tests}
    outputs: list[str | None] = []
    for nodeid in variant_ids:
        case = by_id.get(nodeid)
        returned = case and case.outcome == "failed" and case.exc_type == "AssertionError"
        outputs.append(case.actual if case and returned else None)
    return tuple(outputs)
