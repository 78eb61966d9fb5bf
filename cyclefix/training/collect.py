"""CYCLE phase II: sample the model on problems with tests, execute, and keep what it teaches.

A passing sample stays a plain sample (description -> code). A failing one becomes a refine
sample: the product's own refinement prompt (intent, faulty code, feedback of the first failing
test) -> the correct solution nearest to the faulty code under BM25, among the reference
solution and the model's passing samples for that problem.
"""

from __future__ import annotations

import ast
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cyclefix.errors import CyclefixError
from cyclefix.models.backend import Backend, GenerationOptions
from cyclefix.runner.results import TestRunResult
from cyclefix.training.mbpp import MbppProblem
from cyclefix.training.samples import Span, TrainingRecord, fenced, spans_in_refine_message

SOLUTION_FILE = "solution.py"
TEST_FILE = "test_mbpp.py"


@dataclass
class CollectStats:
    problems: int = 0
    samples: int = 0
    passing: int = 0
    failing: int = 0
    unusable: int = 0  # no code block or a syntax error: nothing to refine
    plain_records: int = 0
    refine_records: int = 0
    generation_seconds: float = 0.0
    per_problem: list[dict[str, object]] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return self.passing / self.samples if self.samples else 0.0


def code_tokens(code: str) -> list[str]:
    """BM25 terms: identifiers, numbers and single punctuation marks."""
    return re.findall(r"\w+|[^\w\s]", code)


def nearest_solution(faulty: str, candidates: Sequence[str]) -> str:
    """The candidate closest to `faulty` under BM25 (BM25+), as CYCLE chooses refine targets."""
    if not candidates:
        raise CyclefixError("no correct solution to pair with a failing sample")
    if len(candidates) == 1:
        return candidates[0]
    from rank_bm25 import BM25Plus

    # BM25+ keeps IDF positive on a corpus of two or three candidates, where Okapi zeroes it.
    index = BM25Plus([code_tokens(c) for c in candidates])
    scores = index.get_scores(code_tokens(faulty))
    best = max(range(len(candidates)), key=lambda i: (float(scores[i]), -i))
    return candidates[best]


def mbpp_test_module(problem: MbppProblem) -> str:
    """All of the problem's asserts, one pytest test each (training problems: all may be seen)."""
    parts = ["import math  # noqa: F401", "", "from solution import *  # noqa: F403"]
    if problem.test_setup_code.strip():
        parts += ["", problem.test_setup_code.strip()]
    for number, line in enumerate(problem.test_list, start=1):
        parts += ["", "", f"def test_assert_{number}():", f"    {line.strip()}"]
    return "\n".join(parts) + "\n"


@dataclass(frozen=True)
class _Sample:
    solution: str  # solution.py as run
    answer_code: str  # the code of the model's answer
    status: str  # ok / no_code / syntax_error
    passed: bool
    run: TestRunResult | None


def collect(
    problems: Sequence[MbppProblem],
    backend: Backend,
    *,
    samples: int = 1,
    temperature: float | None = None,
    seed: int = 0,
    max_tokens: int = 512,
    reference_plain: bool = True,
    on_progress: Callable[[str], None] = print,
    on_records: Callable[[list[TrainingRecord]], None] | None = None,
) -> tuple[list[TrainingRecord], CollectStats]:
    """Plain and refine records for `problems`, sampling `backend` `samples` times each."""
    from cyclefix.bench.mbpp import mbpp_prompt, signature_of
    from cyclefix.bench.prompt import (
        ANSWER_PREFIX,
        STOP_SEQUENCES,
        answer_code,
        assemble_solution,
        generation_messages,
        round_zero_answer,
    )
    from cyclefix.bench.tasks import BenchTask

    stats = CollectStats()
    records: list[TrainingRecord] = []
    temp = temperature if temperature is not None else (0.2 if samples == 1 else 0.8)
    for problem in problems:
        stats.problems += 1
        entry = problem_entry(problem)
        task = BenchTask(
            task_id=f"MBPP/{problem.task_id}",
            kind="generate",
            prompt=mbpp_prompt(problem.text, problem.test_list[:1], entry),
            entry_point=entry,
            description=problem.text.strip(),
            fallback_signature=signature_of(problem.code, entry),
        )
        messages = tuple(generation_messages(task))
        drawn: list[_Sample] = []
        for k in range(samples):
            options = GenerationOptions(
                temperature=temp,
                top_p=0.95,
                max_tokens=max_tokens,
                seed=seed * 1000 + problem.task_id * 10 + k,
                stop=STOP_SEQUENCES,
                answer_prefix=ANSWER_PREFIX,
            )
            result = backend.generate(messages, options)
            stats.generation_seconds += result.seconds
            solution, status = assemble_solution(task, result.text)
            code = answer_code(result.text) or ""
            if status != "ok":
                stats.unusable += 1
                drawn.append(_Sample(solution, code, status, False, None))
                continue
            run = run_problem_tests(problem, solution)
            drawn.append(_Sample(solution, code, status, run.all_passed, run))
        stats.samples += len(drawn)
        passing = [d for d in drawn if d.passed]
        failing = [d for d in drawn if d.status == "ok" and not d.passed]
        stats.passing += len(passing)
        stats.failing += len(failing)
        source = f"mbpp:{problem.task_id}"
        found: list[TrainingRecord] = []
        correct = list(dict.fromkeys([problem.code, *(d.answer_code for d in passing)]))
        plain_targets = list(dict.fromkeys(d.answer_code for d in passing))
        if reference_plain and problem.code not in plain_targets:
            plain_targets.append(problem.code)
        for code in plain_targets:
            found.append(
                TrainingRecord(
                    "plain",
                    messages,
                    round_zero_answer(code),
                    description=problem.text.strip(),
                    solution=code,
                    source=source,
                )
            )
            stats.plain_records += 1
        for sample in failing:
            if sample.run is None:
                continue
            record = refine_record(problem, sample.solution, sample.run, correct, source)
            if record is not None:
                found.append(record)
                stats.refine_records += 1
        records.extend(found)
        if on_records is not None:
            on_records(found)  # written as they come: a long run interrupted keeps what it made
        stats.per_problem.append(
            {
                "task_id": problem.task_id,
                "samples": len(drawn),
                "passing": len(passing),
                "failing": len(failing),
            }
        )
        on_progress(
            f"{source}: {len(passing)}/{len(drawn)} passing; {stats.refine_records} refine, "
            f"{stats.plain_records} plain so far"
        )
    return records, stats


