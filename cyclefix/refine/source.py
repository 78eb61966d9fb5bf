"""Reading the user's Python files: functions by line or name, module context, safe decoding."""

from __future__ import annotations

import ast
import inspect
import io
import tokenize
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

from cyclefix.errors import CyclefixError
from cyclefix.refine.indentation import leading_whitespace
from cyclefix.refine.types import Target
from cyclefix.runner.project import project_relative

# qualname used for a whole-module target, the fallback when no function can be pinned down.
MODULE_QUALNAME = "<module>"


class SourceError(CyclefixError):
    """A user file that cannot be read or parsed."""


class OutsideProjectError(CyclefixError):
    """A path that leads out of the project (or the scratch copy) it was given for."""


def project_file(root: Path, rel: str) -> Path:
    """`root / rel` when `rel` stays inside `root`; OutsideProjectError when not.

    Paths to rewrite come from test runs of model-written code: never trusted to stay inside.
    """
    if project_relative(rel) is None:
        raise OutsideProjectError(f"refusing a path outside {root}: {rel!r}")
    return root / rel


def read_source(path: Path) -> str:
    """Text of a Python file, honouring a PEP 263 coding line; one-line error when undecodable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        raise SourceError(f"{path} is not valid UTF-8 (or its declared encoding): {exc}") from exc


@dataclass(frozen=True)
class FunctionSpan:
    qualname: str  # "name" or "Class.name"
    name: str
    start_line: int  # first decorator line, 1-based
    end_line: int  # inclusive
    is_method: bool


def is_overload(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A `@typing.overload` signature: for type checkers only, never run, never the fix."""
    return any(
        (isinstance(d, ast.Name) and d.id == "overload")
        or (isinstance(d, ast.Attribute) and d.attr == "overload")
        for d in node.decorator_list
    )


def function_spans(tree: ast.Module) -> list[FunctionSpan]:
    """Top-level functions and methods of top-level classes (nested defs belong to their parent),
    without `@overload` signatures: the name is the implementation's."""
    spans: list[FunctionSpan] = []

    def add(node: ast.FunctionDef | ast.AsyncFunctionDef, owner: str | None) -> None:
        if is_overload(node):
            return
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        end = node.end_lineno or node.lineno
        qual = f"{owner}.{node.name}" if owner else node.name
        spans.append(FunctionSpan(qual, node.name, start, end, owner is not None))

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            add(node, None)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    add(item, node.name)
    return spans


