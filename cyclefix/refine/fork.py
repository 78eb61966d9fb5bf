"""Branching a copied answer where the model was least sure of it.

A small model asked to fix code it is shown often writes the same code back. Its token choices
while copying tell where it hesitated: there the feedback pulled it away from the copy. Taking
the runner-up token at the least sure points gives new candidates that cost only the rest of
the answer to generate (the prompt and the shared start stay in llama.cpp's cache).
"""

from __future__ import annotations

from collections.abc import Sequence

from cyclefix.models.backend import Fork

_FENCE = "\n```"


def _leads_back_to_copy(text: str, fork: Fork) -> bool:
    # A comment or a docstring in front of the same code is still a copy; so is other spacing
    # inside a line (at a line's start, spacing is indentation: another block); a closing fence
    # cuts the function short.
    alternative = fork.alternative
    if not alternative.strip():
        return fork.offset > 0 and text[fork.offset - 1] != "\n"
    start = alternative.lstrip(" \t")
    return start.startswith(("#", '"""', "'''")) or "```" in alternative


def branch_prefixes(
    text: str, forks: Sequence[Fork], code_start: int, limit: int
) -> tuple[str, ...]:
    """Up to `limit` answer prefixes, least sure first: the answer up to a fork inside its code
    (after `code_start`, before the closing fence), then the token the model nearly chose."""
    code_end = text.find(_FENCE, code_start)
    if code_end < 0:
        code_end = len(text)
    inside = [
        f for f in forks if code_start <= f.offset < code_end and not _leads_back_to_copy(text, f)
    ]
    prefixes: list[str] = []
    for fork in sorted(inside, key=lambda f: f.margin):
        prefix = text[: fork.offset] + fork.alternative
        if prefix not in prefixes:
            prefixes.append(prefix)
        if len(prefixes) == limit:
            break
    return tuple(prefixes)
