"""Prompt-lookup drafts (speculative decoding) with the real 0.5B GGUF (slow: `pytest -m model`)."""

from __future__ import annotations

import pytest

from cyclefix.models.backend import ChatMessage, GenerationOptions, GenerationResult
from cyclefix.models.install import model_path
from cyclefix.models.llama import LlamaCppBackend
from cyclefix.models.registry import FAST_MODEL

pytestmark = pytest.mark.model

CODE = "def total(items):\n    result = 0\n    for item in items:\n        result += item\n"
COPY = [
    ChatMessage("system", "You repeat code exactly."),
    ChatMessage("user", f"Repeat this code exactly:\n```python\n{CODE}```"),
]
GREEDY = GenerationOptions(temperature=0.0, max_tokens=40, answer_prefix="```python\n")


def greedy(prompt_lookup: int) -> GenerationResult:
    backend = LlamaCppBackend(
        model_path(FAST_MODEL), n_ctx=1024, n_threads=2, prompt_lookup=prompt_lookup
    )
    try:
        return backend.generate(COPY, GREEDY)
    finally:
        backend.close()


def test_drafting_from_the_prompt_keeps_the_greedy_answer_and_its_count() -> None:
    drafted, plain = greedy(prompt_lookup=8), greedy(prompt_lookup=0)
    assert drafted.text == plain.text
    assert drafted.completion_tokens == plain.completion_tokens
