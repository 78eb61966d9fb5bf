"""Samples: PGM spans never touch the description, masking matches P, mixing matches R."""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cyclefix.errors import CyclefixError
from cyclefix.models.backend import ChatMessage
from cyclefix.refine.prompt import RefinePrompt, build_marker_prompt, build_refine_messages
from cyclefix.training.samples import (
    PromptFormat,
    Span,
    TrainingRecord,
    fenced,
    masked_positions,
    mixed_order,
    record_from_json,
    render,
    spans_in_refine_message,
)

DESCRIPTION = "Write a function to find the median of a list of numbers."
FAULTY = (
    "def median(values):\n"
    f'    """{DESCRIPTION}"""\n'
    "    ordered = sorted(values)\n"
    "    return ordered[len(ordered) // 2 + 1]\n"
)
FEEDBACK = (
    'Test Case Failed: assert median([1, 2, 3]) == 2, Input: "[1, 2, 3]", '
    'Expected output: "2", Actual output: "3"'
)
SOLUTION = (
    "def median(values):\n    ordered = sorted(values)\n    return ordered[len(ordered) // 2]\n"
)


def chatml(messages: Sequence[dict[str, str]], generation_prompt: bool) -> str:
    """A ChatML template like Qwen's, for tests that need no model."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if generation_prompt else "")


def refine_record() -> TrainingRecord:
    messages = tuple(
        build_refine_messages(
            RefinePrompt(
                names=("median",),
                faulty_code=FAULTY,
                feedback=FEEDBACK,
                test_source="def test_median():\n    assert median([1, 2, 3]) == 2\n",
            )
        )
    )
    spans = spans_in_refine_message(messages[1].content, FAULTY, FEEDBACK, DESCRIPTION)
    return TrainingRecord(
        "refine",
        messages,
        fenced(SOLUTION),
        tuple(Span(1, s, e) for s, e in spans),
        DESCRIPTION,
        FAULTY,
        FEEDBACK,
        SOLUTION,
    )


def test_spans_cover_faulty_code_and_feedback_but_not_the_description() -> None:
    record = refine_record()
    content = record.messages[1].content
    covered = "".join(content[s.start : s.end] for s in record.pgm_spans)
    assert DESCRIPTION not in covered
    assert "ordered[len(ordered) // 2 + 1]" in covered
    assert FEEDBACK in covered
    # Everything in the spans comes from the faulty code or the feedback, nothing else.
    for span in record.pgm_spans:
        piece = content[span.start : span.end]
        assert piece in FAULTY or piece in FEEDBACK
    # The test (intent) and the instructions stay visible, and so does the whole docstring.
    assert "def test_median" not in covered
    assert '"""' not in covered


def _offsets(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]|\s+", text)]


def test_rendered_chat_spans_point_at_the_same_text() -> None:
    record = refine_record()
    sample = render(record, "chat", chatml, "<|im_end|>")
    content = record.messages[1].content
    # The same words; the rendered spans only add the whitespace around them.
    assert [w for s, e in sample.pgm_spans for w in sample.text[s:e].split()] == [
        w for span in record.pgm_spans for w in content[span.start : span.end].split()
    ]
    assert sample.text[sample.target_start :].startswith("```python\ndef median")
    assert sample.text.endswith("<|im_end|>")
    assert all(end <= sample.target_start for _, end in sample.pgm_spans)


def test_marker_layout_uses_the_seeds_markers_and_span() -> None:
    sample = render(refine_record(), "marker", None, "</s>")
    marker = build_marker_prompt(DESCRIPTION, FAULTY, FEEDBACK)
    assert sample.text.startswith(marker.text)
    assert "### Bad Solution:\n# def median" in sample.text
    assert "### Execution Failure:\n# Test Case Failed" in sample.text
    assert sample.text.index(DESCRIPTION) < sample.pgm_spans[0][0]
    assert sample.text[sample.target_start :].startswith("def median")


def test_marker_spans_cover_code_and_feedback_but_no_description_or_marker() -> None:
    marker = build_marker_prompt(DESCRIPTION, FAULTY, FEEDBACK)
    pieces = [marker.text[start:end] for start, end in marker.past_generation_spans]
    assert pieces == [
        "# def median(values):",
        "#     ordered = sorted(values)\n#     return ordered[len(ordered) // 2 + 1]",
        "# " + FEEDBACK,
    ]


def test_marker_spans_cut_description_lines_out_of_code_that_does_not_parse() -> None:
    broken = "def median(values)\n    # " + DESCRIPTION + "\n    return values[0]\n"
    marker = build_marker_prompt(DESCRIPTION, broken, FEEDBACK)
    covered = "".join(marker.text[start:end] for start, end in marker.past_generation_spans)
    assert DESCRIPTION not in covered and "### " not in covered
    assert "return values[0]" in covered


def test_a_token_straddling_a_span_end_is_in_when_it_adds_only_whitespace() -> None:
    sample = render(refine_record(), "chat", chatml, "<|im_end|>")
    end = sample.text.index(FEEDBACK) + len(FEEDBACK)
    quote = sample.text.index('"""' + DESCRIPTION)
    assert sample.text[end - 1 : end + 2] == '"\n\n'
    offsets = [
        (end - 1, end + 2),  # the closing quote and the newlines after it
        (end - 1, end + 3),  # ... and the first letter of the instruction after them
        (quote - 1, quote + 3),  # a space and the docstring's opening quotes
    ]
    assert masked_positions(offsets, sample.pgm_spans, 1.0, random.Random(0)) == [0]


