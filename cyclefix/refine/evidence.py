"""Evidence from one failing test: the functions its traceback and its asserts point at."""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterable

from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.source import SourceError, module_target, read_source
from cyclefix.refine.types import Target
from cyclefix.runner.results import TestCaseResult
from cyclefix.runner.testfiles import is_test_code


def called_names(node: ast.AST) -> list[str]:
    names: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            if isinstance(func, ast.Name):
                names.append(func.id)
            elif isinstance(func, ast.Attribute):
                names.append(func.attr)
    return names


def _producing_calls(test: ast.AST, assertion: ast.AST) -> list[str]:
    """Functions called where the assert's names got their values (`r = f(x)`), the compared
    value first (`assert actual == expected`), each name's latest assignment."""
    produced_by: dict[str, list[str]] = {}
    # Only what ran before the failing assert (`result = result.next` after it does not count).
    shape = ast.dump(assertion.body[0]) if isinstance(assertion, ast.Module) else ""
    before = min(
        (n.lineno for n in ast.walk(test) if isinstance(n, ast.Assert) and ast.dump(n) == shape),
        default=None,
    )
    assignments = [
        n
        for n in ast.walk(test)
        if isinstance(n, ast.Assign | ast.AnnAssign | ast.AugAssign)
        and (before is None or n.lineno < before)
    ]
    for assign in sorted(assignments, key=lambda n: n.lineno):
        if assign.value is None:  # a bare annotation `x: int`
            continue
        calls = called_names(assign.value)
        targets = assign.targets if isinstance(assign, ast.Assign) else [assign.target]
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    produced_by[name.id] = calls
    checked: list[str] = []
    for compare in ast.walk(assertion):
        if isinstance(compare, ast.Compare):
            for part in (compare.left, *compare.comparators):
                checked += [n.id for n in ast.walk(part) if isinstance(n, ast.Name)]
    checked += [n.id for n in ast.walk(assertion) if isinstance(n, ast.Name)]
    return [call for name in dict.fromkeys(checked) for call in produced_by.get(name, [])]


def _imported_project_files(index: ProjectIndex, test_source: str) -> list[str]:
    try:
        tree = ast.parse(test_source)
    except SyntaxError:
        return []
    files: list[str] = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for mod in modules:
            rel = index.module_for(mod)
            if rel and rel not in files:
                files.append(rel)
    return files


def _parse_snippet(text: str | None) -> ast.AST | None:
    if not text:
        return None
    try:
        return ast.parse(textwrap.dedent(text))
    except SyntaxError:
        return None


def suspects_for_test(
    index: ProjectIndex, case: TestCaseResult, focus: str | None = None
) -> list[Target]:
    """Functions a failing test points at, most likely first.

    A called name defined in several files resolves to the file the test's frame bound it to,
    then to `focus` (the file the user asked to fix), then to the files the test imports:
    QuixBugs-style tests import the same name from a buggy and a correct copy, behind a flag.
    """
    found: list[Target] = []

    def add(targets: Iterable[Target]) -> None:
        for t in targets:
            if all((t.path, t.qualname) != (f.path, f.qualname) for f in found):
                found.append(t)

    # An exception the test caught and its failing statement inspects was made where raised.
    for frame in case.caught_frames:
        target = index.target_at(frame.path, frame.line)
        if target:
            add([target])
    # The deepest project frame is where it went wrong; callers come after it.
    for frame in reversed(case.project_frames):
        if is_test_code(frame.path):
            continue
        target = index.target_at(frame.path, frame.line)
        if target:
            add([target])
    test_file_source = index.source(case.path) if case.path else None
    if test_file_source is None and case.path:
        try:
            test_file_source = read_source(index.root / case.path)
        except SourceError:
            test_file_source = None
    prefer = _imported_project_files(index, test_file_source or "")
    if focus is not None:
        prefer = [focus, *(f for f in prefer if f != focus)]
    # Calls in the failing assert, then the calls that made the values it checks, then the rest
    # of the test (set-up such as constructors last).
    assert_tree = _parse_snippet(case.assert_source)
    test_tree = _parse_snippet(case.test_source)
    names: list[str] = []
    if assert_tree is not None:
        names += called_names(assert_tree)
        if test_tree is not None:
            names += _producing_calls(test_tree, assert_tree)
    if test_tree is not None:
        names += called_names(test_tree)
    bound = {callee.name: callee for callee in case.callees}
    for name in dict.fromkeys(names):
        callee = bound.get(name)
        if callee is not None:
            add(index.definitions(callee.function, [callee.path, *prefer])[:1])
        else:
            add(index.definitions(name, prefer)[:1])
    if not found and prefer:
        rel = prefer[0]
        src = index.source(rel)
        if src is not None:
            add([module_target(rel, src)])
    return found
