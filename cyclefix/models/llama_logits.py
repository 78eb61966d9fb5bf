"""Reading a llama.cpp context token by token: tokens evaluated with each one's logits, the
sampler's best of a logits row, and the other tokens it could have taken at each step (forks).

Module functions over a loaded `llama_cpp.Llama`, no state of their own: llama.py's backend
holds the model, its cache and its lock, and calls these under that lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cyclefix.models.backend import SAMPLER_TOP_K, Choice, Fork
from cyclefix.models.replay import ScoredRow

if TYPE_CHECKING:
    import llama_cpp

# Candidates kept per generated token when recording forks: the chosen token is nearly always
# among them, even when sampled hot.
FORK_TOP_K = 8


def text_offsets(llama: llama_cpp.Llama, tokens: Sequence[int], start: int) -> list[int]:
    """Characters of text before each token, counting from `start`; a character split
    across tokens counts once it is complete."""
    offsets: list[int] = []
    done = b""
    for token in tokens:
        offsets.append(start + len(done.decode("utf-8", errors="ignore")))
        done += llama.detokenize([token])
    return offsets


def evaluate(
    llama: llama_cpp.Llama,
    tokens: Sequence[int],
    on_logits: Callable[[Any], None] | None,
    cancel: threading.Event | None,
) -> bool:
    """Evaluate `tokens` into the cache, as Llama.eval does, with the logits of every token
    passed to `on_logits` when given (Llama.eval keeps them only with logits_all, for the
    whole context). False when cancelled."""
    for start in range(0, len(tokens), llama.n_batch):
        if cancel is not None and cancel.is_set():
            return False
        batch = list(tokens[start : start + llama.n_batch])
        n_past = llama.n_tokens
        llama._batch.set_batch(batch=batch, n_past=n_past, logits_all=on_logits is not None)
        llama._ctx.decode(llama._batch)
        llama.input_ids[n_past : n_past + len(batch)] = batch
        llama.n_tokens += len(batch)
        llama._requires_eval = False
        if on_logits is not None:
            for i in range(len(batch)):
                on_logits(logits_row(llama, i))
    return True


def logits_row(llama: llama_cpp.Llama, index: int) -> Any:
    import numpy as np

    return np.ctypeslib.as_array(llama._ctx.get_logits_ith(index), shape=(llama.n_vocab(),))


def best_row(row: Any) -> ScoredRow:
    """The sampler's best SAMPLER_TOP_K tokens of a logits row and their logits, best first."""
    import numpy as np

    best = [int(t) for t in np.argpartition(row, -SAMPLER_TOP_K)[-SAMPLER_TOP_K:]]
    best.sort(key=lambda t: -row[t])
    return ScoredRow(tuple(best), tuple(float(row[t]) for t in best))


def other_choices(
    llama: llama_cpp.Llama, row: Any, top: ScoredRow, chosen: int
) -> tuple[Choice, ...]:
    """The tokens other than `chosen` among the sampler's best (`top`), best first."""
    best = list(top.ids)
    if chosen not in best:
        best.pop()  # the sampler never takes it; scored as the least of the best instead
    chosen_logit = float(row[chosen])
    return tuple(Choice(piece(llama, t), float(row[t]) - chosen_logit) for t in best if t != chosen)


def best_candidates(llama: llama_cpp.Llama) -> tuple[Any, Any]:
    import numpy as np

    # The logits that chose the token just sampled: it is not evaluated yet.
    row = logits_row(llama, -1)
    ids = np.argpartition(row, -FORK_TOP_K)[-FORK_TOP_K:]
    return ids, row[ids].copy()


def forks_of(
    llama: llama_cpp.Llama,
    generated: list[int],
    candidates: dict[int, tuple[Any, Any]],
    text_start: int,
    text_end: int,
) -> tuple[Fork, ...]:
    """Per generated token whose text starts before `text_end`, the best other token among
    those kept at its step (`candidates`) and how far under the chosen one it scored."""
    forks: list[Fork] = []
    offsets = text_offsets(llama, generated, text_start)
    for step, (token, offset) in enumerate(zip(generated, offsets, strict=True)):
        if offset >= text_end or step not in candidates:
            continue
        ids, logits = candidates[step]
        chosen = [i for i, t in enumerate(ids) if t == token]
        if not chosen:
            continue  # sampled from outside the best candidates: no margin to tell
        others = [i for i in range(len(ids)) if ids[i] != token]
        best_other = max(others, key=lambda i: logits[i])
        # Special tokens (end of turn) have no text: nothing to branch into.
        alternative = llama.detokenize([int(ids[best_other])]).decode("utf-8", "replace")
        if alternative:
            margin = float(logits[chosen[0]] - logits[best_other])
            forks.append(Fork(offset, alternative, margin))
    return tuple(forks)


def piece(llama: llama_cpp.Llama, token: int) -> str:
    """A token's text; empty for a special token, and for a piece of a character."""
    text = llama.detokenize([token]).decode("utf-8", "replace")
    return "" if "\ufffd" in text else text
