"""Localize: from failing tests to the functions to rewrite.

Evidence, strongest first: traceback frames in project files (the exception was raised there),
then the names the failing assert calls, then the names the test function calls. The smallest
enclosing function or method is the unit; the whole module only when nothing narrower is found.

When the run was traced (run_tests(trace=True)), what the tests executed ranks first: the
Ochiai score of each function over failing and passing tests (refine.spectrum), then how many
failing tests reached it, then the crash frames, then callees before their callers among equals
(a helper that every failing test reaches through `Invoice.tax` is where the wrong value is
made), then the evidence above. Where every executed function scores the same (one failing
test, and no passing test ran any of its code), the evidence orders and the executed functions
it missed follow. An untraced run keeps the evidence ranking, with a note.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cyclefix.refine.source import (
    FunctionSpan,
    SourceError,
    called_functions,
    enclosing_function,
    function_spans,
    module_target,
    read_source,
    target_for_span,
)
from cyclefix.refine.spectrum import FunctionKey, FunctionScore, function_key, score_functions
from cyclefix.refine.types import Target
from cyclefix.runner.results import ExecutedFunction, TestCaseResult, TestRunResult
from cyclefix.runner.testfiles import SKIP_DIRS, is_test_code

# At most this many suspects are ranked; the loop rewrites one at a time, best first.
MAX_TARGETS = 5


@dataclass(frozen=True)
class Localization:
    targets: tuple[Target, ...]
    # The failing test whose feedback goes into the prompt: the one pointing at targets[0].
    primary: TestCaseResult | None
    # For each suspect (path, qualname), the failing test that blames it most directly.
    blamed: Mapping[tuple[str, str], TestCaseResult] = field(default_factory=dict)
    # From a traced run: each suspect's spectrum score and its most suspicious lines (numbers
    # in the file as the targets show it), for the prompt to point at.
    scores: Mapping[tuple[str, str], FunctionScore] = field(default_factory=dict)
    lines: Mapping[tuple[str, str], tuple[int, ...]] = field(default_factory=dict)
    # How the ranking was made when it could not use execution (an untraced run).
    notes: tuple[str, ...] = ()


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
                self._sources[rel] = read_source(self.root / rel)
            except SourceError:
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


def _called_names(node: ast.AST) -> list[str]:
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
        calls = _called_names(assign.value)
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
    import textwrap

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
        names += _called_names(assert_tree)
        if test_tree is not None:
            names += _producing_calls(test_tree, assert_tree)
    if test_tree is not None:
        names += _called_names(test_tree)
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


def localize(
    index: ProjectIndex,
    failures: Sequence[TestCaseResult],
    focus: str | None = None,
    spectrum: TestRunResult | None = None,
) -> Localization:
    """Rank suspects over all failing tests: functions blamed by more tests come first (a test
    also blames, less, the suspects its first suspect calls).

    `focus` is the file the user asked to fix: among equally blamed suspects, its come first.
    `spectrum` is a traced run of the selection (the initial run): its tests' executed lines
    rank the functions first, `failures` saying which of its tests count as failing now.
    """
    per_test = [(case, suspects_for_test(index, case, focus)) for case in failures]
    votes: Counter[tuple[str, str]] = Counter()
    first_rank: dict[tuple[str, str], int] = {}
    by_key: dict[tuple[str, str], Target] = {}
    for _, targets in per_test:
        for rank, t in enumerate(targets):
            key = (t.path, t.qualname)
            # A test's first suspect counts fully, later ones (callers, other calls) less.
            votes[key] += 1.0 if rank == 0 else 0.25  # type: ignore[assignment]
            first_rank[key] = min(first_rank.get(key, rank), rank)
            by_key[key] = t
    # A test that fails through a function also blames, less, the suspects that function calls:
    # `contains` calling a broken `find_index` fails its test too, and one bug explains both.
    for _, targets in per_test:
        if not targets or targets[0].qualname == "<module>":
            continue
        first = targets[0]
        tree = index.tree(first.path)
        if tree is None:
            continue
        own = {(t.path, t.qualname) for t in targets}
        for name in called_functions(tree, {first.qualname}):
            key = (first.path, name)
            if key in votes and key not in own:
                votes[key] += 0.5  # type: ignore[assignment]
    ordered = sorted(votes, key=lambda k: (-votes[k], k[0] != focus, first_rank[k], k))
    scores, notes = _spectrum_scores(index, failures, spectrum)
    # Suspicious lines need only the lines to differ, even where the functions tie.
    line_scores = dict(scores)
    blamed_by_trace: dict[tuple[str, str], TestCaseResult] = {}
    if scores and spectrum is not None:
        resolve = FunctionResolver(index, spectrum.root)
        if _discriminates(scores):
            ordered = _rank_by_spectrum(index, per_test, ordered, scores, focus)
        else:  # every executed function scores the same: the evidence orders, the rest follow
            ordered = [*ordered, *sorted(k for k in scores if k not in ordered)]
            line_scores = {k: v for k, v in scores.items() if not v.lines_tied}
            scores = {}
        for key in ordered:
            if key not in by_key:
                target = _function_target(index, key)
                if target is None:
                    continue
                by_key[key] = target
            case = next((c for c in failures if _executed(c, spectrum, key, resolve)), None)
            if case is not None:
                blamed_by_trace[key] = case
        ordered = [k for k in ordered if k in by_key]
    targets = [by_key[k] for k in ordered]
    # Then what the suspects call: a wrong value often comes from a helper no frame points at.
    for suspect in list(targets):
        tree, src = index.tree(suspect.path), index.source(suspect.path)
        if tree is None or src is None or suspect.qualname == "<module>":
            continue
        callees = called_functions(tree, {suspect.qualname})
        for span in function_spans(tree):
            key = (suspect.path, span.qualname)
            if span.qualname in callees and key not in by_key:
                by_key[key] = target_for_span(suspect.path, src, span)
                targets.append(by_key[key])
    # A whole module swallows everything else in that file.
    module_paths = {t.path for t in targets if t.qualname == "<module>"}
    targets = [t for t in targets if t.qualname == "<module>" or t.path not in module_paths]
    chosen = _limit(targets)
    blamed: dict[tuple[str, str], TestCaseResult] = {}
    for key in ordered:
        case = next(
            (c for c, ts in per_test if ts and (ts[0].path, ts[0].qualname) == key),
            next((c for c, ts in per_test if any((t.path, t.qualname) == key for t in ts)), None),
        )
        case = case or blamed_by_trace.get(key)
        if case is not None:
            blamed[key] = case
    primary = blamed.get((chosen[0].path, chosen[0].qualname)) if chosen else None
    if primary is None and failures:
        primary = failures[0]
    chosen_keys = {(t.path, t.qualname) for t in chosen}
    lines = {
        key: score.lines
        for key, score in line_scores.items()
        if key in chosen_keys and score.lines and _unchanged(index, spectrum, key[0])
    }
    return Localization(
        tuple(chosen),
        primary,
        blamed,
        {k: v for k, v in scores.items() if k in chosen_keys},
        lines,
        notes,
    )


def _spectrum_scores(
    index: ProjectIndex, failures: Sequence[TestCaseResult], spectrum: TestRunResult | None
) -> tuple[dict[FunctionKey, FunctionScore], tuple[str, ...]]:
    """Spectrum scores of the project's functions, or none and a note saying why."""
    fallback = "ranked by tracebacks and the failing asserts only: "
    if spectrum is None:
        return {}, ()
    if not spectrum.traced:
        why = next((n for n in spectrum.notes if n.startswith("not traced")), "not traced")
        return {}, (fallback + f"the test run was {why}",)
    failing = {c.nodeid for c in failures}
    traced_failing = [t for t in spectrum.tests if t.nodeid in failing and t.executed]
    if not traced_failing:
        return {}, (fallback + "no failing test executed traced project code",)
    return score_functions(spectrum.tests, failing, FunctionResolver(index, spectrum.root)), ()


