"""Refine samples from seeded bugs: a reference solution with one mutation its tests catch.

Phase II (collect) needs the model to generate, which is slow on a CPU. Seeded bugs need only
the test runner: the faulty code is the reference with one AST mutation (bench's mutator), the
feedback is the product's own, and the target is the reference itself, one edit away. They
teach the small, located fix that real bug sets ask for.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cyclefix.bench.mutate import KINDS, Mutant, mutants
from cyclefix.errors import CyclefixError
from cyclefix.training.collect import problem_entry, refine_record, run_problem_tests
from cyclefix.training.mbpp import MbppProblem
from cyclefix.training.samples import TrainingRecord


@dataclass
class SeededStats:
    problems: int = 0
    mutants_tried: int = 0
    caught: int = 0  # mutants that made a test fail: each one is a refine sample
    survived: int = 0  # every test still passed, or it did not import: no bug to learn from
    records: int = 0


def seeded_records(
    problems: Sequence[MbppProblem],
    *,
    per_problem: int = 2,
    tries: int = 6,
    seed: int = 0,
    workers: int = 1,
    on_progress: Callable[[str], None] = print,
    on_records: Callable[[list[TrainingRecord]], None] | None = None,
) -> tuple[list[TrainingRecord], SeededStats]:
    """Up to `per_problem` refine records per problem, trying at most `tries` mutants each.

    Problems run `workers` at a time (each test run is its own process); records come back in
    problem order whatever the number of workers.
    """
    if per_problem < 1 or tries < 1 or workers < 1:
        raise CyclefixError("--per-problem, --tries and --workers must be at least 1")
    stats = SeededStats()
    records: list[TrainingRecord] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(_problem_records, problem, per_problem, tries, seed) for problem in problems
        ]
        for problem, future in zip(problems, futures, strict=True):
            made, tried, caught = future.result()
            stats.problems += 1
            stats.mutants_tried += tried
            stats.caught += caught
            stats.survived += tried - caught
            stats.records += len(made)
            records.extend(made)
            if on_records is not None:
                on_records(made)
            on_progress(
                f"mbpp:{problem.task_id}: {len(made)} seeded bugs; {stats.records} refine so far"
            )
    return records, stats


def _problem_records(
    problem: MbppProblem, per_problem: int, tries: int, seed: int
) -> tuple[list[TrainingRecord], int, int]:
    """The problem's refine records, mutants tried and mutants its tests caught."""
    from cyclefix.bench.prompt import with_docstring

    entry = problem_entry(problem)
    found = mutants(problem.code)
    random.Random(f"{seed}:{problem.task_id}").shuffle(found)  # the same picks in any order
    # The target keeps the docstring the faulty code shows: the one edit is the only difference.
    reference = with_docstring(problem.code, entry, problem.text.strip())
    made: list[TrainingRecord] = []
    tried = caught = 0
    for mutant in kinds_in_turn(found)[:tries]:
        if len(made) >= per_problem:
            break
        tried += 1
        solution = with_docstring(mutant.source, entry, problem.text.strip())
        run = run_problem_tests(problem, solution)
        if run.collection_errors or not run.failures:
            continue  # survived (or does not import): no bug to learn from
        caught += 1
        record = refine_record(
            problem, solution, run, [reference], f"mbpp:{problem.task_id}:{mutant.kind}"
        )
        if record is not None:
            made.append(record)
    return made, tried, caught


def kinds_in_turn(found: Sequence[Mutant]) -> list[Mutant]:
    """One mutant of each kind, then the next of each: a problem's samples teach different fixes."""
    queues = [[m for m in found if m.kind == kind] for kind in KINDS]
    ordered: list[Mutant] = []
    for depth in range(max((len(q) for q in queues), default=0)):
        ordered.extend(q[depth] for q in queues if depth < len(q))
    return ordered
