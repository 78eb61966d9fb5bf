"""Python's surprises in the code a prompt shows, told in its feedback.

A small model writes `round(x)` for "round half up", `s.strip("ing")` for "drop the suffix",
`xs = xs.sort()`: code that reads right and does something else. The test's actual value
shows the symptom, not the cause, and the next answer repeats it (in `examples/invoicing`,
round(12.5) == 12 came back three rounds running). When the code a prompt shows (the user's,
an adopted answer or the latest attempt) uses one of these constructs, the feedback says what
Python does, in one line with an example; nothing is said of code that does not use them.
"""

from __future__ import annotations

import ast

ROUND = (
    "Note: Python's round() rounds a half to the even neighbour: round(12.5) == 12, "
    "round(13.5) == 14, round(0.125, 2) == 0.12."
)
STRIP = (
    'Note: str.strip/lstrip/rstrip("abc") remove any of the characters a, b, c from the '
    'end(s), not the string "abc"; removeprefix()/removesuffix() remove a whole string.'
)
IN_PLACE = (
    "Note: list.sort(), reverse(), append(), extend() and insert() change the list in place "
    "and return None; sorted(xs) and reversed(xs) return new ones."
)
IDENTITY = "Note: `is` compares identity, not value: compare numbers and strings with == and !=."
IN_PLACE_METHODS = frozenset({"sort", "reverse", "append", "extend", "insert"})


def pitfall_notes(code: str) -> tuple[str, ...]:
    """The notes for the surprising constructs `code` uses, in a fixed order."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return ()
    bound = _bound_names(tree)
    found: set[str] = set()
    statement_calls = {id(s.value) for s in ast.walk(tree) if isinstance(s, ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "round" and "round" not in bound:
                found.add(ROUND)
            elif isinstance(func, ast.Attribute):
                if func.attr in {"strip", "lstrip", "rstrip"} and _several_chars(node.args):
                    found.add(STRIP)
                elif func.attr in IN_PLACE_METHODS and id(node) not in statement_calls:
                    found.add(IN_PLACE)  # the None it returns is used
        elif isinstance(node, ast.Compare) and _identity_with_literal(node):
            found.add(IDENTITY)
    return tuple(n for n in (ROUND, STRIP, IN_PLACE, IDENTITY) if n in found)


def with_pitfalls(feedback: str, code: str) -> str:
    """`feedback`, then a note for each surprising construct `code` uses."""
    notes = pitfall_notes(code)
    return "\n".join((feedback, *notes)) if notes else feedback


def _bound_names(tree: ast.Module) -> set[str]:
    """Names the code defines or assigns (a `round` of its own is not the built-in)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def _several_chars(args: list[ast.expr]) -> bool:
    """A single string argument of two or more characters, one a letter or digit (`".py"`;
    `" \\n"` is plainly a set of characters)."""
    if len(args) != 1 or not isinstance(args[0], ast.Constant):
        return False
    chars = args[0].value
    return isinstance(chars, str) and len(chars) > 1 and any(c.isalnum() for c in chars)


def _identity_with_literal(node: ast.Compare) -> bool:
    """`x is 3`, `s is not "a"`: identity against a number or string literal."""
    operands = [node.left, *node.comparators]
    for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
        if isinstance(op, ast.Is | ast.IsNot):
            for side in (left, right):
                if (
                    isinstance(side, ast.Constant)
                    and isinstance(side.value, int | float | str)
                    and not isinstance(side.value, bool)
                ):
                    return True
    return False
