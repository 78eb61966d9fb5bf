"""The bench's view of the model: generation serialized across workers, each call kept, and
what each refine attempt cost."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any

from cyclefix.bench.records import AttemptStats
from cyclefix.models.backend import (
    ChatMessage,
    Fork,
    ForksCheck,
    GenerationOptions,
    GenerationResult,
    TextCallback,
    TextCheck,
)
from cyclefix.refine import Attempt, Backend
from cyclefix.refine.report import run_phases


class GenerationLog:
    """A Backend wrapper: serializes generation when asked and keeps every call's result."""

    def __init__(self, inner: Backend, lock: threading.Lock | None) -> None:
        self.inner = inner
        self.lock = lock
        self.calls: list[GenerationResult] = []
        # Seconds each call waited for another worker's generation: not this task's time.
        self.waits: list[float] = []

    @property
    def name(self) -> str:
        return self.inner.name

    def clear(self) -> None:
        self.calls.clear()
        self.waits.clear()

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
        until: TextCheck | None = None,
    ) -> GenerationResult:
        queued = time.monotonic()
        if self.lock is None:
            waited = 0.0
            result = self.inner.generate(
                messages, options, on_text=on_text, cancel=cancel, until=until
            )
        else:
            with self.lock:
                waited = time.monotonic() - queued
                result = self.inner.generate(
                    messages, options, on_text=on_text, cancel=cancel, until=until
                )
        self.calls.append(result)
        self.waits.append(waited)
        return result

    def forks_along(
        self,
        messages: Sequence[ChatMessage],
        answer_prefix: str,
        continuation: str,
        *,
        cancel: threading.Event | None = None,
        enough: ForksCheck | None = None,
    ) -> tuple[Fork, ...] | None:
        with self.lock or contextlib.nullcontext():
            return self.inner.forks_along(
                messages, answer_prefix, continuation, cancel=cancel, enough=enough
            )

    def close(self) -> None:
        """The shared backend is closed by whoever opened it."""

    def __getattr__(self, name: str) -> Any:
        # The inner backend's window and token count, when it has them: prompts are fitted
        # to the window (refine.fit) in the bench as in `cyclefix fix`.
        if name in ("n_ctx", "count_tokens"):
            return getattr(self.inner, name)
        raise AttributeError(name)


def decode_seconds(gen: GenerationResult) -> float:
    return max(0.0, gen.seconds - gen.prompt_seconds)


def attempt_stats(
    attempt: Attempt, gen: GenerationResult | None, waited: float, *, fix: bool = False
) -> AttemptStats:
    # Unpaired with its generation, the attempt's seconds stand in (a partial one generated none).
    untimed = attempt.seconds if attempt.generated else 0.0
    return AttemptStats(
        verdict=attempt.verdict,
        copy=attempt.is_copy,
        temperature=attempt.temperature,
        prompt_tokens=attempt.prompt_tokens,
        completion_tokens=attempt.completion_tokens,
        seconds=round(max(0.0, attempt.seconds - waited), 3),
        generation_seconds=round(gen.seconds if gen else untimed, 3),
        decode_seconds=round(decode_seconds(gen) if gen else untimed, 3),
        tests_passed=attempt.tests_passed,
        tests_total=attempt.tests_total,
        forked=attempt.forked,
        partial=attempt.partial,
        token_edit=attempt.token_edit,
        score_s=round(attempt.score_s, 3),
        prompt_eval_s=round(attempt.prompt_eval_s, 3),
        prompt_tokens_cached=attempt.prompt_tokens_cached,
        generate_s=round(attempt.generate_s, 3),
        completion_tokens_replayed=attempt.completion_tokens_replayed,
        tests_s=round(attempt.tests_s, 3),
        tests_phases=run_phases(attempt.tests_phases),
        fix=fix,
        code=attempt.code if attempt.verdict == "passed" else "",
    )
