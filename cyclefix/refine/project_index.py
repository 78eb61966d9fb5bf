"""The project's parsed (non-test) modules, and which file a fix was asked for."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

from cyclefix.refine.source import (
    FunctionSpan,
    OutsideProjectError,
    SourceError,
    enclosing_function,
    function_node,
    function_spans,
    project_file,
    read_source,
    target_for_span,
)
from cyclefix.refine.types import Target
from cyclefix.runner.testfiles import SKIP_DIRS, is_test_code


def focus_file(root: Path, path: Path) -> str | None:
    """`path` relative to `root` when it names a source file (not a folder, not a test file)."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file() or resolved.suffix != ".py":
        return None
    try:
        rel = resolved.relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return None
    return None if is_test_code(rel) else rel


class ProjectIndex:
    """Parsed project (non-test) modules, loaded lazily and cached for one fix."""

    def __init__(self, root: Path, overrides: dict[str, str] | None = None) -> None:
        self.root = root
        self.overrides = overrides or {}
        self._trees: dict[str, ast.Module | None] = {}
        self._sources: dict[str, str] = {}
        self._files: list[str] | None = None

    def files(self) -> list[str]:
        if self._files is None:
            found: list[str] = []
            for path in sorted(self.root.rglob("*.py")):
                rel = path.relative_to(self.root)
                if any(p in SKIP_DIRS or p.startswith(".") for p in rel.parts[:-1]):
                    continue
                if not is_test_code(rel.as_posix()):
                    found.append(rel.as_posix())
            self._files = found
        return self._files

    def source(self, rel: str) -> str | None:
        if rel in self.overrides:
            return self.overrides[rel]
        if rel not in self._sources:
            try:
                path = project_file(self.root, rel)
                if not path.is_file():  # a folder, a FIFO or device that would never end
                    return None
                self._sources[rel] = read_source(path)
            except (SourceError, OutsideProjectError):
                return None
        return self._sources[rel]

    def tree(self, rel: str) -> ast.Module | None:
        if rel not in self._trees:
            src = self.source(rel)
            try:
                self._trees[rel] = ast.parse(src) if src is not None else None
            except SyntaxError:
                self._trees[rel] = None
        return self._trees[rel]

    def function_node(
        self, rel: str, qualname: str
    ) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        """The def `qualname` ("Class.name") is bound to in `rel` (source.function_node)."""
        tree = self.tree(rel)
        return function_node(tree, qualname) if tree is not None else None

    def target_at(self, rel: str, line: int) -> Target | None:
        tree, src = self.tree(rel), self.source(rel)
        if tree is None or src is None:
            return None
        span = enclosing_function(tree, line)
        return target_for_span(rel, src, span) if span else None

    def definitions(self, name: str, prefer: Sequence[str] = ()) -> list[Target]:
        """Functions or methods called `name`, files in `prefer` first."""
        order = [f for f in prefer if f in self.files()] + [
            f for f in self.files() if f not in prefer
        ]
        found: list[Target] = []
        for rel in order:
            tree, src = self.tree(rel), self.source(rel)
            if tree is None or src is None:
                continue
            for span in function_spans(tree):
                if span.name == name or _is_constructor_of(span, name):
                    found.append(target_for_span(rel, src, span))
        return found

    def module_for(self, module: str) -> str | None:
        """Project file of a dotted module name (flat or src/ layout)."""
        rel = module.replace(".", "/")
        for cand in (f"{rel}.py", f"{rel}/__init__.py", f"src/{rel}.py", f"src/{rel}/__init__.py"):
            if cand in self.files():
                return cand
        tail = "/" + rel + ".py"
        return next((f for f in self.files() if f.endswith(tail)), None)


def _is_constructor_of(span: FunctionSpan, name: str) -> bool:
    # Calling a class runs its __init__ / __post_init__.
    return span.is_method and span.qualname in (f"{name}.__init__", f"{name}.__post_init__")
