"""A scripted model that also reports forks, as llama.cpp does where it nearly chose another token."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

from cyclefix.models.backend import (
    ChatMessage,
    Fork,
    ForksCheck,
    GenerationOptions,
    GenerationResult,
    TextCallback,
    TextCheck,
)
from cyclefix.models.scripted import ScriptedBackend


class ForkingScriptedBackend(ScriptedBackend):
    """Scripted replies; an answer asked for forks reports them, as llama.cpp does where the
    model nearly chose another token: at the last `marker` of each `(marker, alternative,
    margin)` in `forks` that the answer holds."""

    def __init__(
        self,
        replies: list[str],
        forks: list[tuple[str, str, float]],
        scores: list[tuple[str, str, float]] | None = None,
        unscored: int = 0,
    ) -> None:
        super().__init__(replies)
        self.fork_spec = forks
        # Forks along a given answer (forks_along), as llama.cpp scores them; None: no logits.
        self.score_spec = scores
        # The first `unscored` scorings find no fork: those rounds sample.
        self.unscored = unscored
        self.scored: list[str] = []
        self.stopped_early: list[bool] = []

    def forks_along(
        self,
        messages: Sequence[ChatMessage],
        answer_prefix: str,
        continuation: str,
        *,
        cancel: threading.Event | None = None,
        enough: ForksCheck | None = None,
    ) -> tuple[Fork, ...] | None:
        if self.score_spec is None:
            return None
        text = answer_prefix + continuation
        self.scored.append(text)
        if len(self.scored) <= self.unscored:
            return ()
        all_forks = sorted(
            (Fork(text.rindex(m), a, margin) for m, a, margin in self.score_spec if m in text),
            key=lambda fork: fork.offset,
        )
        forks: list[Fork] = []
        for fork in all_forks:  # one token at a time, as if every chunk were one token
            if enough is not None and enough(forks):
                break
            forks.append(fork)
        self.stopped_early.append(len(forks) < len(all_forks))
        return tuple(forks)

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
        until: TextCheck | None = None,
    ) -> GenerationResult:
        result = super().generate(messages, options, on_text=on_text, cancel=cancel, until=until)
        if not options.record_forks:
            return result
        text = result.text
        forks = tuple(
            Fork(text.rindex(m), a, margin) for m, a, margin in self.fork_spec if m in text
        )
        return dataclasses.replace(result, forks=forks)
