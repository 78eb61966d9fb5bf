"""Small AST mutations that turn a correct function into a realistic buggy one.

Kinds: a flipped comparison (`<` for `<=`), an off-by-one in a range bound or an index, a
swapped arithmetic operator, `and` for `or`, and a wrong return value. Each mutant changes one
spot; the rest of the file keeps its original text. `mutants(..., more_kinds=True)` adds the
kinds of MORE_KINDS (a removed `not`, `is`/`in` negated, swapped call arguments, a wrong
integer constant), used by the real-project suite; the default set stays as it was, so the
suites and data seeded from it do not change.
"""

from __future__ import annotations

import ast
import copy
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

KINDS = ("comparison", "off_by_one", "arithmetic", "boolean", "wrong_return")
MORE_KINDS = ("removed_not", "negated_membership", "swapped_arguments", "wrong_constant")

_COMPARE_FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
}
_ARITH_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Add,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
}
_MEMBERSHIP_FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_SYMBOL = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.And: "and",
    ast.Or: "or",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


@dataclass(frozen=True)
class Mutant:
    kind: str
    line: int
    description: str
    source: str


def _char_col(line: str, byte_col: int) -> int:
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="replace"))


def replace_node(source: str, node: ast.expr | ast.stmt, text: str) -> str:
    """`source` with the exact text of `node` (an expression or statement) replaced by `text`."""
    lines = source.splitlines(keepends=True)
    start_line, end_line = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    start = _char_col(lines[start_line], node.col_offset)
    end = _char_col(lines[end_line], node.end_col_offset or 0)
    before = "".join(lines[:start_line]) + lines[start_line][:start]
    after = lines[end_line][end:] + "".join(lines[end_line + 1 :])
    return before + text + after


def _shift(expr: ast.expr, delta: int) -> ast.expr:
    """expr + delta, folding into a trailing integer constant (`n + 1` - 1 is `n`)."""
    if isinstance(expr, ast.Constant) and type(expr.value) is int:
        return ast.Constant(expr.value + delta)
    if (
        isinstance(expr, ast.BinOp)
        and isinstance(expr.op, ast.Add | ast.Sub)
        and isinstance(expr.right, ast.Constant)
        and type(expr.right.value) is int
    ):
        sign = 1 if isinstance(expr.op, ast.Add) else -1
        value = sign * expr.right.value + delta
        if value == 0:
            return copy.deepcopy(expr.left)
        op: ast.operator = ast.Add() if value > 0 else ast.Sub()
        return ast.BinOp(copy.deepcopy(expr.left), op, ast.Constant(abs(value)))
    return ast.BinOp(
        copy.deepcopy(expr), ast.Add() if delta > 0 else ast.Sub(), ast.Constant(abs(delta))
    )


def _text(node: ast.AST) -> str:
    return ast.unparse(ast.fix_missing_locations(node))


def _is_str(node: ast.expr) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(
        node, ast.JoinedStr
    )


def _sites(tree: ast.Module) -> Iterator[tuple[str, ast.expr | ast.stmt, ast.AST, str]]:
    """(kind, node to replace, its replacement, description) for every mutable spot."""
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                flipped = _COMPARE_FLIP.get(type(op))
                if flipped is None:
                    continue
                new = copy.deepcopy(node)
                new.ops[i] = flipped()
                yield (
                    "comparison",
                    node,
                    new,
                    f"line {line}: `{_SYMBOL[type(op)]}` became `{_SYMBOL[flipped]}`",
                )
        elif isinstance(node, ast.BoolOp):
            other: ast.boolop = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            new_bool = copy.deepcopy(node)
            new_bool.op = other
            yield (
                "boolean",
                node,
                new_bool,
                f"line {line}: `{_SYMBOL[type(node.op)]}` became `{_SYMBOL[type(other)]}`",
            )
        elif isinstance(node, ast.BinOp | ast.AugAssign):
            swapped = _ARITH_SWAP.get(type(node.op))
            if swapped is None:
                continue
            if (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Add)
                and (_is_str(node.left) or _is_str(node.right))
            ):
                continue  # string concatenation: `-` would be a type error, not a plausible bug
            new_arith = copy.deepcopy(node)
            new_arith.op = swapped()
            yield (
                "arithmetic",
                node,
                new_arith,
                f"line {line}: `{_SYMBOL[type(node.op)]}` became `{_SYMBOL[swapped]}`",
            )
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "range"
            and node.args
            and not node.keywords
        ):
            bound = 0 if len(node.args) == 1 else 1
            for index in sorted({0, bound}):
                for delta in (-1, 1):
                    new_call = copy.deepcopy(node)
                    new_call.args[index] = _shift(node.args[index], delta)
                    which = "stop" if index == bound else "start"
                    yield (
                        "off_by_one",
                        node,
                        new_call,
                        f"line {line}: range {which} `{_text(node.args[index])}` became "
                        f"`{_text(new_call.args[index])}`",
                    )
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            index_expr = node.slice
            if isinstance(index_expr, ast.Name | ast.BinOp) or (
                isinstance(index_expr, ast.Constant) and type(index_expr.value) is int
            ):
                for delta in (-1, 1):
                    new_sub = copy.deepcopy(node)
                    new_sub.slice = _shift(index_expr, delta)
                    yield (
                        "off_by_one",
                        node,
                        new_sub,
                        f"line {line}: index `{_text(index_expr)}` became `{_text(new_sub.slice)}`",
                    )
    yield from _return_sites(tree)


