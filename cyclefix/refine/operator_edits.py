"""Operator edits: the classic one-token slips at a suspicious line, each undone, without a model.

`return not self.parent == other`, `if x in [True, False]` for `not in`, `and` for `or`,
`start - 2` for `start - 1`: a small model reading such a line under the failing test's
feedback often rates the fix far below its own copy (refine.token_edits found none in 79 edits
of `not self.parent == other`), yet the candidates are few and a test run judges each in a
second or two. Each edit here changes one operator, keyword or number on one suspicious line:
a comparison to its neighbours (`<` to `<=` and `>`, `==` to `!=`, `is` to `is not`, `in` to
`not in`), `and` to `or`, a `not` taken away or put in front of a condition, `+` to `-`, an
integer one up or down, `True` to `False`, a `+ 1` dropped. Ranked among the token edits by
what the model thought of the new text where it starts (OPERATOR_GAP at the least).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import pairwise

from cyclefix.models.backend import Fork
from cyclefix.refine.copied_code import CopiedCode, model_gap
from cyclefix.refine.token_edits import TokenEdit
from cyclefix.refine.types import EditLine

# An operator edit's gap when the model offers nothing better where it starts: after the
# likeliest token edits, before the far ones (a token edit's reach costs 1 to 2.5).
OPERATOR_GAP = -2.0

# Each comparison's neighbours: its negation first, then the one-character slips.
_COMPARISONS = {
    "==": ("!=",),
    "!=": ("==",),
    "<": (">=", "<=", ">"),
    "<=": (">", "<", ">="),
    ">": ("<=", ">=", "<"),
    ">=": ("<", ">", "<="),
    "is": ("is not",),
    "is not": ("is",),
    "in": ("not in",),
    "not in": ("in",),
}
_ARITHMETIC = {
    "+": ("-",),
    "-": ("+",),
    "*": ("/", "//"),
    "/": ("//", "*"),
    "//": ("/", "*"),
    "%": ("//",),
    "<<": (">>",),
    ">>": ("<<",),
    "&": ("|",),
    "|": ("&",),
}
_BOOLEANS = {"and": ("or",), "or": ("and",)}
_COMPARISON = re.compile(r"==|!=|<=|>=|<|>|\bis\s+not\b|\bis\b|\bnot\s+in\b|\bin\b")
_BOOLEAN = re.compile(r"\band\b|\bor\b")
_BINARY = re.compile(r"\*\*|//|<<|>>|[-+*/%@&|^]")
# Conditions a `not` is put in front of (a BoolOp's operands too).
_CONDITION_HOLDERS = (ast.If, ast.While, ast.IfExp, ast.Assert)
# Expressions that need parentheses under a `not` put in front.
_LOOSE = (ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr)

# (start, end, new text) in the answer's text.
_Replacement = tuple[int, int, str]
# Where a node starts and ends in the answer's text.
_Where = Callable[[ast.expr], tuple[int, int]]


def operator_edits(
    text: str, forks: Sequence[Fork], lines: Sequence[EditLine], seen: Iterable[str] = ()
) -> list[TokenEdit]:
    """The operator edits of `lines` in `text` (a fenced answer that copies the code, scored
    token by token into `forks`), likeliest first: only edits inside one line that parse,
    change the code and are not among `seen` codes."""
    copied = CopiedCode.read(text, lines, seen)
    if copied is None or not copied.spans:
        return []
    found: dict[str, TokenEdit] = {}
    for start, end, new in _replacements(copied.tree, text, copied.where):
        span = copied.span_around(start, end)
        if span is not None:
            gap = model_gap(text, forks, start, new + text[end : span[1]], OPERATOR_GAP)
            copied.add_edit(text[:start] + new + text[end:], span, gap, found)
    return sorted(found.values(), key=lambda edit: -edit.gap)


def _replacements(tree: ast.Module, text: str, where: _Where) -> Iterator[_Replacement]:
    """Every operator edit of the code in `tree` as a replacement of `text`, in the order
    ties are tried: comparisons and conditions before arithmetic and numbers."""
    nodes = list(ast.walk(tree))
    # Numbers written with a minus: `-1` is one number.
    signed = {
        id(n.operand) for n in nodes if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub)
    }
    for node in nodes:
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for left, right in pairwise(operands):
                yield from _between(
                    text, where(left)[1], where(right)[0], _COMPARISON, _COMPARISONS
                )
        elif isinstance(node, ast.BoolOp):
            for left, right in pairwise(node.values):
                yield from _between(text, where(left)[1], where(right)[0], _BOOLEAN, _BOOLEANS)
    for node in nodes:
        yield from _negations(node, text, where)
    for node in nodes:
        if isinstance(node, ast.BinOp) and not (_text(node.left) or _text(node.right)):
            left_end, right_start = where(node.left)[1], where(node.right)[0]
            yield from _between(text, left_end, right_start, _BINARY, _ARITHMETIC)
            yield from _dropped_one(node, text, where)
        elif isinstance(node, ast.AugAssign):
            target_end, value_start = where(node.target)[1], where(node.value)[0]
            yield from _between(text, target_end, value_start, _BINARY, _ARITHMETIC)
    for node in nodes:
        if isinstance(node, ast.expr) and id(node) not in signed:
            yield from _numbers(node, where)


def _text(node: ast.expr) -> bool:
    """Whether `node` is written as a string: `"%s" % x` formats, `"a" + b` joins."""
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))
    )


def _between(
    text: str, start: int, end: int, pattern: re.Pattern[str], others: Mapping[str, tuple[str, ...]]
) -> Iterator[_Replacement]:
    """The operator written between two operands (at `start`..`end` of `text`, among brackets
    and spaces) replaced by each of its `others`."""
    found = pattern.search(text, start, end)
    if found is None:
        return
    written = " ".join(found.group().split())
    for other in others.get(written, ()):
        yield found.start(), found.end(), other


def _negations(node: ast.AST, text: str, where: _Where) -> Iterator[_Replacement]:
    """A `not` taken away, or put in front of a condition (of an `if`, `while`, `assert`, a
    comprehension, an `and`/`or` operand) that is not one comparison."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        start, operand_start = where(node)[0], where(node.operand)[0]
        if text.startswith("not", start):
            yield start, operand_start, ""
        return
    conditions: list[ast.expr] = []
    if isinstance(node, _CONDITION_HOLDERS):
        conditions.append(node.test)
    elif isinstance(node, ast.comprehension):
        conditions += node.ifs
    elif isinstance(node, ast.BoolOp):
        conditions += node.values
    for condition in conditions:
        if isinstance(condition, ast.UnaryOp) and isinstance(condition.op, ast.Not):
            continue
        if isinstance(condition, ast.Compare) and len(condition.ops) == 1:
            continue  # its operator's negation says the same
        start, end = where(condition)
        if isinstance(condition, _LOOSE):
            yield start, end, f"not ({text[start:end]})"
        else:
            yield start, start, "not "


def _dropped_one(node: ast.BinOp, text: str, where: _Where) -> Iterator[_Replacement]:
    """`x + 1` or `x - 1` as `x`."""
    right = node.right
    if (
        isinstance(node.op, (ast.Add, ast.Sub))
        and isinstance(right, ast.Constant)
        and type(right.value) is int
        and right.value == 1
    ):
        start, end = where(node)
        left_start, left_end = where(node.left)
        yield start, end, text[left_start:left_end]


def _numbers(node: ast.expr, where: _Where) -> Iterator[_Replacement]:
    """An integer one up and one down (`-1` read as one number); `True` for `False` and back."""
    value: object = None
    if isinstance(node, ast.Constant):
        value = node.value
    elif (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) is int
    ):
        value = -node.operand.value
    start, end = where(node)
    if type(value) is bool:
        yield start, end, str(not value)
    elif type(value) is int:
        for other in (value - 1, value + 1):
            yield start, end, str(other)
