"""The module outline a prompt needs: what the code it shows names, nothing else.

The outline beside a suspect (refine.source.module_context: imports, constants, class headers,
signatures, and the functions on the failing path in full) is most of a prompt on a real
library, whose modules import dozens of names and define a hundred functions. Here it keeps the
functions shown in full, and of the rest only the statements that bind a name the shown code
(the suspect, the failing path, the test) uses; an import keeps only its used names.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

from cyclefix.refine.indentation import leading_whitespace

# Places an outline is cut at, from its end, looking for a start of it that parses.
PARSE_TRIES = 60


def names_in(code: str) -> set[str]:
    """The identifiers `code` uses as code (not in its comments or strings); a text that does
    not tokenize gives every word of it instead."""
    try:
        return {
            token.string
            for token in tokenize.generate_tokens(io.StringIO(code).readline)
            if token.type == tokenize.NAME
        }
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return set(re.findall(r"[A-Za-z_]\w*", code))


def _is_outline(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A signature the outline shows in place of a function: its body `...`, or a docstring
    and `...` (a function shown in full is on the failing path: it stays)."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:] if isinstance(body[0].value.value, str) else body
    return (
        len(body) == 1
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and body[0].value.value is Ellipsis
    )


def _defined_names(node: ast.stmt) -> set[str]:
    """The names a statement of the outline binds (not those it only reads); dunders never
    count, as every class has them."""
    names: set[str] = set()
    for item in ast.walk(node):
        if isinstance(item, ast.Import | ast.ImportFrom):
            names.update(_bound(alias) for alias in item.names)
        elif isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(item.name)
        elif isinstance(item, ast.Name) and isinstance(item.ctx, ast.Store):
            names.add(item.id)
    return {n for n in names if not (n.startswith("__") and n.endswith("__"))}


def _bound(alias: ast.alias) -> str:
    return (alias.asname or alias.name).split(".")[0]


def _parsed_prefix(context: str) -> tuple[ast.Module, str, bool] | None:
    """The longest start of `context` that parses (an outline cut at its line limit ends
    mid-statement), whether anything was cut off; None when no start of it parses."""
    lines = context.splitlines()
    # Where a top-level statement may start: the whole, then before each such line from the end.
    ends = [len(lines)] + [
        number
        for number in range(len(lines) - 1, 0, -1)
        if lines[number].strip() and lines[number][0] not in " \t)]}#"
    ]
    for end in ends[:PARSE_TRIES]:
        text = "\n".join(lines[:end])
        try:
            return ast.parse(text), text, end < len(lines)
        except SyntaxError:
            continue
    return None


def _narrowed_import(node: ast.Import | ast.ImportFrom, named: set[str], line: str) -> str:
    """The import with only its `named` names, on one line at the indentation of `line`,
    where it stands."""
    names = ", ".join(
        alias.name + (f" as {alias.asname}" if alias.asname else "")
        for alias in node.names
        if _bound(alias) in named
    )
    indent = leading_whitespace(line)
    if isinstance(node, ast.Import):
        return f"{indent}import {names}"
    return f"{indent}from {'.' * node.level}{node.module or ''} import {names}"


def named_outline(context: str, shown: str) -> str | None:
    """`context` keeping its functions shown in full and only the outline (imports, constants,
    signatures, class headers) that they or the code `shown` name; None when it does not parse."""
    parsed = _parsed_prefix(context)
    if parsed is None:
        return None
    tree, context, cut = parsed
    full: list[ast.stmt] = []
    outline: list[ast.stmt] = []
    for node in tree.body:
        for item in node.body if isinstance(node, ast.ClassDef) else [node]:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and not _is_outline(item):
                full.append(item)
            else:
                outline.append(item)
    named = names_in(shown)
    for item in full:
        named |= names_in(ast.get_source_segment(context, item) or "")
    # Line number -> the text it shows (absent: left out).
    shown_lines: dict[int, str] = {}
    lines = context.splitlines()

    def keep(node: ast.stmt) -> None:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
        for number in range(first, (node.end_lineno or node.lineno) + 1):
            shown_lines[number] = lines[number - 1]

    for item in full:
        keep(item)
    dropped = 1 if cut else 0
    for item in outline:
        used = _defined_names(item) & named
        if not used:
            dropped += 1
        elif isinstance(item, ast.Import | ast.ImportFrom) and used != _defined_names(item):
            shown_lines[item.lineno] = _narrowed_import(item, named, lines[item.lineno - 1])
        else:
            keep(item)
    for node in tree.body:  # a class header stays where one of its members does
        if isinstance(node, ast.ClassDef):
            body_start = node.body[0].lineno if node.body else node.lineno + 1
            end = node.end_lineno or node.lineno
            if node.name in named or any(n in shown_lines for n in range(body_start, end + 1)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                for number in range(first, body_start):
                    shown_lines[number] = lines[number - 1]
    out = [shown_lines[number] for number in sorted(shown_lines)]
    if dropped:
        out.append(f"# ... ({dropped} other definitions of the module left out)")
    return "\n".join(out)
