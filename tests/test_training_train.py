"""Fine-tuning on a tiny random Qwen2 model: PGM hides tokens, loss only on targets, resume."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import pytest

from cyclefix.cli import main
from cyclefix.errors import CyclefixError
from cyclefix.models.backend import ChatMessage
from cyclefix.training.samples import Span, TrainingRecord, fenced, render
from cyclefix.training.train import IGNORE_INDEX, TrainConfig, encode, target_loss, train

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _records() -> list[TrainingRecord]:
    records = []
    for n in range(6):
        faulty = f"def add(a, b):\n    return a - b + {n}\n"
        feedback = (
            'Test Case Failed: assert add(1, 2) == 3, Input: "1, 2", Expected output: "3", '
            f'Actual output: "{n - 1}"'
        )
        user = (
            f"Add two numbers.\n\n## Faulty code\n```python\n{faulty.rstrip()}\n```\n\n"
            f"## Execution feedback\n{feedback}\n\nFix it."
        )
        code_at = user.index("def add")
        feedback_at = user.index("Test Case")
        spans = (
            Span(0, code_at, code_at + len(faulty.rstrip())),
            Span(0, feedback_at, feedback_at + len(feedback)),
        )
        records.append(
            TrainingRecord(
                "refine",
                (ChatMessage("user", user),),
                fenced("def add(a, b):\n    return a + b\n"),
                spans,
                "Add two numbers.",
                faulty,
                feedback,
                "def add(a, b):\n    return a + b\n",
            )
        )
        records.append(
            TrainingRecord(
                "plain",
                (ChatMessage("user", f"Write add number {n}."),),
                fenced(f"def add(a, b):\n    return a + b  # {n}\n"),
            )
        )
    return records


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Qwen2 with a byte-level BPE tokenizer trained on the sample texts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("tiny-base")
    texts = [m.content for r in _records() for m in r.messages] + [r.target for r in _records()]
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    raw.train_from_iterator(texts * 3, trainer)
    # transformers leaves the fast tokenizer's __init__ unannotated (*args, **kwargs).
    new_tokenizer: Callable[..., PreTrainedTokenizerFast] = PreTrainedTokenizerFast
    tokenizer = new_tokenizer(
        tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
    )
    Qwen2ForCausalLM(config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "samples.jsonl"
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in _records()), encoding="utf-8")
    return path


def _load(folder: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder)), AutoModelForCausalLM.from_pretrained(
        str(folder)
    )


def _chat(tokenizer: Any) -> Any:
    return lambda messages, gen: tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=gen
    )


def test_encode_puts_labels_on_the_target_only_and_masks_inside_spans(tiny_base: Path) -> None:
    tokenizer, _ = _load(tiny_base)
    record = _records()[0]
    sample = render(record, "chat", _chat(tokenizer), "<|im_end|>")
    encoded = encode(sample, tokenizer, 0.5, random.Random(0), 4096)
    assert encoded is not None
    pieces = tokenizer(sample.text, return_offsets_mapping=True, add_special_tokens=False)[
        "offset_mapping"
    ]
    target_tokens = [i for i, label in enumerate(encoded.labels) if label != IGNORE_INDEX]
    assert target_tokens and all(pieces[i][0] >= sample.target_start for i in target_tokens)
    assert tokenizer.decode([encoded.input_ids[i] for i in target_tokens]).startswith("```python")
    hidden = [i for i, a in enumerate(encoded.attention) if a == 0]
    assert len(hidden) == encoded.pgm_masked == round(0.5 * encoded.pgm_candidates) > 0
    description_end = sample.text.index("Add two numbers.") + len("Add two numbers.")
    for i in hidden:
        start, end = pieces[i]
        assert start >= description_end and end <= sample.target_start
        assert any(a <= start and end <= b for a, b in sample.pgm_spans)
    assert encode(sample, tokenizer, 0.5, random.Random(0), 5) is None  # too long: skipped


def test_masked_tokens_cannot_influence_the_loss(tiny_base: Path) -> None:
    """A hidden token's id does not change the target loss; a visible token's id does."""
    tokenizer, model = _load(tiny_base)
    model.eval()
    sample = render(_records()[0], "chat", _chat(tokenizer), "<|im_end|>")
    encoded = encode(sample, tokenizer, 0.5, random.Random(1), 4096)
    assert encoded is not None
    hidden = [i for i, a in enumerate(encoded.attention) if a == 0]
    visible_in_span = [
        i
        for i, a in enumerate(encoded.attention)
        if a == 1 and encoded.labels[i] == IGNORE_INDEX and i not in hidden and i > 0
    ]

    def loss_with(ids: list[int]) -> float:
        tensor = torch.tensor([ids])
        positions = torch.arange(len(ids)).unsqueeze(0)
        with torch.no_grad():
            return float(
                target_loss(
                    model,
                    tensor,
                    torch.tensor([encoded.attention]),
                    positions,
                    torch.tensor([encoded.labels]),
                )
            )

    base = loss_with(encoded.input_ids)
    changed = list(encoded.input_ids)
    for i in hidden:
        changed[i] = (changed[i] + 7) % len(tokenizer)
    assert loss_with(changed) == pytest.approx(base, abs=1e-5)
    other = list(encoded.input_ids)
    other[visible_in_span[len(visible_in_span) // 2]] = (
        other[visible_in_span[len(visible_in_span) // 2]] + 7
    ) % len(tokenizer)
    assert loss_with(other) != pytest.approx(base, abs=1e-5)


class CommonSettings(TypedDict):
    """The TrainConfig fields the straight and the resumed run share."""

    base: str
    data: tuple[Path, ...]
    lr: float
    batch: int
    save_every: int
    mix: float
    pgm: float
    lora_r: int
    device: str


def test_train_checkpoints_and_resume_match_an_uninterrupted_run(
    tiny_base: Path, data_file: Path, tmp_path: Path
) -> None:
    common: CommonSettings = {
        "base": str(tiny_base),
        "data": (data_file,),
        "lr": 5e-3,
        "batch": 2,
        "save_every": 2,
        "mix": 0.5,
        "pgm": 0.3,
        "lora_r": 4,
        "device": "cpu",
    }
    straight = train(TrainConfig(out=tmp_path / "a", steps=6, **common), on_progress=lambda _: None)
    assert (tmp_path / "a" / "checkpoint-2").is_dir() and (tmp_path / "a" / "checkpoint-6").is_dir()
    assert (tmp_path / "a" / "adapter" / "adapter_config.json").is_file()
    assert json.loads((tmp_path / "a" / "base-config" / "config.json").read_text())[
        "architectures"
    ] == ["Qwen2ForCausalLM"]
    assert straight.samples_seen == {"plain": 6, "refine": 6}
    assert 0.2 < straight.masked_fraction < 0.4
    assert sum(straight.losses[-2:]) < sum(straight.losses[:2])

    # An interrupted run: only what run "a" had written by step 4.
    (tmp_path / "b").mkdir()
    shutil.copytree(tmp_path / "a" / "checkpoint-4", tmp_path / "b" / "checkpoint-4")
    messages: list[str] = []
    resumed = train(
        TrainConfig(out=tmp_path / "b", steps=6, resume=True, **common), on_progress=messages.append
    )
    assert any("resumed from checkpoint-4" in m for m in messages)
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-4)
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "a" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "b" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_train_cli_reports_loss_and_rejects_bad_arguments(
    tiny_base: Path, data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--base",
            str(tiny_base),
            "--data",
            str(data_file),
            "--steps",
            "2",
            "--lora-r",
            "2",
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "step 2/2 loss" in captured.err
    assert "trained 2 steps" in captured.out
    assert (
        main(
            [
                "train",
                "--base",
                str(tiny_base),
                "--data",
                str(tmp_path / "none.jsonl"),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "train",
                "--base",
                str(tmp_path / "nowhere"),
                "--data",
                str(data_file),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "not a registry name" in capsys.readouterr().err


def test_marker_format_trains_too(tiny_base: Path, data_file: Path, tmp_path: Path) -> None:
    summary = train(
        TrainConfig(
            base=str(tiny_base),
            data=(data_file,),
            out=tmp_path / "m",
            steps=2,
            batch=2,
            prompt_format="marker",
            device="cpu",
            lora_r=2,
        ),
        on_progress=lambda _: None,
    )
    assert summary.steps == 2 and summary.masked_fraction > 0


def test_empty_data_is_an_error(tiny_base: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(CyclefixError, match="no samples"):
        train(
            TrainConfig(base=str(tiny_base), data=(empty,), out=tmp_path / "e", steps=1),
            on_progress=lambda _: None,
        )
