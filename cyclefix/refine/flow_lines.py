"""Lines an error flows from: the statement that raised, the condition that led to it, and the
last assignments of the names those read.

A one-token bug is often one step upstream of where its error surfaced: idna's
`may_end_with_dot = next_trailing_dot and not final` made `if next_emitted > limit +
may_end_with_dot: raise IDNAError(...)` raise two lines later. The spectrum scores that
assignment low (every passing test runs it too), so token edits, which try the best-scored
lines, never reached it. These lines join them at the top.
"""

from __future__ import annotations

import ast
import textwrap

from cyclefix.refine.types import Target

# Lines one statement adds at most (a long call spread over many lines counts its first ones).
STATEMENT_LINES = 8
# Flow lines of one error at most.
MAX_FLOW_LINES = 12


def flow_lines(target: Target, line: int) -> tuple[int, ...]:
    """The lines (numbers in the file) the error raised at `line` of `target` flows from."""
    try:
        tree = ast.parse(textwrap.dedent(target.source))
    except SyntaxError:
        return ()
    offset = target.start_line - 1
    at = line - offset
    statements = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
    holding = [
        s for s in statements if s.lineno <= at <= (s.end_lineno or s.lineno) and not _is_block(s)
    ]
    if not holding:
        return ()
    raised = min(holding, key=lambda s: (s.end_lineno or s.lineno) - s.lineno)
    found: list[int] = []
    _add(found, raised)
    read = _names_read(raised)
    guard = _guarding_condition(statements, raised)
    if guard is not None:
        _add(found, guard)
        read |= _names_read(guard)
    for name in sorted(read):
        assigned = [
            s
            for s in statements
            if (s.end_lineno or s.lineno) < raised.lineno and name in _names_assigned(s)
        ]
        if assigned:
            _add(found, max(assigned, key=lambda s: s.lineno))
    return tuple(number + offset for number in found[:MAX_FLOW_LINES])


def _is_block(node: ast.stmt) -> bool:
    return isinstance(
        node,
        ast.FunctionDef
        | ast.AsyncFunctionDef
        | ast.ClassDef
        | ast.If
        | ast.For
        | ast.While
        | ast.With
        | ast.Try,
    )


def _add(found: list[int], node: ast.AST) -> None:
    first = getattr(node, "lineno", 0)
    last = min(getattr(node, "end_lineno", None) or first, first + STATEMENT_LINES - 1)
    found.extend(n for n in range(first, last + 1) if n not in found)


def _guarding_condition(statements: list[ast.stmt], node: ast.stmt) -> ast.expr | None:
    """The test of the `if` or `while` whose body holds `node` directly."""
    for parent in statements:
        if isinstance(parent, ast.If | ast.While) and (
            node in parent.body or node in parent.orelse
        ):
            return parent.test
    return None


def _names_read(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _names_assigned(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.Assign):
        targets: list[ast.expr] = list(node.targets)
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        targets = [node.target]
    else:
        return set()
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
