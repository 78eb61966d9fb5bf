"""Training samples: records on disk, rendered to text with the spans PGM may hide, and mixed.

A record holds the chat messages the product shows the model (built by the product's own prompt
builders at collection time), the target reply, and for refine samples the character spans of
the faulty code and the feedback inside those messages: the Past Generation Mask's territory.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from cyclefix.errors import CyclefixError
from cyclefix.models.backend import ChatMessage
from cyclefix.refine.prompt import (
    GOOD_SOLUTION_MARKER,
    build_marker_prompt,
    description_holes,
    docstring_lines,
    merged_spans,
    spans_without,
)

SampleKind = Literal["plain", "refine"]
PromptFormat = Literal["chat", "marker"]


@dataclass(frozen=True)
class Span:
    """Characters [start, end) of one message's content."""

    message: int
    start: int
    end: int


@dataclass(frozen=True)
class TrainingRecord:
    kind: SampleKind
    messages: tuple[ChatMessage, ...]  # the prompt, as the product sends it
    target: str  # the reply to learn
    pgm_spans: tuple[Span, ...] = ()  # faulty code + feedback, never the description
    # For the base-model marker layout (SEEDS.md): the three information sources, raw.
    description: str = ""
    faulty_code: str = ""
    feedback: str = ""
    solution: str = ""
    source: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "source": self.source,
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "target": self.target,
            "pgm_spans": [[s.message, s.start, s.end] for s in self.pgm_spans],
            "description": self.description,
            "faulty_code": self.faulty_code,
            "feedback": self.feedback,
            "solution": self.solution,
        }


def record_from_json(row: dict[str, object], where: str) -> TrainingRecord:
    """A record from a collect/lintseq JSON row; lintseq rows become plain samples."""
    kind = row.get("kind")
    if kind == "lintseq":
        instruction = str(row.get("instruction") or "")
        return TrainingRecord(
            "plain",
            (ChatMessage("user", lintseq_request(instruction)),),
            str(row["edits"]),
            description=instruction,
            solution=str(row.get("edits")),
            source=str(row.get("source", "")),
        )
    if kind not in ("plain", "refine"):
        raise CyclefixError(f"{where}: unknown sample kind {kind!r} (plain, refine or lintseq)")
    raw_messages = row.get("messages")
    if not isinstance(raw_messages, list) or not isinstance(row.get("target"), str):
        raise CyclefixError(f"{where}: a sample needs `messages` and `target`")
    messages: list[ChatMessage] = []
    for item in raw_messages:
        if not isinstance(item, dict) or item.get("role") not in ("system", "user", "assistant"):
            raise CyclefixError(f"{where}: each message needs a role and content")
        messages.append(ChatMessage(item["role"], str(item.get("content", ""))))
    spans = []
    for raw in row.get("pgm_spans") or []:  # type: ignore[attr-defined]
        message, start, end = (int(v) for v in raw)
        if not (
            0 <= message < len(messages) and 0 <= start <= end <= len(messages[message].content)
        ):
            raise CyclefixError(f"{where}: PGM span {raw} lies outside its message")
        spans.append(Span(message, start, end))
    return TrainingRecord(
        kind="refine" if kind == "refine" else "plain",
        messages=tuple(messages),
        target=str(row["target"]),
        pgm_spans=tuple(spans),
        description=str(row.get("description") or ""),
        faulty_code=str(row.get("faulty_code") or ""),
        feedback=str(row.get("feedback") or ""),
        solution=str(row.get("solution") or ""),
        source=str(row.get("source") or ""),
    )


def lintseq_request(instruction: str) -> str:
    return (
        f"{instruction.strip()}\n\nWrite the program as a sequence of insertion edits "
        "(zero-context unified diff hunks separated by <|diff|>)."
    )


def fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


def spans_in_refine_message(
    content: str, faulty_code: str, feedback: str, description: str
) -> list[tuple[int, int]]:
    """Where the faulty code and the feedback sit in a refine prompt, minus the description.

    Found by character offsets in the text the product's builder produced, so no marker is
    re-tokenized; the description stays visible: the faulty code's docstring lines, and any
    line of the description found in the code or the feedback, are cut out.
    """
    code = faulty_code.rstrip()
    code_at = content.find("```python\n" + code + "\n```")
    if code_at < 0:
        raise CyclefixError("the refine prompt does not contain the faulty code verbatim")
    code_start = code_at + len("```python\n")
    spans = [(code_start, code_start + len(code))]
    note = feedback.strip()
    if note:
        feedback_at = content.find(note, code_start + len(code))
        if feedback_at < 0:
            raise CyclefixError("the refine prompt does not contain the feedback verbatim")
        spans.append((feedback_at, feedback_at + len(note)))
    holes = description_holes(content, spans, description)
    line_start = code_start
    docstrings = docstring_lines(faulty_code)
    for number, line in enumerate(code.split("\n")):
        if number in docstrings:
            holes.append((line_start, line_start + len(line)))
        line_start += len(line) + 1
    return spans_without(spans, holes)