class FunctionResolver:
    """The project function (as it stands in `index`) a traced code object belongs to: by its
    qualified name, or, where the interpreter gave none (Python < 3.11 names `Invoice.tax`
    just `tax`), by its first line while the file reads as it did in the traced run."""

    def __init__(self, index: ProjectIndex, traced_root: Path) -> None:
        self.index = index
        self.traced_root = traced_root
        self._spans: dict[str, list[FunctionSpan]] = {}
        self._same: dict[str, bool] = {}
        self._found: dict[tuple[str, str, int], FunctionKey | None] = {}

    def __call__(self, executed: ExecutedFunction) -> FunctionKey | None:
        cache_key = (executed.path, executed.qualname, executed.line)
        if cache_key not in self._found:
            self._found[cache_key] = self._resolve(executed)
        return self._found[cache_key]

    def _resolve(self, executed: ExecutedFunction) -> FunctionKey | None:
        path, qualname = function_key(executed)
        if path not in self._spans:
            tree = self.index.tree(path)
            self._spans[path] = function_spans(tree) if tree is not None else []
        spans = self._spans[path]
        if any(span.qualname == qualname for span in spans):
            return path, qualname
        if not self._unchanged(path):
            return None
        holding = [s for s in spans if s.start_line <= executed.line <= s.end_line]
        best = min(holding, key=lambda s: s.end_line - s.start_line, default=None)
        return (path, best.qualname) if best is not None else None

    def _unchanged(self, path: str) -> bool:
        if path not in self._same:
            try:
                self._same[path] = self.index.source(path) == read_source(self.traced_root / path)
            except SourceError:
                self._same[path] = False
        return self._same[path]


