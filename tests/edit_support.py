"""A stand-in tokenizer and scorer for tests of edits made at the model's alternatives."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from cyclefix.models.backend import Choice, Fork


def tokens(text: str) -> list[tuple[int, str]]:
    """A stand-in tokenizer: words and other characters, each with the space before it."""
    return [(m.start(), m.group()) for m in re.finditer(r" ?\w+| ?[^\w\s]|\n| +", text)]


def scored(text: str, choices: Mapping[tuple[str, str], Sequence[Choice]]) -> list[Fork]:
    """One fork per token of `text`; `choices` by (the line's stripped text, the token)."""
    forks = []
    for offset, token in tokens(text):
        start = text.rfind("\n", 0, offset) + 1
        end = text.find("\n", offset)
        line = text[start : end if end >= 0 else len(text)].strip()
        options = tuple(choices.get((line, token), ()))
        best = options[0] if options else Choice("", -30.0)  # no text: nothing to branch to
        forks.append(Fork(offset, best.text, -best.gap, options))
    return forks


def copy_of(code: str) -> str:
    return f"```python\n{code}```"