def problem_entry(problem: MbppProblem) -> str:
    """The function the problem's asserts call, found as the bench finds it."""
    from cyclefix.bench.mbpp import entry_point

    try:
        return entry_point(problem.code, problem.test_list)
    except CyclefixError:
        return problem.entry_point


def run_problem_tests(problem: MbppProblem, solution: str) -> TestRunResult:
    """`solution` as solution.py against all of the problem's asserts, in a throwaway folder."""
    from cyclefix.refine import check

    with tempfile.TemporaryDirectory(prefix="cyclefix-collect-") as tmp:
        root = Path(tmp)
        (root / SOLUTION_FILE).write_text(solution, encoding="utf-8")
        (root / TEST_FILE).write_text(mbpp_test_module(problem), encoding="utf-8")
        (root / "pyproject.toml").write_text("", encoding="utf-8")  # marks the project root
        return check(root)


def refine_record(
    problem: MbppProblem, solution: str, run: TestRunResult, correct: Sequence[str], source: str
) -> TrainingRecord | None:
    """The refinement prompt the product would build for this failing run, and its target."""
    from cyclefix.refine import feedback_text, suspects
    from cyclefix.refine.prompt import RefinePrompt, build_refine_messages, other_failure_names
    from cyclefix.refine.source import module_context

    if not run.failures:
        return None  # e.g. a collection error alone: no test to take feedback from
    primary = run.failures[0]
    targets = [t for t in suspects(run) if t.path == SOLUTION_FILE and t.qualname != "<module>"]
    faulty = "\n".join(t.source.rstrip() for t in targets) + "\n" if targets else solution
    context = ""
    if targets:
        try:
            context = module_context(solution, ast.parse(solution), {t.qualname for t in targets})
        except SyntaxError:
            context = ""
    feedback = feedback_text(primary)
    prompt = RefinePrompt(
        names=tuple(t.qualname for t in targets) or (SOLUTION_FILE,),
        faulty_code=faulty,
        feedback=feedback,
        test_source=primary.test_source or primary.assert_source or "",
        context=context,
        path=SOLUTION_FILE,
        other_failures=other_failure_names([t.nodeid for t in run.failures], primary.nodeid),
    )
    messages = tuple(build_refine_messages(prompt))
    user = next(i for i, m in enumerate(messages) if m.role == "user")
    spans = spans_in_refine_message(messages[user].content, faulty, feedback, problem.text)
    target_code = nearest_solution(faulty, correct)
    return TrainingRecord(
        "refine",
        messages,
        fenced(target_code),
        tuple(Span(user, s, e) for s, e in spans),
        description=problem.text.strip(),
        faulty_code=faulty,
        feedback=feedback,
        solution=target_code,
        source=source,
    )


def reference_records(problems: Sequence[MbppProblem]) -> list[TrainingRecord]:
    """CYCLE phase I data: each problem's reference solution as a plain sample, no model needed."""
    from cyclefix.bench.mbpp import mbpp_prompt, signature_of
    from cyclefix.bench.prompt import generation_messages, round_zero_answer
    from cyclefix.bench.tasks import BenchTask

    records = []
    for problem in problems:
        entry = problem_entry(problem)
        task = BenchTask(
            task_id=f"MBPP/{problem.task_id}",
            kind="generate",
            prompt=mbpp_prompt(problem.text, problem.test_list[:1], entry),
            entry_point=entry,
            description=problem.text.strip(),
            fallback_signature=signature_of(problem.code, entry),
        )
        records.append(
            TrainingRecord(
                "plain",
                tuple(generation_messages(task)),
                round_zero_answer(problem.code),
                description=problem.text.strip(),
                solution=problem.code,
                source=f"mbpp:{problem.task_id}",
            )
        )
    return records
