"""The backend protocol: chat messages in, streamed text out, with counts and timings."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerationOptions:
    temperature: float = 0.2
    top_p: float = 0.95
    max_tokens: int = 1024
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # The answer starts with this text. Backends that can continue a started answer (llama.cpp)
    # do, and their result's text includes it; others (HTTP, scripted) answer from scratch.
    answer_prefix: str = ""
    # Report where the model nearly chose another token (see Fork); backends that do not see
    # the logits (HTTP, scripted) report none.
    record_forks: bool = False


@dataclass(frozen=True)
class Choice:
    """A token the sampler could have taken instead of the chosen one."""

    text: str  # empty for a special token (end of turn)
    gap: float  # its logit minus the chosen token's


@dataclass(frozen=True)
class Fork:
    """A point where the answer could have gone another way: the runner-up token there."""

    offset: int  # characters of the result's text before the token that was chosen
    alternative: str  # text of the best token other than the chosen one
    # Logit of the chosen token minus the alternative's: small means the model was unsure.
    margin: float
    # Every other token among the sampler's top SAMPLER_TOP_K, when the backend scored them
    # all; empty when only the runner-up is known.
    choices: tuple[Choice, ...] = ()

    @property
    def known_choices(self) -> tuple[Choice, ...]:
        """The other tokens scored here: every choice, or the runner-up alone."""
        return self.choices or (Choice(self.alternative, -self.margin),)


@dataclass(frozen=True)
class GenerationResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    # Seconds for the whole call, and the part spent on the prompt before the first token.
    seconds: float
    prompt_seconds: float
    finish_reason: FinishReason
    forks: tuple[Fork, ...] = ()
    # Prompt tokens reused from the KV cache of the previous call (not evaluated again).
    prompt_tokens_cached: int = 0
    # Completion tokens drawn from a copy scored just before (models.replay), not evaluated.
    completion_tokens_replayed: int = 0

    @property
    def generate_seconds(self) -> float:
        """Seconds after the prompt was read: sampling the answer."""
        return max(0.0, self.seconds - self.prompt_seconds)

    @property
    def tokens_per_second(self) -> float:
        gen = self.seconds - self.prompt_seconds
        return self.completion_tokens / gen if gen > 0 else 0.0


# The sampler llama.cpp runs (and backends that see logits are scored against): the best
# SAMPLER_TOP_K tokens, then top-p and min-p on their probabilities, then the temperature.
SAMPLER_TOP_K = 40
SAMPLER_MIN_P = 0.05


def chain_chances(logits: Sequence[float], temperature: float, top_p: float) -> list[float]:
    """The chance llama.cpp's sampler chain gives each of `logits` (the top-k survivors, in
    any order): top-p keeps the likeliest until they hold `top_p`, min-p drops any below
    SAMPLER_MIN_P of the likeliest, both on the raw probabilities; then the temperature (0:
    the likeliest alone)."""
    top = max(logits)
    weights = [math.exp(value - top) for value in logits]
    total = sum(weights)
    order = sorted(range(len(logits)), key=lambda i: -logits[i])
    if temperature <= 0:
        return [1.0 if i == order[0] else 0.0 for i in range(len(logits))]
    kept: set[int] = set()
    held = 0.0
    for i in order:
        kept.add(i)
        held += weights[i] / total
        if held >= top_p:
            break
    kept = {i for i in kept if weights[i] >= SAMPLER_MIN_P}  # the likeliest always stays
    tempered = [
        math.exp((logits[i] - top) / temperature) if i in kept else 0.0 for i in range(len(logits))
    ]
    norm = sum(tempered)
    return [t / norm for t in tempered]


def sampling_chances(fork: Fork, temperature: float, top_p: float) -> tuple[float, list[float]]:
    """The chance that sampling takes the chosen token at `fork`, and each of its choices
    (the runner-up alone when the choices are unknown), as llama.cpp's sampler chain has it."""
    chances = chain_chances([0.0, *(c.gap for c in fork.known_choices)], temperature, top_p)
    return chances[0], chances[1:]


# Called with each new piece of text as it is generated.
TextCallback = Callable[[str], None]
# Told the answer so far (its prefix included) after each new piece; True: it ends there.
TextCheck = Callable[[str], bool]
# Told the forks scored so far; True: they are enough, stop scoring.
ForksCheck = Callable[[Sequence[Fork]], bool]


class Backend(Protocol):
    """A loaded model. Implementations: llama.cpp in-process, OpenAI-compatible HTTP, scripted."""

    @property
    def name(self) -> str: ...

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
        until: TextCheck | None = None,
    ) -> GenerationResult:
        """Generate a reply; stream pieces to on_text; stop between tokens once cancel is set
        (finish reason "cancelled"), or once `until` holds for the text so far ("stop")."""
        ...

    def forks_along(
        self,
        messages: Sequence[ChatMessage],
        answer_prefix: str,
        continuation: str,
        *,
        cancel: threading.Event | None = None,
        enough: ForksCheck | None = None,
    ) -> tuple[Fork, ...] | None:
        """The forks an answer `answer_prefix + continuation` would have, scored without
        sampling it (in batches, as a prompt is read): at each token of `continuation`, the
        best other token and the margin. `enough` sees the forks scored so far after each batch;
        True ends the scoring there, and those are returned. None: this backend does not see
        the model's logits."""
        ...

    def close(self) -> None: ...
