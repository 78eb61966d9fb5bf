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
it missed follow. An untraced run keeps the evidence ranking, with a note. A function that
only raises comes last: its callers chose to fail. At most MAX_TARGETS suspects, of any size.

The parts: refine.project_index (the parsed modules), refine.evidence (one failing test's
suspects), refine.spectrum_rank (the traced run's ranking); here they are combined.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cyclefix.refine.evidence import suspects_for_test
from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.source import (
    called_functions,
    function_spans,
    target_for_span,
)
from cyclefix.refine.spectrum import FunctionScore
from cyclefix.refine.spectrum_rank import (
    FunctionResolver,
    discriminates,
    executed_by,
    function_target,
    rank_by_spectrum,
    spectrum_scores,
    unchanged_since_trace,
)
from cyclefix.refine.types import Target
from cyclefix.runner.results import TestCaseResult, TestRunResult

# At most this many suspects are ranked, whatever their size; the loop rewrites one at a
# time, best first (refine.turns).
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
    # Each suspect's lines the failing tests ran, with their scores, best first: where token
    # edits are tried, the less suspicious ones later (refine.suspicious_lines.edit_lines).
    scored_lines: Mapping[tuple[str, str], tuple[tuple[int, float], ...]] = field(
        default_factory=dict
    )
    # How the ranking was made when it could not use execution (an untraced run).
    notes: tuple[str, ...] = ()


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
    scores, notes = spectrum_scores(index, failures, spectrum)
    # Suspicious lines need only the lines to differ, even where the functions tie; token
    # edits take every line failing tests ran, tied or not (refine.suspicious_lines).
    line_scores, edit_scores = dict(scores), scores
    blamed_by_trace: dict[tuple[str, str], TestCaseResult] = {}
    if scores and spectrum is not None:
        resolve = FunctionResolver(index, spectrum.root)
        if discriminates(scores):
            ordered = rank_by_spectrum(index, per_test, ordered, scores, focus)
        else:  # every executed function scores the same: the evidence orders, the rest follow
            ordered = [*ordered, *sorted(k for k in scores if k not in ordered)]
            line_scores = {k: v for k, v in scores.items() if not v.lines_tied}
            scores = {}
        for key in ordered:
            if key not in by_key:
                target = function_target(index, key)
                if target is None:
                    continue
                by_key[key] = target
            case = next((c for c in failures if executed_by(c, spectrum, key, resolve)), None)
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
    # A whole module swallows the other suspects of its file where it leads; behind functions
    # of its file (the evidence's last resort, outranked by the trace) it is the one dropped.
    first_in_file: dict[str, Target] = {}
    for t in targets:
        first_in_file.setdefault(t.path, t)
    module_paths = {path for path, t in first_in_file.items() if t.qualname == "<module>"}
    targets = [t for t in targets if (t.qualname == "<module>") == (t.path in module_paths)]
    # A function that only raises is the messenger: the failing tests reach it because their
    # caller decided to fail (pathspec's `assert_unreachable`), so it goes last.
    messengers = [t for t in targets if _only_raises(index, t)]
    targets = [t for t in targets if t not in messengers] + messengers
    chosen = targets[:MAX_TARGETS]
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
    current = {
        key: score
        for key, score in edit_scores.items()
        if key in chosen_keys and unchanged_since_trace(index, spectrum, key[0])
    }
    return Localization(
        tuple(chosen),
        primary,
        blamed,
        {k: v for k, v in scores.items() if k in chosen_keys},
        lines={k: s.lines for k, s in current.items() if k in line_scores and s.lines},
        notes=notes,
        scored_lines={k: score.scored_lines for k, score in current.items() if score.scored_lines},
    )


def _only_raises(index: ProjectIndex, target: Target) -> bool:
    """Whether the function's body, past its docstring, is one `raise` (or `assert False`)."""
    node = index.function_node(target.path, target.qualname)
    if node is None:
        return False
    body = node.body[1:] if ast.get_docstring(node) is not None else node.body
    if len(body) != 1:
        return False
    stmt = body[0]
    return isinstance(stmt, ast.Raise) or (
        isinstance(stmt, ast.Assert) and isinstance(stmt.test, ast.Constant) and not stmt.test.value
    )
