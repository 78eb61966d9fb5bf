"""The project functions on a suspect's failing path, in any file: what a prompt shows besides it.

A failing assert names the public function; the bug often sits in a helper it calls, in
another module (`Invoice.tax` calling `money.percent_of`). The prompt shows the suspect with
those functions in full and the answer may rewrite any of them. Evidence, best first: the
functions the failing tests executed that call the suspect or that it calls (traced runs),
the suspect's callees resolved through the imports of its module (two calls deep, through a
package's re-exports), then the other suspects. Small functions only, within a size budget.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.source import (
    MODULE_QUALNAME,
    function_spans,
    target_for_span,
)
from cyclefix.refine.types import Target
from cyclefix.runner.results import TestCaseResult

# Characters of source the related functions may take in all, and lines one may have.
RELATED_CHARS = 3000
RELATED_MAX_LINES = 40
# Calls followed from the suspect: its callees, and theirs.
RELATED_DEPTH = 2
# Re-exports followed to find where an imported name is defined (`pkg/__init__.py`).
REEXPORT_HOPS = 2

# An imported name: the project file it comes from, and the name there (None: the module).
_Binding = tuple[str, str | None]


def path_functions(
    index: ProjectIndex,
    focus: Target,
    failures: Sequence[TestCaseResult],
    suspects: Sequence[Target] = (),
) -> tuple[Target, ...]:
    """Functions on `focus`'s failing path, best first, within RELATED_CHARS: never `focus`
    itself, a whole module, or a function over RELATED_MAX_LINES lines."""
    if focus.qualname == MODULE_QUALNAME:
        return ()
    found: list[Target] = []
    seen = {(focus.path, focus.qualname)}
    size = 0

    def add(targets: Iterable[Target]) -> None:
        nonlocal size
        for t in targets:
            key = (t.path, t.qualname)
            lines = t.end_line - t.start_line + 1
            if key in seen or t.qualname == MODULE_QUALNAME or lines > RELATED_MAX_LINES:
                continue
            if size + len(t.source) > RELATED_CHARS:
                continue
            seen.add(key)
            found.append(t)
            size += len(t.source)

    add(executed_neighbours(index, focus, failures))
    frontier = [focus]
    for _ in range(RELATED_DEPTH):
        reached = [c for t in frontier for c in callees(index, t)]
        add(reached)
        frontier = reached
    add(suspects)
    return tuple(found)


def callees(index: ProjectIndex, target: Target) -> list[Target]:
    """Project functions `target` calls: in its own module, or imported into it (`f(...)` of
    `from .m import f`, `m.f(...)` of `import pkg.m as m`); a class called is its __init__."""
    node = index.function_node(target.path, target.qualname)
    if node is None:
        return []
    tree = index.tree(target.path)
    assert tree is not None  # function_node parsed it
    bindings = _import_bindings(index, target.path, tree)
    cls = target.qualname.rsplit(".", 1)[0] if "." in target.qualname else None
    found: list[Target] = []
    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        where: _Binding | None = None
        if isinstance(func, ast.Name):
            where = bindings.get(func.id) or (target.path, func.id)
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            owner = func.value.id
            if owner in ("self", "cls") and cls is not None:
                where = (target.path, f"{cls}.{func.attr}")
            elif (bound := bindings.get(owner)) is not None and bound[1] is None:
                where = (bound[0], func.attr)
        if where is not None and where[1] is not None:
            found.extend(definition(index, where[0], where[1]))
    return found


def definition(index: ProjectIndex, rel: str, name: str, hops: int = REEXPORT_HOPS) -> list[Target]:
    """The function (or a class's __init__) `name` of project file `rel`, following the
    file's imports of that name (a package re-exporting it) up to `hops` times."""
    tree, source = index.tree(rel), index.source(rel)
    if tree is None or source is None:
        return []
    for span in function_spans(tree):
        if span.qualname in (name, f"{name}.__init__"):
            return [target_for_span(rel, source, span)]
    bound = _import_bindings(index, rel, tree).get(name) if hops > 0 else None
    if bound is not None and bound[1] is not None and bound[0] != rel:
        return definition(index, bound[0], bound[1], hops - 1)
    return []


def _import_bindings(index: ProjectIndex, rel: str, tree: ast.Module) -> dict[str, _Binding]:
    """Names the module's top-level imports bind to project files."""
    bindings: dict[str, _Binding] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found = index.module_for(alias.name)
                if found is not None:
                    # `import a.b` binds `a`; only `import a.b as m` binds the module itself.
                    bound = alias.asname or alias.name
                    if alias.asname or "." not in alias.name:
                        bindings[bound] = (found, None)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                module = _module_file(index, rel, node.level, node.module, alias.name)
                if module is not None:
                    bindings[alias.asname or alias.name] = (module, None)
                    continue
                owner = _module_file(index, rel, node.level, node.module, None)
                if owner is not None:
                    bindings[alias.asname or alias.name] = (owner, alias.name)
    return bindings


def _module_file(
    index: ProjectIndex, rel: str, level: int, module: str | None, name: str | None
) -> str | None:
    """Project file of `from <level dots><module> import <name>` when `name` is a module
    (given), or of the module the names come from (`name` None)."""
    dotted = ".".join(p for p in (module, name) if p)
    if not dotted:
        return None
    if level == 0:
        return index.module_for(dotted)
    package = PurePosixPath(rel).parent
    for _ in range(level - 1):
        package = package.parent
    base = package.joinpath(*dotted.split("."))
    files = index.files()
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        normal = candidate.removeprefix("./")
        if normal in files:
            return normal
    return None


def executed_neighbours(
    index: ProjectIndex, focus: Target, failures: Sequence[TestCaseResult]
) -> list[Target]:
    """Functions the failing tests executed that call `focus` or that `focus` calls, the
    ones more failing tests executed first (empty without a traced run)."""
    counts: dict[tuple[str, str], int] = {}
    for case in failures:
        for executed in case.executed:
            # A comprehension or nested function counts for the function that holds it.
            key = (executed.path, executed.qualname.split(".<locals>", 1)[0])
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return []
    focus_node = index.function_node(focus.path, focus.qualname)
    called = _called_names(focus_node) if focus_node is not None else set()
    bare = focus.qualname.rsplit(".", 1)[-1]
    found: list[Target] = []
    for path, qualname in sorted(counts, key=lambda k: -counts[k]):
        target = function_target(index, path, qualname)
        if target is None:
            continue
        node = index.function_node(target.path, target.qualname)
        calls_focus = node is not None and bare in _called_names(node)
        if target.qualname.rsplit(".", 1)[-1] in called or calls_focus:
            found.append(target)
    return found


def _called_names(node: ast.AST) -> set[str]:
    names: set[str] = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            if isinstance(call.func, ast.Name):
                names.add(call.func.id)
            elif isinstance(call.func, ast.Attribute):
                names.add(call.func.attr)
    return names


def function_target(index: ProjectIndex, rel: str, qualname: str) -> Target | None:
    """The function or method `qualname` of project file `rel`, as the index has it."""
    tree, source = index.tree(rel), index.source(rel)
    if tree is None or source is None:
        return None
    span = next((s for s in function_spans(tree) if s.qualname == qualname), None)
    return target_for_span(rel, source, span) if span is not None else None