@given(st.floats(0.0, 1.0), st.integers(0, 1000))
@settings(max_examples=60, deadline=None)
def test_masked_fraction_matches_p_and_stays_inside_spans(p: float, seed: int) -> None:
    sample = render(refine_record(), "chat", chatml, "<|im_end|>")
    offsets = _offsets(sample.text)
    chosen = masked_positions(offsets, sample.pgm_spans, p, random.Random(seed))
    inside = [
        i for i, (s, e) in enumerate(offsets) if any(a <= s and e <= b for a, b in sample.pgm_spans)
    ]
    assert len(chosen) == round(p * len(inside))
    description_at = sample.text.index(DESCRIPTION)
    for i in chosen:
        start, end = offsets[i]
        assert any(a <= start and end <= b for a, b in sample.pgm_spans)
        assert end <= description_at or start >= description_at + len(DESCRIPTION)
        assert end <= sample.target_start


@given(st.integers(0, 50), st.integers(0, 50), st.floats(0.0, 1.0), st.integers(1, 400))
@settings(max_examples=200, deadline=None)
def test_mixing_ratio_is_exact(plain: int, refine: int, ratio: float, total: int) -> None:
    if plain == 0 and refine == 0:
        with pytest.raises(CyclefixError):
            mixed_order(plain, refine, ratio, total, 0)
        return
    order = mixed_order(plain, refine, ratio, total, 0)
    counts = Counter(kind for kind, _ in order)
    assert len(order) == total
    if plain and refine:
        assert counts["refine"] == int(total * ratio)
        # Every prefix keeps the ratio too (no clumping at one end).
        assert Counter(k for k, _ in order[: total // 2])["refine"] == int((total // 2) * ratio)
    else:
        assert counts["refine" if refine else "plain"] == total
    for kind, index in order:
        assert 0 <= index < (plain if kind == "plain" else refine)


def test_mixing_walks_each_pool_before_repeating() -> None:
    order = mixed_order(3, 5, 0.5, 20, seed=4)
    refine = [i for k, i in order if k == "refine"]
    assert sorted(refine[:5]) == list(range(5))
    plain = [i for k, i in order if k == "plain"]
    assert sorted(plain[:3]) == list(range(3))


def test_records_round_trip_and_lintseq_rows_become_plain() -> None:
    record = refine_record()
    again = record_from_json(record.to_json(), "x")
    assert again == record
    lintseq = record_from_json(
        {"kind": "lintseq", "instruction": "Add.", "edits": "@@ -0,0 +1,1 @@\n+x<|diff|>"}, "y"
    )
    assert lintseq.kind == "plain" and lintseq.target.endswith("<|diff|>")
    with pytest.raises(CyclefixError, match="unknown sample kind"):
        record_from_json({"kind": "other"}, "z")
    bad = record.to_json() | {"pgm_spans": [[1, 0, 10**6]]}
    with pytest.raises(CyclefixError, match="outside"):
        record_from_json(bad, "w")


def test_missing_faulty_code_is_an_error() -> None:
    with pytest.raises(CyclefixError):
        spans_in_refine_message("no code here", FAULTY, FEEDBACK, DESCRIPTION)


def test_plain_samples_have_no_spans() -> None:
    record = TrainingRecord("plain", (ChatMessage("user", DESCRIPTION),), fenced(SOLUTION))
    sample = render(record, "chat", chatml, "<|im_end|>")
    assert sample.pgm_spans == ()
    assert sample.text[sample.target_start :].startswith("```python")


def qwen_token_offsets() -> Callable[[str], list[tuple[int, int]]]:
    """Character offsets of each token of the real Qwen2.5 tokenizer, read from the GGUF."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from cyclefix.models.install import model_path
    from cyclefix.models.registry import FAST_MODEL

    vocab = llama_cpp.Llama(str(model_path(FAST_MODEL)), vocab_only=True, verbose=False)

    def offsets(text: str) -> list[tuple[int, int]]:
        assert text.isascii()  # so byte offsets are character offsets
        ids = vocab.tokenize(text.encode(), add_bos=False, special=True)
        pieces = [vocab.detokenize([token], special=True) for token in ids]
        assert b"".join(pieces) == text.encode()
        starts = [0]
        for piece in pieces:
            starts.append(starts[-1] + len(piece))
        return list(itertools.pairwise(starts))

    return offsets


@pytest.fixture(scope="module")
def qwen_offsets() -> Callable[[str], list[tuple[int, int]]]:
    return qwen_token_offsets()


def _overlaps(token: tuple[int, int], start: int, end: int) -> bool:
    return token[0] < end and start < token[1]


@pytest.mark.model
@pytest.mark.parametrize("fmt", ["chat", "marker"])
def test_pgm_with_the_real_tokenizer_hides_code_and_feedback_only(
    fmt: PromptFormat, qwen_offsets: Callable[[str], list[tuple[int, int]]]
) -> None:
    sample = render(refine_record(), fmt, chatml, "<|im_end|>")
    offsets = qwen_offsets(sample.text)
    masked = [
        offsets[i] for i in masked_positions(offsets, sample.pgm_spans, 1.0, random.Random(0))
    ]
    protected = [
        *(m.span() for m in re.finditer(re.escape(DESCRIPTION), sample.text)),
        *(m.span() for m in re.finditer(r'"""', sample.text)),
        *(m.span() for m in re.finditer(r"### [^\n]*", sample.text)),
        *(m.span() for m in re.finditer(re.escape("<|im_end|>"), sample.text)),
    ]
    assert protected
    for token in masked:
        assert not any(_overlaps(token, start, end) for start, end in protected), token
        assert token[1] <= sample.target_start
    # Every character of the buggy line and of the feedback, closing quote included, is hidden.
    for piece in ("return ordered[len(ordered) // 2 + 1]", FEEDBACK):
        start = sample.text.index(piece)
        hidden = {c for token in masked for c in range(*token)}
        assert set(range(start, start + len(piece))) <= hidden, piece
