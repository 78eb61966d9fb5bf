"""Saved prompt-opening states with the real 0.5B GGUF (slow: `pytest -m model`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from cyclefix.models.backend import ChatMessage, GenerationOptions
from cyclefix.models.install import model_path
from cyclefix.models.llama import MIN_SAVED_PREFIX, LlamaCppBackend
from cyclefix.models.registry import FAST_MODEL

pytestmark = pytest.mark.model

SYSTEM = ChatMessage("system", "You are an expert Python developer. Reply with code only.")
ADD = [SYSTEM, ChatMessage("user", "Write a Python function add(a, b) that returns a + b.")]
SUB = [SYSTEM, ChatMessage("user", "Write a Python function sub(a, b) that returns a - b.")]
UNRELATED = [ChatMessage("user", "Name three colours.")]
GREEDY = GenerationOptions(temperature=0.0, max_tokens=12, seed=1)


def load(state_dir: Path | None) -> LlamaCppBackend:
    return LlamaCppBackend(model_path(FAST_MODEL), n_ctx=1024, n_threads=2, state_dir=state_dir)


@contextlib.contextmanager
def loaded(state_dir: Path | None) -> Iterator[LlamaCppBackend]:
    backend = load(state_dir)
    try:
        yield backend
    finally:
        backend.close()


def test_a_fresh_backend_reuses_the_saved_opening_and_answers_the_same(tmp_path: Path) -> None:
    with loaded(tmp_path) as first:
        before = first.generate(ADD, GREEDY)
    with loaded(tmp_path) as second:
        after = second.generate(ADD, GREEDY)
    assert before.prompt_tokens_cached == 0
    assert after.prompt_tokens_cached > 0
    assert after.text == before.text
    assert second.state_notes == []


def test_another_system_prompt_starts_from_scratch(tmp_path: Path) -> None:
    first = load(tmp_path)
    try:
        first.generate(ADD, GREEDY)
    finally:
        first.close()
    other = [ChatMessage("system", "You write Python."), ADD[1]]
    second = load(tmp_path)
    try:
        assert second.generate(other, GREEDY).prompt_tokens_cached == 0
    finally:
        second.close()


def test_rounds_reuse_the_opening_even_after_an_unrelated_prompt() -> None:
    backend = load(None)
    try:
        backend.generate(ADD, GREEDY)
        # Round 2 shares the system message and the start of the request with round 1.
        assert backend.generate(SUB, GREEDY).prompt_tokens_cached > MIN_SAVED_PREFIX
        backend.generate(UNRELATED, GREEDY)
        # Shares a few tokens with the unrelated prompt; the saved opening has more.
        assert backend.generate(SUB, GREEDY).prompt_tokens_cached >= MIN_SAVED_PREFIX
        # The same prompt again: all of it but the last token comes from the cache.
        again = backend.generate(SUB, GREEDY)
        assert again.prompt_tokens_cached == again.prompt_tokens - 1
    finally:
        backend.close()


LONG = "Write a Python function add(a, b) that returns a + b. " + "It takes ints and floats. " * 30
NAMED_ADD = [SYSTEM, ChatMessage("user", LONG + "Name it add.")]
NAMED_PLUS = [SYSTEM, ChatMessage("user", LONG + "Name it plus.")]


def test_a_prompt_sharing_a_long_start_with_an_earlier_read_starts_from_that_read() -> None:
    with loaded(None) as backend:
        backend.forks_along(NAMED_ADD, "", "def add(a, b):\n    return a + b\n")
        backend.generate(UNRELATED, GREEDY)  # the cache now holds another prompt
        after = backend.generate(NAMED_PLUS, GREEDY)
    with loaded(None) as fresh:
        alone = fresh.generate(NAMED_PLUS, GREEDY)
    # All of the long request but its last words; the opening alone is a few dozen tokens.
    assert after.prompt_tokens_cached > 150
    assert after.prompt_tokens_cached < after.prompt_tokens
    assert after.text == alone.text
