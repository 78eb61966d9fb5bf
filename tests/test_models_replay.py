"""Replaying a scored copy (models.replay): the steps a generation shares with the copy scored
before it are drawn from the kept candidates, as llama.cpp's sampler chain would draw them."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from cyclefix.models.backend import GenerationOptions, chain_chances
from cyclefix.models.replay import (
    AnswerText,
    ScoredAnswer,
    ScoredRow,
    replay,
    replay_start,
    whole_text,
)

EOS = 99


def row(best: int, *others: int) -> ScoredRow:
    """A row whose `best` token leads every other by 5 logits (a near-certain step)."""
    return ScoredRow((best, *others), (10.0, *(5.0 - i for i in range(len(others)))))


# Prompt 1 2 3, then the copy 10 11 12 13; the model prefers 21 over the copy's 12.
SCORED = ScoredAnswer(
    prompt=(1, 2, 3),
    answer=(10, 11, 12, 13),
    rows=(row(10, 20), row(11, 20), row(21, 12), row(13, 20)),
)


def test_temperature_zero_takes_the_likeliest_alone() -> None:
    assert chain_chances([1.0, 3.0, 2.0], 0.0, 0.95) == [0.0, 1.0, 0.0]


def test_top_p_cuts_on_the_raw_probabilities_before_the_temperature() -> None:
    # Raw: 0.88 and 0.12; top-p 0.8 keeps the first alone, however hot the temperature.
    assert chain_chances([2.0, 0.0], 5.0, 0.8) == [1.0, 0.0]


def test_min_p_drops_tokens_under_a_twentieth_of_the_likeliest() -> None:
    chances = chain_chances([0.0, -1.0, -3.5], 1.0, 1.0)
    assert chances[2] == 0.0 and chances[0] > chances[1] > 0
    assert sum(chances) == pytest.approx(1.0)


def test_a_hot_temperature_flattens_what_is_kept() -> None:
    cool, hot = chain_chances([0.0, -1.0], 0.5, 1.0), chain_chances([0.0, -1.0], 2.0, 1.0)
    assert cool[1] < hot[1] < 0.5


def test_a_generation_enters_the_copy_where_its_prompt_ends() -> None:
    assert replay_start(SCORED, [1, 2, 3]) == 0
    assert replay_start(SCORED, [1, 2, 3, 10, 11]) == 2


@pytest.mark.parametrize(
    "prompt",
    [[1, 2, 4], [1, 2], [1, 2, 3, 10, 20], [1, 2, 3, 10, 11, 12, 13]],
    ids=["another-prompt", "shorter", "leaves-the-copy", "past-the-rows"],
)
def test_no_replay_where_the_prompt_does_not_continue_the_copy(prompt: list[int]) -> None:
    assert replay_start(SCORED, prompt) is None


def test_greedy_steps_follow_the_copy_until_the_model_leaves_it() -> None:
    drawn = replay(SCORED, 0, 0.0, 0.95, random.Random(0))
    assert drawn == [10, 11, 21]


def test_steps_from_inside_the_copy_start_there() -> None:
    assert replay(SCORED, 1, 0.0, 0.95, random.Random(0)) == [11, 21]


def test_the_end_of_turn_ends_the_steps() -> None:
    scored = ScoredAnswer((1,), (10, 11), (row(EOS, 10), row(11)))
    assert replay(scored, 0, 0.0, 0.95, random.Random(0), frozenset({EOS})) == [EOS]


def test_a_copy_followed_to_its_last_row_ends_with_that_rows_token() -> None:
    scored = ScoredAnswer((1,), (10, 11, 12), (row(10), row(11), row(12)))
    assert replay(scored, 0, 0.0, 0.95, random.Random(0)) == [10, 11, 12]


def test_hot_steps_are_drawn_with_the_chains_chances() -> None:
    close = ScoredRow((10, 20, 30), (1.0, 0.5, 0.0))
    scored = ScoredAnswer((1,), (10,), (close,))
    rng = random.Random(7)
    counts = Counter(replay(scored, 0, 1.0, 0.95, rng)[0] for _ in range(6000))
    expected = chain_chances(close.logits, 1.0, 0.95)
    for token, chance in zip(close.ids, expected, strict=True):
        assert counts[token] / 6000 == pytest.approx(chance, abs=0.03)


def test_a_character_split_across_tokens_is_not_whole_text() -> None:
    assert whole_text("é".encode())
    assert not whole_text("é".encode()[:1])


STOPS = GenerationOptions(stop=("\n```\n",), answer_prefix="```python\n")


def test_a_stop_sequence_spanning_the_drawn_steps_and_the_next_piece_ends_the_answer() -> None:
    pieces: list[str] = []
    answer = AnswerText(STOPS, pieces.append, None)
    answer.add("```python\n", check=False)
    answer.add("x = 1\n```")  # drawn from the copy
    assert not answer.ended
    answer.add("\n")  # the model's first piece
    assert answer.ended and answer.text == "```python\nx = 1"
    assert "".join(pieces) == "```python\nx = 1\n```\n"


def test_a_stop_sequence_in_the_answer_prefix_does_not_count() -> None:
    answer = AnswerText(GenerationOptions(stop=("```",), answer_prefix="```python\n"), None, None)
    answer.add("```python\n", check=False)
    answer.add("x = 1\n")
    assert not answer.ended and answer.text == "```python\nx = 1\n"


def test_until_ends_the_answer_once_it_holds() -> None:
    answer = AnswerText(GenerationOptions(), None, lambda text: text.endswith("done"))
    answer.add("not yet ")
    assert not answer.ended
    answer.add("done")
    assert answer.ended and answer.text == "not yet done"
