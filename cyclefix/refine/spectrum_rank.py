"""Ranking suspects by a traced run: each function's spectrum score over failing and passing
tests, then crash frames, then callees before their callers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from cyclefix.refine.evidence import called_names
from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.source import (
    FunctionSpan,
    SourceError,
    function_spans,
    read_source,
    target_for_span,
)
from cyclefix.refine.spectrum import FunctionKey, FunctionScore, function_key, score_functions
from cyclefix.refine.types import Target
from cyclefix.runner.results import ExecutedFunction, TestCaseResult, TestRunResult
from cyclefix.runner.testfiles import is_test_code


def spectrum_scores(
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


def discriminates(scores: Mapping[FunctionKey, FunctionScore]) -> bool:
    """Whether the spectrum tells functions apart (one failing test and no passing test that
    shares its code gives every function it ran the same score)."""
    return len({(round(s.ochiai, 9), s.failed) for s in scores.values()}) > 1


def rank_by_spectrum(
    index: ProjectIndex,
    per_test: Sequence[tuple[TestCaseResult, list[Target]]],
    evidence: Sequence[FunctionKey],
    scores: Mapping[FunctionKey, FunctionScore],
    focus: str | None,
) -> list[FunctionKey]:
    """Where project code raised an exception a failing test caught and then inspected (its
    values were made there) first, then executed functions by score, then failing tests
    reaching them, then crash frames, then callees before callers, then the file the user
    named, then more lines run by failing tests (a one-line getter the assert calls is a
    smaller place for the fault), then the evidence ranking; the evidence's suspects no
    failing test executed come last, in their own order."""
    caught = caught_raise_sites(index, [case for case, _ in per_test])
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
            k not in caught,
            *group(k),
            k not in crashed,
            -depth[k],
            k[0] != focus,
            -scores[k].failing_lines,
            evidence_rank.get(k, len(evidence)),
            k,
        ),
    )
    return ranked + [k for k in evidence if k not in scores]


def caught_raise_sites(index: ProjectIndex, failures: Sequence[TestCaseResult]) -> set[FunctionKey]:
    """The functions where exceptions were raised that failing tests caught and inspected."""
    sites: set[FunctionKey] = set()
    for case in failures:
        for frame in case.caught_frames:
            target = index.target_at(frame.path, frame.line)
            if target is not None:
                sites.add((target.path, target.qualname))
    return sites


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
        node = index.function_node(*key)
        names = set(called_names(node)) if node is not None else set()
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


def function_target(index: ProjectIndex, key: FunctionKey) -> Target | None:
    tree, src = index.tree(key[0]), index.source(key[0])
    if tree is None or src is None:
        return None
    span = next((s for s in function_spans(tree) if s.qualname == key[1]), None)
    return target_for_span(key[0], src, span) if span is not None else None


def executed_by(
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


def unchanged_since_trace(index: ProjectIndex, spectrum: TestRunResult | None, rel: str) -> bool:
    """Whether `rel` reads as it did in the traced run (else its line numbers moved)."""
    if spectrum is None:
        return False
    try:
        return index.source(rel) == read_source(spectrum.root / rel)
    except SourceError:
        return False
