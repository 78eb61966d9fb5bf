"""Whose turn it is: the one suspect a round rewrites.

One function at a time keeps a small model's attention on it. The best suspect gets
FOCUS_ROUNDS rounds without progress (one round its time share cut short counts for all of
them: refine.schedule), then the others take their turns: first the function the
latest failure pointed at, then the suspects in rank order, then the helpers the best one calls
in other modules. A function whose rewrite was kept as progress keeps its turns first. Import-time errors in project code put where they raised first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence, Set

from cyclefix.refine.importtime import import_time_targets
from cyclefix.refine.localize import Localization
from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.related import function_target
from cyclefix.refine.types import Target
from cyclefix.runner.results import TestCaseResult

# Rounds on one target without progress before the next suspect gets its turn.
FOCUS_ROUNDS = 2


def choose_focus(
    loc: Localization,
    fruitless: dict[tuple[str, str], int],
    named_file: str | None = None,
    skip: Set[tuple[str, str]] = frozenset(),
    pointed: Target | None = None,
    reach: Sequence[Target] = (),
    progressed: Target | None = None,
) -> Localization | None:
    """The one target to rewrite this round: the best suspect not yet tried FOCUS_ROUNDS times.

    One function at a time keeps a small model's attention on it; several bugs are fixed one
    after another through the progress the loop keeps. When the best suspect is in the file the
    user named, turns stay in that file: the others are then mostly classes the test builds its
    inputs with (a graph's `Node`), rarely the bug. Once the best suspect had its turns, the
    function the latest failure pointed at (`pointed`) comes next, then the other suspects,
    then the helpers the best one calls in other files (`reach`). The function whose rewrite
    the loop kept because more tests passed (`progressed`) goes first while it has turns and
    the failures left still suspect it: on real libraries a half-fixed helper (an error
    turned into a wrong value) moved the new failures' evidence to its callers, where the
    bug was not. Suspects in `skip` (their
    prompt does not fit the model's window) are never chosen; None when that leaves none.
    """
    suspects: list[Target] = []
    for t in (*loc.targets, *reach, *([pointed] if pointed is not None else [])):
        key = (t.path, t.qualname)
        if key not in skip and all((s.path, s.qualname) != key for s in suspects):
            suspects.append(t)
    if not suspects:
        return None
    if named_file is not None and suspects[0].path == named_file:
        suspects = [t for t in suspects if t.path == named_file]
    turns_left = [t for t in suspects if fruitless.get((t.path, t.qualname), 0) < FOCUS_ROUNDS]
    if not turns_left:
        # Every suspect had its turns: start over with the best, counts forgotten.
        fruitless.clear()
        target = suspects[0]
    else:
        target = turns_left[0]
        kept = _among(turns_left, progressed)
        if kept is not None:
            target = kept
        elif target is not suspects[0]:
            target = _among(turns_left, pointed) or target
    primary = loc.blamed.get((target.path, target.qualname), loc.primary)
    return dataclasses.replace(loc, targets=(target,), primary=primary)


def _among(targets: Sequence[Target], wanted: Target | None) -> Target | None:
    """The target of `targets` that is `wanted` (same path and qualname), if any."""
    if wanted is None:
        return None
    return next(
        (t for t in targets if (t.path, t.qualname) == (wanted.path, wanted.qualname)), None
    )


def pointed_target(project: ProjectIndex, pointed: str) -> Target | None:
    """The function a "path::qualname" names, as the project now stands."""
    path, _, qualname = pointed.partition("::")
    return function_target(project, path, qualname) if qualname else None


def with_import_time_targets(
    loc: Localization, project: ProjectIndex, failures: Sequence[TestCaseResult]
) -> Localization:
    """`loc` with where import-time errors raised first, each blamed on its error."""
    raised = import_time_targets(project, failures)
    if not raised:
        return loc
    keys = {(t.path, t.qualname) for t in raised}
    targets = (*raised, *(t for t in loc.targets if (t.path, t.qualname) not in keys))
    blamed = dict(loc.blamed)
    for target in raised:
        case = next(
            c
            for c in failures
            if "::" not in c.nodeid
            and c.project_frames
            and c.project_frames[-1].path == target.path
        )
        blamed[(target.path, target.qualname)] = case
    primary = blamed[(targets[0].path, targets[0].qualname)]
    return dataclasses.replace(loc, targets=targets, primary=primary, blamed=blamed)