def _discriminates(scores: Mapping[FunctionKey, FunctionScore]) -> bool:
    """Whether the spectrum tells functions apart (one failing test and no passing test that
    shares its code gives every function it ran the same score)."""
    return len({(round(s.ochiai, 9), s.failed) for s in scores.values()}) > 1


def _rank_by_spectrum(
    index: ProjectIndex,
    per_test: Sequence[tuple[TestCaseResult, list[Target]]],
    evidence: Sequence[FunctionKey],
    scores: Mapping[FunctionKey, FunctionScore],
    focus: str | None,
) -> list[FunctionKey]:
    """Executed functions by score, then failing tests reaching them, then crash frames, then
    callees before callers, then the file the user named, then the evidence ranking; the
    evidence's suspects no failing test executed come last, in their own order."""
    crashed: set[FunctionKey] = set()
    for case, _ in per_test:
        for frame in reversed(case.project_frames):
            if is_test_code(frame.path):
                continue
            target = index.target_at(frame.path, frame.line)
            if target is not None:
                crashed.add((target.path, target.qualname))
                break
    callers = _callers_among(index, list(scores))
    evidence_rank = {key: rank for rank, key in enumerate(evidence)}

    def group(key: FunctionKey) -> tuple[float, int]:
        return -round(scores[key].ochiai, 9), -scores[key].failed

    depth = {
        key: sum(1 for other in callers.get(key, ()) if group(other) == group(key))
        for key in scores
    }
    ranked = sorted(
        scores,
        key=lambda k: (
            *group(k),
            k not in crashed,
            -depth[k],
            k[0] != focus,
            evidence_rank.get(k, len(evidence)),
            k,
        ),
    )
    return ranked + [k for k in evidence if k not in scores]


def _callers_among(
    index: ProjectIndex, keys: Sequence[FunctionKey]
) -> dict[FunctionKey, set[FunctionKey]]:
    """For each function of `keys`, the others of `keys` that call it, directly or through
    each other (by the called name: `percent_of(...)`, `self.tax()`, `money.percent_of(...)`)."""
    by_name: dict[str, list[FunctionKey]] = {}
    for key in keys:
        by_name.setdefault(key[1].rsplit(".", 1)[-1], []).append(key)
    calls: dict[FunctionKey, set[FunctionKey]] = {}
    for key in keys:
        node = _function_node(index, key)
        names = set(_called_names(node)) if node is not None else set()
        calls[key] = {k for name in names for k in by_name.get(name, ()) if k != key}
    callers: dict[FunctionKey, set[FunctionKey]] = {key: set() for key in keys}
    for caller in keys:
        reached: set[FunctionKey] = set()
        queue = list(calls[caller])
        while queue:
            callee = queue.pop()
            if callee in reached or callee == caller:
                continue
            reached.add(callee)
            queue.extend(calls.get(callee, ()))
        for callee in reached:
            callers[callee].add(caller)
    return callers


def _function_node(index: ProjectIndex, key: FunctionKey) -> ast.AST | None:
    tree = index.tree(key[0])
    if tree is None:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == key[1]:
            return node
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if (
                    isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                    and f"{node.name}.{item.name}" == key[1]
                ):
                    return item
    return None


def _function_target(index: ProjectIndex, key: FunctionKey) -> Target | None:
    tree, src = index.tree(key[0]), index.source(key[0])
    if tree is None or src is None:
        return None
    span = next((s for s in function_spans(tree) if s.qualname == key[1]), None)
    return target_for_span(key[0], src, span) if span is not None else None


def _executed(
    case: TestCaseResult,
    spectrum: TestRunResult | None,
    key: FunctionKey,
    resolve: FunctionResolver,
) -> bool:
    """Whether the traced run shows `case` executing the function `key`."""
    if spectrum is None:
        return False
    traced = next((t for t in spectrum.tests if t.nodeid == case.nodeid), None)
    return traced is not None and any(resolve(e) == key for e in traced.executed)


def _unchanged(index: ProjectIndex, spectrum: TestRunResult | None, rel: str) -> bool:
    """Whether `rel` reads as it did in the traced run (else its line numbers moved)."""
    if spectrum is None:
        return False
    try:
        return index.source(rel) == read_source(spectrum.root / rel)
    except SourceError:
        return False


def _limit(targets: list[Target], max_lines: int = 160) -> list[Target]:
    chosen: list[Target] = []
    lines = 0
    for t in targets:
        size = t.end_line - t.start_line + 1
        if chosen and (len(chosen) >= MAX_TARGETS or lines + size > max_lines):
            break
        chosen.append(t)
        lines += size
    return chosen
