"""Replaying a scored answer: the steps a generation shares with the copy scored before it,
drawn from logits already computed instead of evaluated one token at a time.

Scoring a copy (`forks_along`) reads the faulty code as the answer in batches and keeps, per
token, the sampler's best candidates. The generation that follows under the same prompt
mostly writes that code back up to the fix, and each of those steps would evaluate one token
to get logits the scoring already had. Drawing those steps from the kept candidates, with
llama.cpp's sampler chain (top-k, top-p, min-p on the raw logits, then the temperature), gives
answers with the same distribution; the model evaluates only from the first token that leaves
the copy. On a CPU a step costs as much as reading several prompt tokens, so a fix that
changes the last lines of a function skips most of its generation.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from cyclefix.models.backend import (
    GenerationOptions,
    TextCallback,
    TextCheck,
    chain_chances,
)


@dataclass(frozen=True)
class ScoredRow:
    """The sampler's best candidates at one step of a scored answer: token ids and their raw
    logits, best first."""

    ids: tuple[int, ...]
    logits: tuple[float, ...]


@dataclass(frozen=True)
class ScoredAnswer:
    """A copy as the scoring read it: `rows[i]` holds the candidates for the copy's token
    `answer[i]` after `prompt + answer[:i]`. The KV cache held `prompt + answer[:len(rows) - 1]`
    when the scoring ended (its last token is never evaluated: nothing needs its logits)."""

    prompt: tuple[int, ...]
    answer: tuple[int, ...]
    rows: tuple[ScoredRow, ...]

    @property
    def tokens(self) -> tuple[int, ...]:
        """What the KV cache held when the scoring ended."""
        return self.prompt + self.answer[: len(self.rows) - 1]


def draw(row: ScoredRow, temperature: float, top_p: float, rng: random.Random) -> int:
    """One token sampled from `row` as the sampler chain would."""
    chances = chain_chances(row.logits, temperature, top_p)
    return rng.choices(row.ids, chances)[0]


def replay_start(scored: ScoredAnswer, prompt: Sequence[int]) -> int | None:
    """Where a generation after `prompt` enters the scored copy: the index of the row that
    chooses its first token; None when `prompt` is not the scored prompt followed by the
    start of the copy (another prompt, or an answer prefix that leaves the copy)."""
    start = len(prompt) - len(scored.prompt)
    if start < 0 or start >= len(scored.rows):
        return None
    if tuple(prompt[: len(scored.prompt)]) != scored.prompt:
        return None
    if tuple(prompt[len(scored.prompt) :]) != scored.answer[:start]:
        return None
    return start


def replay(
    scored: ScoredAnswer,
    start: int,
    temperature: float,
    top_p: float,
    rng: random.Random,
    stop_at: frozenset[int] = frozenset(),
) -> list[int]:
    """Tokens drawn from the rows from `start` on while they follow the copy: every one but
    the last is the copy's; the last leaves it, is in `stop_at` (end of turn), or takes the
    copy's token of the last row."""
    drawn: list[int] = []
    for index in range(start, len(scored.rows)):
        token = draw(scored.rows[index], temperature, top_p, rng)
        drawn.append(token)
        if token != scored.answer[index] or token in stop_at:
            break
    return drawn


def whole_text(data: bytes) -> bool:
    """Whether `data` is UTF-8 that ends on a character's end."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class AnswerText:
    """An answer's text as it streams: the answer prefix, the steps drawn from a scored copy,
    then the model's pieces. It ends at a stop sequence after the prefix (cut there, as
    llama.cpp cuts its own; one may span the drawn steps and the model's first piece, which
    llama.cpp alone does not see), or once `until` holds."""

    def __init__(
        self, options: GenerationOptions, on_text: TextCallback | None, until: TextCheck | None
    ) -> None:
        self.stops = options.stop
        self.on_text = on_text
        self.until = until
        self.text = ""
        self.ended = False
        self._after_prefix = len(options.answer_prefix)
        self._longest_stop = max((len(stop) for stop in options.stop), default=0)

    def add(self, piece: str, *, check: bool = True) -> None:
        """Append `piece` (the prefix with `check` off: stops and `until` do not apply)."""
        if self.ended or not piece:
            return
        before = len(self.text)
        self.text += piece
        if check:
            # The text before `piece` held no stop: only one ending in `piece` is new.
            start = max(self._after_prefix, before - self._longest_stop + 1)
            found = [at for stop in self.stops if (at := self.text.find(stop, start)) >= 0]
            if found:
                self.text = self.text[: min(found)]
                self.ended = True
        if self.on_text is not None:
            self.on_text(piece)
        if check and not self.ended and self.until is not None and self.until(self.text):
            self.ended = True
