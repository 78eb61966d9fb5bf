"""The llama.cpp backend with the real 0.5B GGUF (slow: `pytest -m model`)."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cyclefix.models.backend import (
    SAMPLER_TOP_K,
    ChatMessage,
    GenerationOptions,
    sampling_chances,
)
from cyclefix.models.errors import ModelError
from cyclefix.models.install import model_path
from cyclefix.models.llama import LlamaCppBackend
from cyclefix.models.load import open_backend
from cyclefix.models.registry import FAST_MODEL

pytestmark = pytest.mark.model

ADD = [
    ChatMessage("system", "You are a Python programmer. Answer with code only."),
    ChatMessage("user", "Write a Python function add(a, b) that returns a + b."),
]
GREEDY = GenerationOptions(temperature=0.0, max_tokens=48, seed=1)


@pytest.fixture(scope="module")
def backend() -> Iterator[LlamaCppBackend]:
    # No saved KV states from earlier runs: the cache tests expect a cold start.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CYCLEFIX_KV_STATE_DIR", "off")
        loaded = open_backend(FAST_MODEL, n_ctx=4096, n_threads=2)
    assert isinstance(loaded, LlamaCppBackend)
    yield loaded
    loaded.close()


def test_loads_with_the_requested_settings(backend: LlamaCppBackend) -> None:
    assert backend.name == FAST_MODEL
    assert (backend.n_ctx, backend.n_threads) == (4096, 2)


def test_short_completion_stops_at_the_stop_sequence(backend: LlamaCppBackend) -> None:
    result = backend.generate(
        ADD, GenerationOptions(temperature=0.0, max_tokens=64, stop=("return",))
    )
    assert "def add" in result.text
    assert "return" not in result.text
    assert result.finish_reason == "stop"
    assert result.prompt_tokens == backend.count_tokens(ADD)
    assert 0 < result.completion_tokens < 64
    assert 0 < result.prompt_seconds < result.seconds


def test_streamed_pieces_are_the_final_text(backend: LlamaCppBackend) -> None:
    pieces: list[str] = []
    result = backend.generate(ADD, GREEDY, on_text=pieces.append)
    assert len(pieces) > 3
    assert "".join(pieces) == result.text
    assert "return a + b" in result.text
    assert result.tokens_per_second > 0


def test_answer_prefix_is_continued_and_part_of_the_text(backend: LlamaCppBackend) -> None:
    prefix = "```python\ndef add(a, b):\n"
    pieces: list[str] = []
    result = backend.generate(
        ADD,
        GenerationOptions(temperature=0.0, max_tokens=24, stop=("\n```",), answer_prefix=prefix),
        on_text=pieces.append,
    )
    assert result.text.startswith(prefix) and "return" in result.text[len(prefix) :]
    assert "".join(pieces) == result.text
    # The prefix is prompt, not completion: only the continuation's tokens are counted as sampled.
    assert result.completion_tokens <= 24


def test_forks_name_the_runner_up_token_at_each_step(backend: LlamaCppBackend) -> None:
    prefix = "```python\n"
    options = GenerationOptions(
        temperature=0.0, max_tokens=48, stop=("\n```",), answer_prefix=prefix, record_forks=True
    )
    result = backend.generate(ADD, options)
    assert backend.generate(ADD, dataclasses.replace(options, record_forks=False)).forks == ()
    offsets = [f.offset for f in result.forks]
    # One fork per generated token at most, in order, all inside the continuation.
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    assert len(offsets) > 5 and offsets[0] == len(prefix) and offsets[-1] < len(result.text)
    # Greedy: the chosen token always scored best, so every margin is positive.
    assert all(f.margin >= 0 for f in result.forks)
    # A runner-up that begins the chosen token (" " for "    ") leads back into the same text.
    diverging = [
        f
        for f in result.forks
        if not result.text.startswith(result.text[: f.offset] + f.alternative)
    ]
    least_sure = min(diverging, key=lambda f: f.margin)
    branch = result.text[: least_sure.offset] + least_sure.alternative
    # Continuing from the fork gives another answer that starts with the branch.
    other = backend.generate(ADD, dataclasses.replace(options, answer_prefix=branch))
    assert other.text.startswith(branch) and other.text != result.text


def test_forks_along_an_answer_score_it_as_sampling_it_did(backend: LlamaCppBackend) -> None:
    prefix = "```python\n"
    options = GenerationOptions(
        temperature=0.0, max_tokens=48, stop=("\n```",), answer_prefix=prefix, record_forks=True
    )
    sampled = backend.generate(ADD, options)
    scored = backend.forks_along(ADD, prefix, sampled.text[len(prefix) :])
    assert scored is not None
    # The same answer read in one batch: a fork at every token, where sampling recorded its
    # own, with its runner-up among the choices at (batch arithmetic aside) the same margin;
    # near ties may swap, so the best choice is no further off.
    at = {f.offset: f for f in scored}
    assert len(scored) >= len(sampled.forks) and scored[0].offset == len(prefix)
    for fork in sampled.forks:
        assert abs(at[fork.offset].margin - fork.margin) < 0.3
        assert any(
            c.text == fork.alternative and abs(c.gap + fork.margin) < 0.3
            for c in at[fork.offset].choices
        )
    # Text the model would not write scores a negative margin where it departs.
    odd = sampled.text[len(prefix) :].replace("return", "raise", 1)
    departs = odd.index("raise")
    odd_forks = backend.forks_along(ADD, prefix, odd)
    assert odd_forks is not None
    assert min(f.margin for f in odd_forks if f.offset <= len(prefix) + departs) < 0
    # Told the forks so far are enough once one departs, the scoring stops a chunk or so later:
    # a start of the whole scoring, which ends past the departure.
    longer = odd + "\n" + "total = total + 1\n" * 40
    whole = backend.forks_along(ADD, prefix, longer)
    early = backend.forks_along(
        ADD, prefix, longer, enough=lambda so_far: any(f.margin < 0 for f in so_far)
    )
    assert whole is not None and early is not None
    assert 0 < len(early) < len(whole) - 32
    assert early[-1].offset > len(prefix) + departs
    for mine, theirs in zip(early, whole, strict=False):
        assert (mine.offset, mine.alternative) == (theirs.offset, theirs.alternative)
        assert abs(mine.margin - theirs.margin) < 0.3
    # The cache stays usable: generating again gives the same greedy answer.
    assert backend.generate(ADD, options).text == sampled.text
    # An answer longer than the context window is not scored (generation reports that).
    assert backend.forks_along(ADD, prefix, "x = 1\n" * backend.n_ctx) == ()


def test_scored_choices_give_every_sampled_token_a_chance(backend: LlamaCppBackend) -> None:
    # The sampler chain as cyclefix models it (top-k, top-p, min-p, then temperature) must
    # allow each token llama.cpp did sample; applied in another order, it cuts some.
    prefix = "```python\n"
    hot = GenerationOptions(
        temperature=0.9, top_p=0.9, max_tokens=48, stop=("\n```",), answer_prefix=prefix
    )
    # A task with more than one way to write it: `add` alone can leave no token in doubt.
    task = [ADD[0], ChatMessage("user", "Write a Python function that says if n is prime.")]
    uncertain = 0
    for seed in range(4):
        sampled = backend.generate(task, dataclasses.replace(hot, seed=seed))
        scored = backend.forks_along(task, prefix, sampled.text[len(prefix) :])
        assert scored
        for fork in scored:
            assert len(fork.choices) == SAMPLER_TOP_K - 1
            assert [c.gap for c in fork.choices] == sorted(
                (c.gap for c in fork.choices), reverse=True
            )
            chosen, others = sampling_chances(fork, hot.temperature, hot.top_p)
            assert chosen > 0 and sum(others) + chosen == pytest.approx(1.0)
            uncertain += chosen < 0.99
    assert uncertain > 0


def test_a_generation_after_a_scored_copy_draws_the_steps_it_shares(
    backend: LlamaCppBackend,
) -> None:
    # models.replay: the steps that follow the copy come from the scoring's logits; greedy, the
    # answer is the one generated without a copy scored before it.
    prefix = "```python\n"
    options = GenerationOptions(
        temperature=0.0, max_tokens=48, stop=("\n```",), answer_prefix=prefix, record_forks=True
    )
    backend.generate([ChatMessage("user", "Say hi.")], GREEDY)  # nothing scored is left
    plain = backend.generate(ADD, options)
    assert plain.completion_tokens_replayed == 0 and "a + b" in plain.text
    # The copy: that answer with its last statement wrong, as faulty code shows it.
    copy = plain.text[len(prefix) :].replace("a + b", "a - b")
    assert backend.forks_along(ADD, prefix, copy)
    replayed = backend.generate(ADD, options)
    assert 0 < replayed.completion_tokens_replayed < replayed.completion_tokens
    assert (replayed.text, replayed.completion_tokens) == (plain.text, plain.completion_tokens)
    # Its forks are sampling's own, those of the drawn steps from the scoring's rows.
    assert [f.offset for f in replayed.forks] == [f.offset for f in plain.forks]
    for mine, theirs in zip(replayed.forks, plain.forks, strict=True):
        assert abs(mine.margin - theirs.margin) < 0.3
    # A scoring is replayed once: the next generation evaluates every step.
    again = backend.generate(ADD, options)
    assert again.completion_tokens_replayed == 0 and again.text == plain.text
    # A prompt that leaves the copy (another answer prefix) is not replayed.
    assert backend.forks_along(ADD, prefix, copy)
    other = backend.generate(ADD, dataclasses.replace(options, answer_prefix=prefix + "import"))
    assert other.completion_tokens_replayed == 0


def test_weights_repacked_or_not_give_the_same_greedy_answer() -> None:
    answers = []
    for repack in (True, False):
        loaded = LlamaCppBackend(model_path(FAST_MODEL), n_ctx=2048, weight_repack=repack)
        try:
            assert loaded._require_loaded().model_params.use_extra_bufts == repack
            answers.append(loaded.generate(ADD, GREEDY).text)
        finally:
            loaded.close()
    assert "return a + b" in answers[0] and answers[0] == answers[1]


def test_max_tokens_ends_with_length(backend: LlamaCppBackend) -> None:
    result = backend.generate(ADD, GenerationOptions(temperature=0.0, max_tokens=5))
    assert result.finish_reason == "length"
    assert result.completion_tokens == 5


def test_cancel_mid_generation(backend: LlamaCppBackend) -> None:
    story = [ChatMessage("user", "Write a long story about a robot, at least 500 words.")]
    cancel = threading.Event()
    pieces: list[str] = []

    def on_text(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 4:
            cancel.set()

    result = backend.generate(
        story, GenerationOptions(max_tokens=400), on_text=on_text, cancel=cancel
    )
    assert result.finish_reason == "cancelled"
    # Stopped between tokens: at most one more token was sampled after the cancel.
    assert result.completion_tokens <= 6
    assert result.text == "".join(pieces)


def test_kv_cache_reuse_for_a_shared_prefix(backend: LlamaCppBackend) -> None:
    # A long system message no other test uses, so the first call finds nothing cached.
    rules = " ".join(f"Rule {n}: name every variable after fruit number {n}." for n in range(60))
    system = ChatMessage("system", rules)
    first = [system, ChatMessage("user", "Write def add(a, b).")]
    second = [system, ChatMessage("user", "Write def mul(a, b).")]
    options = GenerationOptions(temperature=0.0, max_tokens=4)
    cold = backend.generate(first, options)
    warm = backend.generate(second, options)
    assert cold.prompt_tokens > 600 and warm.prompt_tokens > 600
    # Only the few tokens after the shared prefix are evaluated again, and the result says so.
    assert warm.prompt_seconds < cold.prompt_seconds / 4, (cold, warm)
    assert cold.prompt_tokens_cached < 50
    assert warm.prompt_tokens_cached > 600
    assert warm.prompt_tokens - warm.prompt_tokens_cached < 30


def test_same_seed_same_text(backend: LlamaCppBackend) -> None:
    assert backend.generate(ADD, GREEDY).text == backend.generate(ADD, GREEDY).text
    sampled = GenerationOptions(temperature=0.9, max_tokens=24, seed=1234)
    assert backend.generate(ADD, sampled).text == backend.generate(ADD, sampled).text


def test_one_generation_at_a_time(backend: LlamaCppBackend) -> None:
    expected = backend.generate(ADD, GREEDY).text
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(backend.generate(ADD, GREEDY).text))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected, expected]


def test_context_is_capped_and_long_prompts_refused(capfd: pytest.CaptureFixture[str]) -> None:
    small = LlamaCppBackend(model_path(FAST_MODEL), n_ctx=8192, n_threads=2, context_length=512)
    try:
        assert small.n_ctx == 512
        small.generate(ADD, GenerationOptions(max_tokens=2))
        # llama.cpp's own logging is silenced.
        assert capfd.readouterr().err == ""
        long = [ChatMessage("user", "word " * 1000)]
        with pytest.raises(ModelError, match="context window of 512"):
            small.generate(long, GREEDY)
    finally:
        small.close()
    with pytest.raises(ModelError, match="was closed"):
        small.generate(ADD, GREEDY)


def test_truncated_real_model_is_refused_before_loading(tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with model_path(FAST_MODEL).open("rb") as source, cut.open("wb") as target:
        shutil.copyfileobj(source, target, length=1 << 20)
        target.truncate(20_000_000)
    with pytest.raises(ModelError, match="truncated GGUF file: 20000000 bytes"):
        open_backend(str(cut))


def test_generation_ends_where_until_says_the_answer_is_complete(
    backend: LlamaCppBackend,
) -> None:
    options = dataclasses.replace(GREEDY, answer_prefix="```python\n")
    whole = backend.generate(ADD, options)
    seen: list[str] = []

    def first_line_written(text: str) -> bool:
        seen.append(text)
        return "\n" in text.removeprefix("```python\n")

    cut = backend.generate(ADD, options, until=first_line_written)
    assert cut.finish_reason == "stop"
    assert seen[0].startswith("```python\n")  # the answer so far, its prefix included
    assert cut.text == seen[-1]
    assert whole.text.startswith(cut.text)
    assert cut.completion_tokens < whole.completion_tokens
