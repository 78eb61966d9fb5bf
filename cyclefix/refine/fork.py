"""Branching a copied answer where the model was least sure of it.

A small model asked to fix code it is shown often writes the same code back. Its token choices
while copying tell where it hesitated: there the feedback pulled it away from the copy. Taking
the runner-up token at the least sure points gives new candidates that cost only the rest of
the answer to generate (the prompt and the shared start stay in llama.cpp's cache).

The same forks, scored on the faulty code itself before anything is sampled (one batch, at
prompt speed), tell how likely the model is to copy; a likely copy is then never generated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cyclefix.models.backend import Fork

_FENCE = "\n```"


def _leads_back_to_copy(text: str, fork: Fork) -> bool:
    # A comment or a docstring in front of the same code is still a copy; so is other spacing
    # inside a line (at a line's start, spacing is indentation: another block); a closing fence
    # cuts the function short.
    alternative = fork.alternative
    end = fork.offset + len(alternative)
    if text.startswith(alternative, fork.offset) and text[end : end + 1] == "\n":
        return True  # the same line end in other tokens: `)\n` then `\n` for `)\n\n`
    if not alternative.strip():
        return fork.offset > 0 and text[fork.offset - 1] != "\n"
    start = alternative.lstrip(" \t")
    return start.startswith(("#", '"""', "'''")) or "```" in alternative


def _forks_in_code(text: str, forks: Sequence[Fork], code_start: int) -> list[Fork]:
    """The forks inside the answer's code (after `code_start`, before the closing fence) that
    lead to other code."""
    code_end = text.find(_FENCE, code_start)
    if code_end < 0:
        code_end = len(text)
    return [
        f for f in forks if code_start <= f.offset < code_end and not _leads_back_to_copy(text, f)
    ]


def branch_prefixes(
    text: str, forks: Sequence[Fork], code_start: int, limit: int
) -> tuple[str, ...]:
    """Up to `limit` answer prefixes, least sure first: the answer up to a fork inside its code,
    then the token the model nearly chose."""
    prefixes: list[str] = []
    for fork in sorted(_forks_in_code(text, forks, code_start), key=lambda f: f.margin):
        prefix = text[: fork.offset] + fork.alternative
        if prefix not in prefixes:
            prefixes.append(prefix)
        if len(prefixes) == limit:
            break
    return tuple(prefixes)


def copy_probability(
    text: str, forks: Sequence[Fork], code_start: int, temperature: float, top_p: float
) -> float:
    """The chance that sampling writes the code of `text` (an answer scored with its forks)
    token for token: at each fork in the code, the chosen token against the runner-up."""
    probability = 1.0
    for fork in _forks_in_code(text, forks, code_start):
        if temperature <= 0:
            chosen = 1.0 if fork.margin > 0 else 0.0
        else:
            z = max(-50.0, min(50.0, fork.margin / temperature))
            chosen = 1.0 / (1.0 + math.exp(-z))
        # Top-p sampling drops the runner-up when the chosen token alone holds top_p.
        probability *= 1.0 if chosen >= top_p else chosen
    return probability
