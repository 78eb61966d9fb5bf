"""EvalPlus's sanitizer, reimplemented on the standard library's `ast`.

Adapted from `evalplus/sanitize.py` of EvalPlus 0.3.1 (https://github.com/evalplus/evalplus,
Copyright EvalPlus authors, Apache License 2.0). Changes: tree-sitter replaced by `ast` (the
`evalplus` package pulls in openai, anthropic, transformers and datasets, none of which
installs offline here); the rules are kept as EvalPlus applies them to a chat answer:

1. `code_extract`: the longest run of lines (counting non-blank lines) that parses.
2. Keep every top-level import; the first top-level class, function (only if it has a
   `return` somewhere) or assignment of each name. Decorated definitions, augmented
   assignments and bare expressions are dropped, as tree-sitter's node types make EvalPlus do.
3. With an entry point, keep only the definitions it reaches through the identifiers they use.
4. Empty result: the extracted code as it was.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable


def syntax_ok(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, MemoryError, ValueError):
        return False
    return True


def code_extract(text: str) -> str:
    """The longest contiguous run of lines that parses as Python (EvalPlus's rule)."""
    lines = text.split("\n")
    best = (0, 0)
    longest = 0
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            chunk = lines[i : j + 1]
            length = sum(1 for line in chunk if line.strip())
            # A run no longer than the best cannot win; skipping its parse is only speed.
            if length > longest and syntax_ok("\n".join(chunk)):
                longest = length
                best = (i, j)
    return "\n".join(lines[best[0] : best[1] + 1])


def _identifiers(node: ast.AST) -> set[str]:
    """Every identifier in the node, as tree-sitter's `identifier` leaves would give them."""
    names: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            names.add(sub.attr)
        elif isinstance(sub, ast.arg | ast.keyword) and sub.arg:
            names.add(sub.arg)
        elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(sub.name)
        elif isinstance(sub, ast.alias):
            names.update(part for part in sub.name.split("."))
            if sub.asname:
                names.add(sub.asname)
        elif isinstance(sub, ast.Global | ast.Nonlocal):
            names.update(sub.names)
        elif isinstance(sub, ast.ExceptHandler) and sub.name:
            names.add(sub.name)
    return names


def _has_return(node: ast.AST) -> bool:
    return any(isinstance(sub, ast.Return) for sub in ast.walk(node))


def _assigned_name(node: ast.stmt) -> str | None:
    """The name an `x = ...` or `x: T = ...` statement defines (None for tuples, attributes)."""
    target: ast.expr | None = None
    if isinstance(node, ast.Assign):
        target = node.targets[0]
    elif isinstance(node, ast.AnnAssign):
        target = node.target
    return target.id if isinstance(target, ast.Name) else None


def _reachable(entry: str, deps: dict[str, set[str]]) -> set[str]:
    seen = {entry}
    queue = [entry]
    while queue:
        current = queue.pop(0)
        for name in deps.get(current, ()):
            if name not in seen:
                seen.add(name)
                queue.append(name)
    return seen


def _segment(lines: list[bytes], node: ast.stmt) -> str:
    """The node's source. A def or class's block, in tree-sitter, also holds the comments that
    end its last line or follow it indented deeper than the definition."""
    first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    end = node.end_col_offset if node.end_col_offset is not None else len(lines[last])
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        rest = lines[last][end:]
        if rest.strip().startswith(b"#"):
            end += len(rest.rstrip())
        for number in range(last + 1, len(lines)):
            line = lines[number]
            if not line.strip():
                continue
            indent = len(line) - len(line.lstrip())
            if not line.strip().startswith(b"#") or indent <= node.col_offset:
                break
            last, end = number, len(line.rstrip())
    if first == last:
        text = lines[first][node.col_offset : end]
    else:
        middle = lines[first + 1 : last]
        text = b"".join([lines[first][node.col_offset :], *middle, lines[last][:end]])
    return text.decode("utf-8").rstrip("\r\n")


def _segments(code: str, nodes: Iterable[ast.stmt]) -> list[str]:
    # ast's columns count UTF-8 bytes.
    lines = [line.encode("utf-8") for line in code.splitlines(keepends=True)]
    return [_segment(lines, node) for node in nodes]


def extract_target_code_or_empty(code: str, entrypoint: str | None = None) -> str:
    code = code_extract(code)
    try:
        tree = ast.parse(code)
    except (SyntaxError, MemoryError, ValueError):
        return ""
    imports: list[ast.stmt] = []
    definitions: list[tuple[str, ast.stmt]] = []
    seen: set[str] = set()
    for node in tree.body:
        name: str | None = None
        if isinstance(node, ast.Import | ast.ImportFrom):
            imports.append(node)
            continue
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            # tree-sitter wraps a decorated one in another node type, which EvalPlus skips.
            wanted = isinstance(node, ast.ClassDef) or _has_return(node)
            name = node.name if wanted and not node.decorator_list else None
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            name = _assigned_name(node)
            if name is None:
                continue
        if name is None or name in seen:
            continue
        seen.add(name)
        definitions.append((name, node))
    keep: set[str] | None = None
    if entrypoint:
        keep = _reachable(entrypoint, {name: _identifiers(node) for name, node in definitions})
    kept = [node for name, node in definitions if keep is None or name in keep]
    return "\n".join(_segments(code, [*imports, *kept]))


def sanitize(code: str, entrypoint: str | None = None) -> str:
    """The code EvalPlus would evaluate for this answer."""
    sanitized = extract_target_code_or_empty(code, entrypoint).strip()
    if not sanitized:
        return code_extract(code)
    return sanitized