def function_node(tree: ast.Module, qualname: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The def of a top-level function or method ("Class.name") that the name is bound to:
    the last one, not an `@overload` signature."""
    found: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    for node in tree.body:
        members = node.body if isinstance(node, ast.ClassDef) else [node]
        for item in members:
            if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) or is_overload(item):
                continue
            name = f"{node.name}.{item.name}" if isinstance(node, ast.ClassDef) else item.name
            if name == qualname:
                found = item
    return found


def span_text(source: str, span: FunctionSpan) -> str:
    lines = source.splitlines(keepends=True)
    return "".join(lines[span.start_line - 1 : span.end_line])


def target_for_span(rel_path: str, source: str, span: FunctionSpan) -> Target:
    return Target(rel_path, span.qualname, span.start_line, span.end_line, span_text(source, span))


def module_target(rel_path: str, source: str) -> Target:
    return Target(rel_path, MODULE_QUALNAME, 1, len(source.splitlines()), source)


def enclosing_function(tree: ast.Module, line: int) -> FunctionSpan | None:
    """The smallest top-level function or method whose lines include `line`."""
    best: FunctionSpan | None = None
    for span in function_spans(tree):
        if span.start_line <= line <= span.end_line and (
            best is None or span.end_line - span.start_line < best.end_line - best.start_line
        ):
            best = span
    return best


def module_context(
    source: str,
    tree: ast.Module,
    exclude: set[str],
    limit: int = 40,
    whole: Set[str] = frozenset(),
) -> str:
    """What the model needs around the targets: imports, constants, class headers, signatures.

    Function bodies other than the targets are reduced to their signature and docstring line, so
    the prompt stays small on long modules; functions in `whole` (what the targets call, where
    the bug may really be) are shown in full.
    """
    lines = source.splitlines()
    # (line, essential): the functions in `whole` are always shown; `limit` bounds the outline.
    out: list[tuple[str, bool]] = []

    def outline(shown: list[str]) -> None:
        out.extend((line, False) for line in shown)

    def function(node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str) -> None:
        if qualname in exclude:
            return
        if qualname in whole:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            out.extend((line, True) for line in lines[first - 1 : node.end_lineno or node.lineno])
            return
        header_end = node.body[0].lineno - 1 if node.body else node.lineno
        outline(lines[node.lineno - 1 : max(header_end, node.lineno)])
        # The body's own indentation: a tab-indented module's outline stays tab-indented.
        indent = leading_whitespace(lines[node.body[0].lineno - 1])
        doc = ast.get_docstring(node)
        if doc:
            outline([f'{indent}"""{doc.strip().splitlines()[0]}"""'])
        outline([f"{indent}..."])

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function(node, node.name)
        elif isinstance(node, ast.ClassDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            body_start = node.body[0].lineno if node.body else node.lineno + 1
            outline(lines[first - 1 : body_start - 1])
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    function(item, f"{node.name}.{item.name}")
                else:
                    outline(lines[item.lineno - 1 : item.end_lineno or item.lineno])
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring adds little and costs tokens
        else:
            outline(lines[node.lineno - 1 : node.end_lineno or node.lineno])
    return "\n".join(_bounded(out, limit))


def _bounded(out: list[tuple[str, bool]], limit: int) -> list[str]:
    """The first `limit` outline lines and every essential one; each cut run becomes "# ..."."""
    kept: list[str] = []
    outline_lines = 0
    cutting = False
    for line, essential in out:
        if not essential:
            outline_lines += 1
            if outline_lines > limit:
                if not cutting:
                    kept.append("# ...")
                cutting = True
                continue
        kept.append(line)
        cutting = False
    return kept


def module_description(tree: ast.Module, limit: int = 1500) -> str:
    """The module's own description: its docstring, or a bare string at module level (QuixBugs
    puts the program's description after the code), bounded to `limit` characters."""
    for node in tree.body:
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            and node.value.value.strip()
        ):
            text = inspect.cleandoc(node.value.value)
            return text if len(text) <= limit else text[:limit].rstrip() + "\n..."
    return ""


def has_docstring(code: str) -> bool:
    """Whether the first function or class in `code` documents itself."""
    try:
        tree = ast.parse(_dedent(code))
    except SyntaxError:
        return False
    first = next(
        (
            n
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ),
        None,
    )
    return first is not None and ast.get_docstring(first) is not None


def called_functions(tree: ast.Module, qualnames: set[str], max_lines: int = 25) -> set[str]:
    """Functions of the module the `qualnames` call directly (`f(...)`, `self.f(...)`), if short."""
    nodes: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for top in tree.body:
        if isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef):
            nodes[top.name] = top
        elif isinstance(top, ast.ClassDef):
            for item in top.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    nodes[f"{top.name}.{item.name}"] = item
    called: set[str] = set()
    for qualname in qualnames:
        function = nodes.get(qualname)
        if function is None:
            continue
        cls = qualname.rsplit(".", 1)[0] if "." in qualname else None
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name):
                name = func.id
            elif (
                cls is not None
                and isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in ("self", "cls")
            ):
                name = f"{cls}.{func.attr}"
            else:
                continue
            callee = nodes.get(name)
            if (
                callee is not None
                and name not in qualnames
                and (callee.end_lineno or callee.lineno) - callee.lineno < max_lines
            ):
                called.add(name)
    return called


def normalized_code(code: str) -> str:
    """Code with comments, docstrings and layout removed: equal means the same program text.

    Used to spot copies (the CYCLE failure mode) and candidates already tried.
    """
    try:
        tree = ast.parse(_dedent(code))
    except SyntaxError:
        return _token_text(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _token_text(code: str) -> str:
    """Fallback normalizer for code that does not parse: the token stream without comments."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    try:
        toks = tokenize.generate_tokens(io.StringIO(code).readline)
        return " ".join(t.string for t in toks if t.type not in skip)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return " ".join(code.split())


def _dedent(code: str) -> str:
    import textwrap

    return textwrap.dedent(code)
