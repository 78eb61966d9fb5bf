"""Spectrum-based fault localization: which project functions and lines the failing tests ran.

From a traced run (each test's executed functions and lines), a function's Ochiai score is
ef / sqrt(F * (ef + ep)): ef failing and ep passing tests executed it, of F failing tests in
all. 1.0 means every failing test and no passing one ran it. The same score over single lines
points at the suspicious lines inside a function, and a function scores as its best line when
that is higher (a wrong branch that only failing tests take, in a function every test calls):
on 25 bugs seeded in five libraries (benchmarks/projects) the faulty function ranked first in
22 this way, 21 by the function's own score, 16 by tracebacks and asserts alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from cyclefix.runner.results import ExecutedFunction, TestCaseResult

# (project-relative path, qualname of the top-level function or method)
FunctionKey = tuple[str, str]
# At most this many suspicious lines are named inside one function.
MAX_SUSPICIOUS_LINES = 5
# At most this many of its lines, best scored first, are kept with their scores (token edits).
MAX_SCORED_LINES = 12


@dataclass(frozen=True)
class FunctionScore:
    """How suspicious one function is, by the tests that executed it."""

    key: FunctionKey
    ochiai: float  # the function's own score, or its best line's when higher
    failed: int  # failing tests that executed it (ef)
    passed: int  # passing tests that executed it (ep)
    # Its lines that failing tests executed, most suspicious first (at most a few).
    lines: tuple[int, ...] = ()
    # Whether those are all the lines failing tests ran in it (the lines tell nothing apart).
    lines_tied: bool = False
    # The lines failing tests ran in it with their scores, best first (at most a dozen).
    scored_lines: tuple[tuple[int, float], ...] = ()
    # How many of its lines failing tests executed (more code run, more places for the fault).
    failing_lines: int = 0


def ochiai(failed: int, passed: int, total_failed: int) -> float:
    """ef / sqrt(F * (ef + ep)); 0 when no failing test executed it."""
    if failed <= 0 or total_failed <= 0:
        return 0.0
    return failed / math.sqrt(total_failed * (failed + passed))


def function_key(executed: ExecutedFunction) -> FunctionKey:
    """The top-level function or method a traced code object belongs to: a comprehension,
    lambda or nested function counts for the function that holds it."""
    return executed.path, executed.qualname.split(".<locals>", 1)[0]


def score_functions(
    tests: Sequence[TestCaseResult],
    failing: Iterable[str],
    key_of: Callable[[ExecutedFunction], FunctionKey | None] = function_key,
) -> dict[FunctionKey, FunctionScore]:
    """Scores of every function a failing test executed (`failing`: their node ids; the other
    executed tests of `tests` count as passing). `key_of` names the function a traced code
    object belongs to, None for none of the project as it stands (renamed since, a nested
    class's method)."""
    failing_ids = set(failing)
    ran = [t for t in tests if t.outcome != "skipped"]
    total_failed = sum(1 for t in ran if t.nodeid in failing_ids)
    function_counts: dict[FunctionKey, list[int]] = {}
    line_counts: dict[FunctionKey, dict[int, list[int]]] = {}
    for test in ran:
        slot = 0 if test.nodeid in failing_ids else 1
        seen: set[FunctionKey] = set()
        seen_lines: set[tuple[FunctionKey, int]] = set()
        for executed in test.executed:
            key = key_of(executed)
            if key is None:
                continue
            if key not in seen:
                seen.add(key)
                function_counts.setdefault(key, [0, 0])[slot] += 1
            for line in executed.lines:
                if (key, line) not in seen_lines:
                    seen_lines.add((key, line))
                    line_counts.setdefault(key, {}).setdefault(line, [0, 0])[slot] += 1
    scores: dict[FunctionKey, FunctionScore] = {}
    for key, (failed, passed) in function_counts.items():
        if failed == 0:
            continue
        counts = line_counts.get(key, {})
        lines = _suspicious_lines(counts, total_failed)
        tied = len(lines) == sum(1 for f, _ in counts.values() if f > 0)
        line_best = max((ochiai(f, p, total_failed) for f, p in counts.values() if f), default=0.0)
        score = max(ochiai(failed, passed, total_failed), line_best)
        scored_lines = _scored_lines(counts, total_failed)
        failing_lines = sum(1 for f, _ in counts.values() if f > 0)
        scores[key] = FunctionScore(
            key, score, failed, passed, lines, tied, scored_lines, failing_lines
        )
    return scores


def _scored_lines(counts: dict[int, list[int]], total_failed: int) -> tuple[tuple[int, float], ...]:
    """The lines failing tests ran with their Ochiai scores, best first (then in line order)."""
    scored = [(line, ochiai(f, p, total_failed)) for line, (f, p) in counts.items() if f > 0]
    return tuple(sorted(scored, key=lambda item: (-item[1], item[0]))[:MAX_SCORED_LINES])


def _suspicious_lines(counts: dict[int, list[int]], total_failed: int) -> tuple[int, ...]:
    """The lines with the best Ochiai score in a function, in line order."""
    scored = {line: ochiai(f, p, total_failed) for line, (f, p) in counts.items() if f > 0}
    if not scored:
        return ()
    best = max(scored.values())
    top = sorted(line for line, score in scored.items() if math.isclose(score, best))
    return tuple(top[:MAX_SUSPICIOUS_LINES])
