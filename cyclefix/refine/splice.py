"""Put a model's rewritten functions into the user's module text, in place of the originals."""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cyclefix.refine.indentation import (
    conform_indentation,
    has_tab_indentation,
    indents_with_tabs,
    leading_whitespace,
)
from cyclefix.refine.source import MODULE_QUALNAME, FunctionSpan, function_spans, is_overload
from cyclefix.refine.types import Target


class SpliceError(Exception):
    """The candidate cannot be put into the module; `verdict` says why."""

    def __init__(self, verdict: str, message: str) -> None:
        super().__init__(message)
        self.verdict = verdict


@dataclass(frozen=True)
class SplicedSources:
    # Path (relative to the project root) -> new module text, only for files that changed.
    files: Mapping[str, str]
    replaced: tuple[str, ...]
    added: tuple[str, ...]


@dataclass(frozen=True)
class _Edit:
    start: int  # 1-based first line replaced; insertion when end == start - 1
    end: int
    text: str


def _newline(source: str) -> str:
    return "\r\n" if "\r\n" in source else "\n"


def _node_text(lines: list[str], node: ast.stmt) -> str:
    decos = getattr(node, "decorator_list", [])
    start = min([node.lineno, *(d.lineno for d in decos)])
    end = node.end_lineno or node.lineno
    return textwrap.dedent("".join(lines[start - 1 : end]))


def _indent(text: str, indent: str, newline: str) -> str:
    body = [indent + ln if ln.strip() else "" for ln in text.rstrip("\n").split("\n")]
    return newline.join(body) + newline


def parse_candidate(code: str) -> ast.Module:
    try:
        return ast.parse(textwrap.dedent(code))
    except SyntaxError as exc:
        raise SpliceError("syntax_error", f"SyntaxError: {exc.msg} (line {exc.lineno})") from exc