@dataclass(frozen=True)
class RenderedSample:
    """One training text: the prompt part, the target part, and PGM spans in its characters."""

    text: str
    target_start: int  # characters from here on carry the loss
    pgm_spans: tuple[tuple[int, int], ...]
    kind: SampleKind


ChatTemplate = Callable[[Sequence[dict[str, str]], bool], str]


def render(
    record: TrainingRecord, fmt: PromptFormat, chat_template: ChatTemplate | None, eos: str
) -> RenderedSample:
    """The record as one string, in the chat template or the SEEDS marker layout."""
    if fmt == "marker":
        spans: tuple[tuple[int, int], ...] = ()
        if record.kind == "refine":
            marker = build_marker_prompt(record.description, record.faulty_code, record.feedback)
            prompt, spans = marker.text, marker.past_generation_spans
        else:
            prompt, spans = record.description.rstrip() + "\n" + GOOD_SOLUTION_MARKER, ()
        body = record.solution or record.target
        text = prompt + body.rstrip() + "\n" + eos
        return RenderedSample(
            text, len(prompt), widened_over_whitespace(prompt, spans), record.kind
        )
    if chat_template is None:
        raise CyclefixError(
            "the chat format needs a tokenizer with a chat template; use --format marker"
        )
    messages = [{"role": m.role, "content": m.content} for m in record.messages]
    prompt = chat_template(messages, True)
    full = chat_template([*messages, {"role": "assistant", "content": record.target}], False)
    if not full.startswith(prompt):
        raise CyclefixError("the chat template does not render the reply after the prompt")
    shifted: list[tuple[int, int]] = []
    cursor = 0
    for index, message in enumerate(record.messages):
        at = prompt.find(message.content, cursor)
        if at < 0:
            raise CyclefixError("the chat template changed a message's text")
        cursor = at + len(message.content)
        shifted += [(at + s.start, at + s.end) for s in record.pgm_spans if s.message == index]
    spans = widened_over_whitespace(prompt, shifted)
    return RenderedSample(full.rstrip("\n"), len(prompt), spans, record.kind)


def widened_over_whitespace(
    prompt: str, spans: Sequence[tuple[int, int]]
) -> tuple[tuple[int, int], ...]:
    """Each span grown over the whitespace around it, within the prompt.

    A token that straddles a span's edge (the feedback's closing quote fused with the newlines
    after it) is then judged by its offsets alone: in when all it adds is whitespace, out when
    it reaches into a marker or the description.
    """
    grown = []
    for start, end in spans:
        while start > 0 and prompt[start - 1].isspace():
            start -= 1
        while end < len(prompt) and prompt[end].isspace():
            end += 1
        grown.append((start, end))
    return tuple(merged_spans(prompt, grown, ""))


def masked_positions(
    offsets: Sequence[tuple[int, int]],
    spans: Sequence[tuple[int, int]],
    fraction: float,
    rng: random.Random,
) -> list[int]:
    """A random `fraction` of the tokens lying wholly inside the PGM spans (token indices)."""
    inside = [
        i
        for i, (start, end) in enumerate(offsets)
        if end > start and any(s <= start and end <= e for s, e in spans)
    ]
    count = round(fraction * len(inside))
    return sorted(rng.sample(inside, count)) if count else []


def mixed_order(
    plain: int, refine: int, ratio: float, total: int, seed: int
) -> list[tuple[SampleKind, int]]:
    """`total` draws, refine samples at exactly `ratio` of them (plain only if there are none).

    Each pool is walked in a shuffled order, reshuffled when used up.
    """
    if plain == 0 and refine == 0:
        raise CyclefixError("no training samples")
    if not 0.0 <= ratio <= 1.0:
        raise CyclefixError("--mix must lie between 0 and 1")
    effective = 1.0 if plain == 0 else 0.0 if refine == 0 else ratio
    rng = random.Random(seed)
    pools: dict[SampleKind, list[int]] = {"plain": [], "refine": []}
    sizes: dict[SampleKind, int] = {"plain": plain, "refine": refine}
    order: list[tuple[SampleKind, int]] = []
    for k in range(total):
        # Bresenham spacing: after n draws, exactly round-down(n * ratio) were refine samples.
        kind: SampleKind = "refine" if int((k + 1) * effective) > int(k * effective) else "plain"
        if not pools[kind]:
            pools[kind] = list(range(sizes[kind]))
            rng.shuffle(pools[kind])
        order.append((kind, pools[kind].pop()))
    return order