def _return_sites(tree: ast.Module) -> Iterator[tuple[str, ast.expr | ast.stmt, ast.AST, str]]:
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef):
            continue
        names = {a.arg for a in func.args.args}
        for sub in ast.walk(func):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
        for ret in ast.walk(func):
            if not isinstance(ret, ast.Return) or ret.value is None:
                continue
            value = ret.value
            line = ret.lineno
            if isinstance(value, ast.Constant) and isinstance(value.value, bool):
                new = ast.Return(ast.Constant(not value.value))
                yield (
                    "wrong_return",
                    ret,
                    new,
                    f"line {line}: returns {not value.value} instead of {value.value}",
                )
            elif isinstance(value, ast.Compare | ast.BoolOp) or (
                isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Not)
            ):
                negated = (
                    value.operand
                    if isinstance(value, ast.UnaryOp)
                    else ast.UnaryOp(ast.Not(), copy.deepcopy(value))
                )
                yield (
                    "wrong_return",
                    ret,
                    ast.Return(copy.deepcopy(negated)),
                    f"line {line}: returns the negation",
                )
            elif isinstance(value, ast.Name):
                for other in sorted(names - {value.id})[:2]:
                    yield (
                        "wrong_return",
                        ret,
                        ast.Return(ast.Name(other, ast.Load())),
                        f"line {line}: returns `{other}` instead of `{value.id}`",
                    )


def _more_sites(tree: ast.Module) -> Iterator[tuple[str, ast.expr | ast.stmt, ast.AST, str]]:
    """The MORE_KINDS spots: a removed `not`, a negated `is`/`in`, swapped arguments, a constant."""
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield (
                "removed_not",
                node,
                copy.deepcopy(node.operand),
                f"line {line}: `not` removed",
            )
        elif isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                flipped = _MEMBERSHIP_FLIP.get(type(op))
                if flipped is None:
                    continue
                new = copy.deepcopy(node)
                new.ops[i] = flipped()
                yield (
                    "negated_membership",
                    node,
                    new,
                    f"line {line}: `{_SYMBOL[type(op)]}` became `{_SYMBOL[flipped]}`",
                )
        elif (
            isinstance(node, ast.Call)
            and len(node.args) == 2
            and not any(isinstance(a, ast.Starred) for a in node.args)
            and _text(node.args[0]) != _text(node.args[1])
        ):
            new_call = copy.deepcopy(node)
            new_call.args = [new_call.args[1], new_call.args[0]]
            yield (
                "swapped_arguments",
                node,
                new_call,
                f"line {line}: arguments of `{_text(node.func)}` swapped",
            )
        elif (
            isinstance(node, ast.Constant)
            and type(node.value) is int
            and 0 <= node.value <= 100
            and line
        ):
            wrong = node.value + 1 if node.value in (0, 1) else node.value - 1
            yield (
                "wrong_constant",
                node,
                ast.Constant(wrong),
                f"line {line}: constant `{node.value}` became `{wrong}`",
            )


def mutants(source: str, *, more_kinds: bool = False) -> list[Mutant]:
    """Every single-spot mutant of `source` that still parses and differs from it.

    `more_kinds` adds the MORE_KINDS spots after the default ones.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: list[Mutant] = []
    seen: set[str] = set()
    sites = _sites(tree)
    if more_kinds:
        sites = itertools.chain(sites, _more_sites(tree))
    for kind, node, replacement, description in sites:
        try:
            text = _text(replacement)
            if isinstance(node, ast.expr) and not isinstance(node, ast.Name | ast.Constant):
                operator = isinstance(replacement, ast.BinOp | ast.BoolOp | ast.Compare)
                text = (
                    f"({text})"
                    if _needs_parens(source, node)
                    or (operator and not _is_statement_level(source, node))
                    else text
                )
            mutated = replace_node(source, node, text)
            ast.parse(mutated)
        except (SyntaxError, ValueError, IndexError):
            continue
        if mutated == source or mutated in seen:
            continue
        seen.add(mutated)
        found.append(Mutant(kind, getattr(node, "lineno", 0), description, mutated))
    return found


def _needs_parens(source: str, node: ast.expr) -> bool:
    """A replaced operator expression keeps its parenthesized meaning inside a larger one."""
    return isinstance(node, ast.BinOp | ast.BoolOp | ast.Compare) and not _is_statement_level(
        source, node
    )


def _is_statement_level(source: str, node: ast.expr) -> bool:
    # Parenthesizing is harmless but noisy; skip it where the expression fills its whole line.
    lines = source.splitlines()
    if node.lineno != node.end_lineno:
        return False
    line = lines[node.lineno - 1]
    start = _char_col(line, node.col_offset)
    end = _char_col(line, node.end_col_offset or 0)
    before = line[:start].strip()
    after = line[end:].strip()
    return after in ("", ":") and (
        before in ("", "return", "if", "elif", "while", "assert", "not") or before.endswith("=")
    )
