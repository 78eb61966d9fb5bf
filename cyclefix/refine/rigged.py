"""Answers that would make the tests' comparisons meaningless, turned away before any test runs.

A value whose `__eq__` answers without looking at what it is compared with, or
`unittest.mock.ANY`, makes `assert f(x) == expected` pass whatever `f` computes: a faked
pass, not a fix. Only what the answer adds counts; the user's own code may have either.
"""

from __future__ import annotations

import ast
from collections import Counter

# Comparison methods an always-equal value overrides.
COMPARISONS = frozenset({"__eq__", "__ne__"})


def rigged_comparisons(before: str, after: str) -> list[str]:
    """What `after` adds over `before` that compares equal (or unequal) to anything."""
    old, new = _findings(before), _findings(after)
    return list((new - old).elements())


def _findings(source: str) -> Counter[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return Counter()
    found: Counter[str] = Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in COMPARISONS:
            if _ignores_operand(node.body, node.args):
                found[f"`{node.name}` answers the same whatever it is compared with"] += 1
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
            names = {t.id for t in node.targets if isinstance(t, ast.Name)}
            lam = node.value
            if names & COMPARISONS and _ignores_operand([ast.Return(lam.body)], lam.args):
                name = sorted(names & COMPARISONS)[0]
                found[f"`{name}` answers the same whatever it is compared with"] += 1
        elif _is_mock_any(node):
            found["`unittest.mock.ANY` equals anything"] += 1
    return found


def _ignores_operand(body: list[ast.stmt], args: ast.arguments) -> bool:
    """Whether the method only ever returns one constant, or returns True or False without
    reading its operand."""
    params = [*args.posonlyargs, *args.args]
    operand = params[1].arg if len(params) > 1 else (args.vararg.arg if args.vararg else None)
    returned = [n.value for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.Return)]
    if not returned or not all(
        isinstance(v, ast.Constant) and isinstance(v.value, bool) for v in returned
    ):
        return False
    if len({v.value for v in returned if isinstance(v, ast.Constant)}) == 1:
        return True
    read = {n.id for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    return operand is None or operand not in read


def _is_mock_any(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom) and node.module in ("unittest.mock", "mock"):
        return any(alias.name == "ANY" for alias in node.names)
    if isinstance(node, ast.Attribute) and node.attr == "ANY":
        base = node.value
        return (isinstance(base, ast.Name) and base.id == "mock") or (
            isinstance(base, ast.Attribute) and base.attr == "mock"
        )
    return False
