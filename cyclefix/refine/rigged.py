"""Answers that would make the tests' comparisons meaningless, turned away before any test runs.

A value whose `__eq__` answers without looking at what it is compared with, or
`unittest.mock.ANY`, makes `assert f(x) == expected` pass whatever `f` computes: a faked
pass, not a fix. Only what the answer adds counts; the user's own code may have either.
"""

from __future__ import annotations

import ast
from collections import Counter

# Comparison methods an always-equal (or always-ordered) value overrides, and the arithmetic
# a float check goes through (`abs(f(x) - expected) < 1e-9`).
COMPARISONS = frozenset(
    {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__sub__", "__rsub__", "__abs__"}
)


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
        for name in _rigged_methods(node):
            found[f"`{name}` answers without comparing the two values"] += 1
        if _is_mock_any(node):
            found["`unittest.mock.ANY` equals anything"] += 1
    return found


def _rigged_methods(node: ast.AST) -> list[str]:
    """The comparison methods `node` defines that compare nothing: `def`, `name = lambda`
    (annotated or not), or one set through a mapping (`type(...)`'s) or `setattr`, which a
    fix of a function never needs."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in COMPARISONS:
        return [node.name] if _compares_nothing(node.body, node.args) else []
    if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = sorted({t.id for t in targets if isinstance(t, ast.Name)} & COMPARISONS)
        value = node.value
        if names and isinstance(value, ast.Lambda):
            return names[:1] if _compares_nothing([ast.Return(value.body)], value.args) else []
        # Only the same method of another class (`__eq__ = tuple.__eq__`) compares as it says;
        # `float.__ne__`, `operator.is_not` or a partialmethod answer something else.
        borrowed = value.attr if isinstance(value, ast.Attribute) else None
        return names[:1] if names and borrowed not in names else []
    if isinstance(node, ast.Dict):
        return [
            key.value
            for key in node.keys
            if isinstance(key, ast.Constant) and key.value in COMPARISONS
        ]
    if isinstance(node, ast.Call) and any(k.arg in COMPARISONS for k in node.keywords):
        return [k.arg for k in node.keywords if k.arg is not None and k.arg in COMPARISONS]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) > 1:
        named = node.args[1]
        if node.func.id == "setattr" and isinstance(named, ast.Constant):
            return [named.value] if named.value in COMPARISONS else []
    return []


def _compares_nothing(body: list[ast.stmt], args: ast.arguments) -> bool:
    """Whether the method only ever returns one constant, returns constants without reading
    its operand, or computes its answer without reading both the value it belongs to and its
    operand (`return other == other`, `return self is self`)."""
    params = [*args.posonlyargs, *args.args]
    own = params[0].arg if params else None
    operand = params[1].arg if len(params) > 1 else (args.vararg.arg if args.vararg else None)
    returned = [n.value for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.Return)]
    if not returned:
        return False
    read = {n.id for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    constants = [v.value for v in returned if isinstance(v, ast.Constant)]
    if len(constants) == len(returned):
        return len(set(constants)) == 1 or operand is None or operand not in read
    if any(v is not None and _whatever_compared(v) for v in returned):
        return True
    # super() compares the value it belongs to; NotImplemented leaves it to identity.
    if "super" in read or all(
        isinstance(v, ast.Name) and v.id == "NotImplemented" for v in returned
    ):
        return False
    return own is None or own not in read or (operand is not None and operand not in read)


def _whatever_compared(value: ast.expr) -> bool:
    """An answer that holds whatever the values are: identity (`self is not other`: equal to
    all but itself; `(self, other) is not None`) or `... or True`."""
    for node in ast.walk(value):
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Is | ast.IsNot) for op in node.ops
        ):
            return True
        if (
            isinstance(node, ast.BoolOp)
            and isinstance(node.op, ast.Or)
            and any(isinstance(v, ast.Constant) and v.value for v in node.values)
        ):
            return True
    return False


def _is_mock_any(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom) and node.module in ("unittest.mock", "mock"):
        return any(alias.name == "ANY" for alias in node.names)
    if isinstance(node, ast.Attribute) and node.attr == "ANY":
        base = node.value
        return (isinstance(base, ast.Name) and base.id == "mock") or (
            isinstance(base, ast.Attribute) and base.attr == "mock"
        )
    return False