def splice_candidate(
    sources: Mapping[str, str], targets: Sequence[Target], code: str
) -> SplicedSources:
    """Replace target functions (and other functions of the same files) the candidate redefines.

    New top-level helper functions are inserted above the first target; new imports go under the
    module's imports. Anything else the model wrote (examples, prints, asserts) is dropped.
    """
    if not targets:
        raise SpliceError("wrong_target", "nothing to rewrite")
    code = textwrap.dedent(code)
    if has_tab_indentation(code):  # spaces first: an answer mixing both does not parse
        code = textwrap.dedent(conform_indentation(code, tabs=False))
    tree = parse_candidate(code)
    cand_lines = code.splitlines(keepends=True)
    # A whole-module target takes the candidate as the new module when it is one.
    module_targets = [t for t in targets if t.qualname == MODULE_QUALNAME]
    if module_targets and not any(t.qualname != MODULE_QUALNAME for t in targets):
        path = module_targets[0].path
        if not any(
            isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) for n in tree.body
        ):
            raise SpliceError("wrong_target", "the answer defines no function or class")
        newline = _newline(sources[path])
        return SplicedSources({path: code.replace("\n", newline)}, (MODULE_QUALNAME,), ())

    target_files = list(dict.fromkeys(t.path for t in targets if t.qualname != MODULE_QUALNAME))
    trees = {p: ast.parse(sources[p]) for p in target_files}
    spans: dict[str, list[FunctionSpan]] = {p: function_spans(trees[p]) for p in target_files}
    tabbed = {p: indents_with_tabs(sources[p]) for p in target_files}
    source_lines = {p: sources[p].splitlines() for p in target_files}

    def in_style(text: str, path: str) -> str:
        return conform_indentation(text, tabs=True) if tabbed[path] else text

    target_names = {t.qualname for t in targets}
    target_bare_names = {t.qualname.rsplit(".", 1)[-1] for t in targets}

    def find_span(
        qualname: str, name: str, is_method: bool, looks_method: bool
    ) -> tuple[str, FunctionSpan] | None:
        # Exact qualname among targets, then same bare name among targets (each first of the
        # kind the answer's def looks like: a `def compare(self, ...)` is `Version.compare`,
        # not another file's `compare`), then the target files.
        for pass_ in range(5):
            for path in target_files:
                for span in spans[path]:
                    kind = pass_ >= 2 or span.is_method == looks_method
                    among = span.qualname in target_names
                    if pass_ in (0, 2) and kind and span.qualname == qualname and among:
                        return path, span
                    if pass_ in (1, 3) and kind and span.name == name and among:
                        return path, span
                    if pass_ == 4 and (
                        span.qualname == qualname
                        or (not is_method and span.name == name and not span.is_method)
                    ):
                        return path, span
        return None

    edits: dict[str, list[_Edit]] = {p: [] for p in target_files}
    replaced: list[str] = []
    added: list[str] = []
    new_helpers: list[str] = []
    first = next(t for t in targets if t.qualname != MODULE_QUALNAME)

    def replace(
        node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str, is_method: bool
    ) -> bool:
        found = find_span(qualname, node.name, is_method, is_method or _takes_self(node))
        if found is None:
            return False
        path, span = found
        newline = _newline(sources[path])
        indent = leading_whitespace(source_lines[path][span.start_line - 1])
        text = _indent(in_style(_node_text(cand_lines, node), path), indent, newline)
        edits[path].append(_Edit(span.start_line, span.end_line, text))
        replaced.append(span.qualname)
        return True

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if is_overload(node) or (node.name not in target_bare_names and _is_stub(node)):
                continue  # an echo of the prompt's module outline, not a rewrite
            if not replace(node, node.name, False):
                new_helpers.append(_node_text(cand_lines, node))
                added.append(node.name)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    if is_overload(item) or (item.name not in target_bare_names and _is_stub(item)):
                        continue
                    replace(item, f"{node.name}.{item.name}", True)
    if not replaced:
        names = ", ".join(t.qualname for t in targets)
        raise SpliceError("wrong_target", f"the answer does not redefine {names}")

    new_imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    for path in target_files:
        source = sources[path]
        newline = _newline(source)
        if path == first.path and new_helpers:
            text = newline.join(_indent(in_style(h, path), "", newline) for h in new_helpers)
            text += newline
            edits[path].append(_Edit(first.start_line, first.start_line - 1, text))
        # Imports go only where the answer's code went: a file it left alone stays as it is.
        if new_imports and edits[path]:
            present = {
                ast.unparse(n)
                for n in trees[path].body
                if isinstance(n, ast.Import | ast.ImportFrom)
            }
            missing = [ast.unparse(n) for n in new_imports if ast.unparse(n) not in present]
            if missing:
                line = _import_insert_line(trees[path])
                edits[path].append(_Edit(line, line - 1, newline.join(missing) + newline))

    files: dict[str, str] = {}
    for path, file_edits in edits.items():
        if not file_edits:
            continue
        lines = sources[path].splitlines(keepends=True)
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += _newline(sources[path])
        # Bottom-up so earlier line numbers stay valid; replacements before insertions at a line.
        for edit in sorted(file_edits, key=lambda e: (e.start, e.end >= e.start), reverse=True):
            lines[edit.start - 1 : edit.end] = [edit.text]
        new_source = "".join(lines)
        if new_source != sources[path]:
            files[path] = new_source
    return SplicedSources(files, tuple(replaced), tuple(added))


def with_imports(source: str, import_lines: Sequence[str]) -> str:
    """`source` with `import_lines` added under its imports (the module parses)."""
    newline = _newline(source)
    lines = source.splitlines(keepends=True)
    at = _import_insert_line(ast.parse(source))
    text = newline.join(import_lines) + newline
    return "".join(lines[: at - 1]) + text + "".join(lines[at - 1 :])


def _takes_self(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether a def's first parameter is `self` or `cls`: a method shown without its class."""
    params = [*node.args.posonlyargs, *node.args.args]
    return bool(params) and params[0].arg in ("self", "cls")


def _is_stub(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A body of only a docstring, `...` or `pass`: an outline, never a replacement."""
    for stmt in node.body:
        if isinstance(stmt, ast.Pass):
            continue
        if (
            isinstance(stmt, ast.Expr)
            and isinstance(stmt.value, ast.Constant)
            and (stmt.value.value is Ellipsis or isinstance(stmt.value.value, str))
        ):
            continue
        return False
    return True


def _import_insert_line(tree: ast.Module) -> int:
    """The line after the module's last top-level import (after the docstring when there is none)."""
    line = 1
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom) or (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and line == 1
        ):
            line = (node.end_lineno or node.lineno) + 1
        else:
            break
    return line
