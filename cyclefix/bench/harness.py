"""Run a suite: round 0 one-shot, then the product's refine loop; every round scored, hidden.

Each run (task, sample) is one thread's job. Test runs are subprocesses, so `workers` threads run
tests in parallel; generation on a local model is serialized by a lock (llama.cpp runs one
request at a time and already uses every core). Lines are written when a run's rounds are
complete, so an interrupted bench resumes where it stopped.

The settings and what a rerun resumes from: bench.run_settings; the model's wrapper:
bench.generation_log.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from cyclefix.bench.generation_log import GenerationLog, attempt_stats, decode_seconds
from cyclefix.bench.prompt import (
    ANSWER_PREFIX,
    STOP_SEQUENCES,
    assemble_solution,
    generation_messages,
)
from cyclefix.bench.records import (
    RESULTS_FILE,
    ResultsWriter,
    RoundResult,
    RoundStatus,
    read_results,
)
from cyclefix.bench.run_settings import BenchSettings, check_run_settings
from cyclefix.bench.tasks import BenchTask
from cyclefix.bench.workspace import TaskWorkspace
from cyclefix.errors import CyclefixError
from cyclefix.models.backend import GenerationOptions, GenerationResult
from cyclefix.refine import (
    Backend,
    FixResult,
    ModelError,
    RefineConfig,
    TestRunResult,
    WarmWorkers,
    fix,
)


def select_tasks(
    tasks: Sequence[BenchTask],
    *,
    ids: Sequence[str] = (),
    limit: int | None = None,
    task_seed: int | None = None,
) -> list[BenchTask]:
    """Tasks by id, else a seeded random order when task_seed is given, then the first `limit`."""
    chosen = list(tasks)
    if ids:
        known = {t.task_id: t for t in tasks}
        missing = [i for i in ids if i not in known]
        if missing:
            raise CyclefixError(f"no such task: {', '.join(missing[:5])}")
        chosen = [known[i] for i in ids]
    elif task_seed is not None:
        random.Random(task_seed).shuffle(chosen)
    if limit is not None:
        if limit < 1:
            raise CyclefixError("--limit must be at least 1")
        chosen = chosen[:limit]
    return chosen


class BenchRun:
    """One model on one suite, writing to out_dir/results.jsonl."""

    def __init__(
        self,
        tasks: Sequence[BenchTask],
        backend: Backend,
        settings: BenchSettings,
        out_dir: Path,
        *,
        serialize_generation: bool = True,
    ) -> None:
        self.tasks = list(tasks)
        self.backend = backend
        self.model = backend.name
        self.settings = settings
        self.out_dir = out_dir
        self.lock = threading.Lock() if serialize_generation else None
        check_run_settings(out_dir, settings)
        self.results_path = out_dir / RESULTS_FILE
        self.existing: dict[tuple[str, int], dict[int, RoundResult]] = {}
        for r in read_results(self.results_path):
            if r.model == self.model:
                self.existing.setdefault((r.task_id, r.sample), {})[r.round] = r
        self.errors: list[str] = []

    def _complete(self, task: BenchTask, sample: int) -> bool:
        have = self.existing.get((task.task_id, sample), {})
        return all(k in have for k in range(self.settings.rounds + 1))

    def pending(self) -> list[tuple[BenchTask, int]]:
        return [
            (task, sample)
            for task in self.tasks
            for sample in range(self.settings.samples)
            if not self._complete(task, sample)
        ]

    def run(
        self,
        workers: int = 1,
        cancel: threading.Event | None = None,
        on_done: Callable[[BenchTask, int, list[RoundResult]], None] | None = None,
        on_error: Callable[[BenchTask, int, str], None] | None = None,
    ) -> list[RoundResult]:
        """Run every pending (task, sample); returns the new lines; stops early on cancel."""
        cancel = cancel or threading.Event()
        writer = ResultsWriter(self.results_path)
        new: list[RoundResult] = []
        fatal: list[BaseException] = []
        jobs = iter(self.pending())
        slots = max(1, workers)
        running: dict[Future[list[RoundResult]], tuple[BenchTask, int]] = {}

        def collect(future: Future[list[RoundResult]]) -> None:
            task, sample = running.pop(future)
            try:
                lines = future.result()
            except ModelError as exc:
                fatal.append(exc)
                cancel.set()
                return
            except Exception as exc:  # one task's harness failure must not end the run
                message = f"{type(exc).__name__}: {exc}"
                self.errors.append(f"{task.task_id}#{sample}: {message}")
                if on_error:
                    on_error(task, sample, message)
                return
            new.extend(lines)
            if on_done and lines:
                on_done(task, sample, lines)

        pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="bench")
        try:
            while True:
                while len(running) < slots and not cancel.is_set():
                    job = next(jobs, None)
                    if job is None:
                        break
                    running[pool.submit(self._run_one, job[0], job[1], writer, cancel)] = job
                if not running:
                    break
                done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    collect(future)
        except KeyboardInterrupt:
            # Stop generation and tests in flight, keep what finished, then let the caller know.
            cancel.set()
            for future in list(running):
                wait([future])
                collect(future)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            writer.close()
        if fatal:
            raise fatal[0]
        return new

    # -- one run -----------------------------------------------------------------------------

    def _line(
        self,
        task: BenchTask,
        sample: int,
        round_: int,
        status: RoundStatus,
        passed: bool,
        visible: bool | None,
        **fields: Any,
    ) -> RoundResult:
        return RoundResult(
            suite=self.settings.suite,
            model=self.model,
            task_id=task.task_id,
            sample=sample,
            round=round_,
            status=status,
            passed=passed,
            visible_passed=visible,
            **fields,
        )

    def _run_one(
        self, task: BenchTask, sample: int, writer: ResultsWriter, cancel: threading.Event
    ) -> list[RoundResult]:
        if cancel.is_set():
            return []
        slug = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.model)
        ws = TaskWorkspace(task, self.out_dir / "work" / slug / f"{task.slug}-s{sample}")
        log = GenerationLog(self.backend, self.lock)
        have = self.existing.get((task.task_id, sample), {})
        try:
            lines: list[RoundResult] = []
            first = have.get(0)
            visible_run: TestRunResult | None = None
            if first is None:
                first, visible_run = self._round_zero(task, sample, ws, log, cancel)
                if first is None:
                    return []
                writer.write([first])
                lines.append(first)
            else:
                ws.prepare(first.code if task.kind == "generate" else None)
                # A carried-over round 0 is judged by the suite's visible tests as they are now.
                visible_run = (
                    ws.check_visible(self._test_config()) if ws.has_visible_tests else None
                )
                if visible_run is not None and visible_run.cancelled:
                    return lines
                visible = visible_run.all_passed if visible_run is not None else None
                first = dataclasses.replace(first, visible_passed=visible)
            later = self._refine(task, sample, ws, log, first, visible_run, cancel)
            if later is None:
                return lines
            writer.write(later)
            return lines + later
        finally:
            if not self.settings.keep_work:
                ws.remove()
                for folder in (ws.root.parent, ws.root.parent.parent):
                    try:
                        folder.rmdir()  # only once empty: other workers may still use it
                    except OSError:
                        break

    def _test_config(self) -> RefineConfig:
        return RefineConfig(per_test_timeout=self.settings.per_test_timeout)

    def _round_zero(
        self,
        task: BenchTask,
        sample: int,
        ws: TaskWorkspace,
        log: GenerationLog,
        cancel: threading.Event,
    ) -> tuple[RoundResult | None, TestRunResult | None]:
        started = time.monotonic()
        config = self._test_config()
        gen: GenerationResult | None = None
        note = ""
        if task.kind == "generate":
            options = GenerationOptions(
                temperature=self.settings.first_temperature,
                top_p=0.95,
                max_tokens=self.settings.max_tokens,
                seed=self.settings.seed + sample,
                stop=STOP_SEQUENCES,
                answer_prefix=ANSWER_PREFIX,
            )
            gen = log.generate(generation_messages(task), options, cancel=cancel)
            if gen.finish_reason == "cancelled":
                return None, None
            solution, note = assemble_solution(task, gen.text)
            ws.prepare(solution)
            status: RoundStatus = "generated"
        else:
            ws.prepare(None)
            solution = ""
            status = "given"
        visible_run = ws.check_visible(config) if ws.has_visible_tests else None
        if visible_run is not None and visible_run.cancelled:
            return None, None
        seconds = time.monotonic() - started - sum(log.waits)
        hidden = ws.score()
        line = self._line(
            task,
            sample,
            0,
            status,
            hidden.all_passed,
            visible_run.all_passed if visible_run is not None else None,
            prompt_tokens=gen.prompt_tokens if gen else 0,
            completion_tokens=gen.completion_tokens if gen else 0,
            generation_seconds=round(gen.seconds, 3) if gen else 0.0,
            decode_seconds=round(decode_seconds(gen), 3) if gen else 0.0,
            seconds=round(seconds, 3),
            code=solution,
            note=note if note != "ok" else "",
            extra={"finish_reason": gen.finish_reason} if gen else {},
        )
        return line, visible_run

    def _refine(
        self,
        task: BenchTask,
        sample: int,
        ws: TaskWorkspace,
        log: GenerationLog,
        first: RoundResult,
        visible_run: TestRunResult | None,
        cancel: threading.Event,
    ) -> list[RoundResult] | None:
        rounds = range(1, self.settings.rounds + 1)
        if first.visible_passed is None or first.visible_passed:
            why = "no visible tests to learn from" if first.visible_passed is None else ""
            status: RoundStatus = "stopped" if first.visible_passed is None else "done"
            fix_status = "no_visible_tests" if first.visible_passed is None else "already_passing"
            return [
                self._line(
                    task,
                    sample,
                    k,
                    status,
                    first.passed,
                    first.visible_passed,
                    fix_status=fix_status,
                    note=why,
                )
                for k in rounds
            ]
        config = RefineConfig(
            rounds=self.settings.rounds,
            budget_seconds=self.settings.budget_seconds,
            seed=self.settings.seed + 1000 * sample,
            per_test_timeout=self.settings.per_test_timeout,
            # The CYCLE protocol: exactly `rounds` rounds, comparable with the paper's figures;
            # extended, as `cyclefix fix` runs.
            extend_to_budget=self.settings.extend_to_budget,
            agreement_answers=self.settings.agreement_answers,
        )
        log.clear()
        # As `cyclefix fix` runs them: the candidates' tests forked from a warm worker.
        with WarmWorkers() as warm:
            result = fix(
                ws.project, log, config=config, initial_run=visible_run, cancel=cancel, warm=warm
            )
        if result.status == "cancelled" or cancel.is_set():
            return None
        return self._round_lines(task, sample, ws, log, first, result)

    def _round_lines(
        self,
        task: BenchTask,
        sample: int,
        ws: TaskWorkspace,
        log: GenerationLog,
        first: RoundResult,
        result: FixResult,
    ) -> list[RoundResult]:
        attempts = result.attempts
        # One generation per generated attempt, in order (a part or a token edit has none);
        # without that pairing, attempt seconds stand in.
        generated = [a for a in attempts if a.generated]
        by_attempt: dict[int, tuple[GenerationResult | None, float]] = {
            id(a): (None, 0.0) for a in attempts
        }
        if len(log.calls) == len(generated):
            for a, g, w in zip(generated, log.calls, log.waits, strict=True):
                by_attempt[id(a)] = (g, w)
        last = self.settings.rounds
        fixed_round = (
            min(result.rounds[-1].index, last)
            if result.status == "fixed" and result.rounds
            else None
        )
        fixed_passed = False
        if fixed_round is not None:
            changed = ws.changed_files({c.path: c.fixed for c in result.changes})
            fixed_passed = ws.score(changed).all_passed
        overhead = max(0.0, result.seconds - sum(a.seconds for a in attempts))
        # The rounds past the last asked for (RefineConfig.extend_to_budget) count in its line.
        ran = {r.index: r.attempts for r in result.rounds if r.index < last}
        past = tuple(a for r in result.rounds if r.index >= last for a in r.attempts)
        if any(r.index >= last for r in result.rounds):
            ran[last] = past
        lines: list[RoundResult] = []
        for k in range(1, last + 1):
            record = ran.get(k)
            fixed_by_now = fixed_round is not None and k >= fixed_round
            passed = fixed_passed if fixed_by_now else first.passed
            if record is None:
                status: RoundStatus = "done" if fixed_by_now else "stopped"
                lines.append(
                    self._line(
                        task,
                        sample,
                        k,
                        status,
                        passed,
                        fixed_by_now,
                        fix_status=result.status,
                        note="; ".join(result.notes),
                        error=result.error or "",
                    )
                )
                continue
            stats = tuple(
                attempt_stats(a, *by_attempt[id(a)], fix=a is result.fixed_by) for a in record
            )
            seconds = sum(a.seconds for a in stats) + (overhead if k == 1 else 0.0)
            lines.append(
                self._line(
                    task,
                    sample,
                    k,
                    "fixed" if k == fixed_round else "refined",
                    passed,
                    fixed_by_now,
                    attempts=stats,
                    prompt_tokens=sum(a.prompt_tokens for a in stats),
                    completion_tokens=sum(a.completion_tokens for a in stats),
                    generation_seconds=round(sum(a.generation_seconds for a in stats), 3),
                    decode_seconds=round(sum(a.decode_seconds for a in stats), 3),
                    seconds=round(seconds, 3),
                    code=record[-1].code if record else "",
                    fix_status=result.status,
                    error=result.error or "",
                )
            )
        return lines
