"""LoRA fine-tuning on plain and refine samples, with the Past Generation Mask (CYCLE phase II).

Loss falls only on the target reply. For refine samples a random fraction of the tokens in the
faulty code + feedback spans is hidden from attention (their key positions are masked), so the
model learns to write a fix rather than copy. Plain and refine samples are drawn at ratio --mix.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cyclefix.errors import CyclefixError
from cyclefix.training.samples import (
    PromptFormat,
    RenderedSample,
    TrainingRecord,
    masked_positions,
    mixed_order,
    record_from_json,
    render,
)

ADAPTER_DIR = "adapter"
BASE_CONFIG_DIR = "base-config"
META_FILE = "cyclefix-train.json"
STATE_FILE = "trainer-state.pt"
IGNORE_INDEX = -100


@dataclass(frozen=True)
class TrainConfig:
    base: str
    data: tuple[Path, ...]
    out: Path
    mix: float = 0.4
    pgm: float = 0.3
    lora_r: int = 8
    lora_alpha: int = 16
    steps: int = 100
    lr: float = 2e-4
    batch: int = 1
    max_length: int = 1024
    save_every: int = 50
    seed: int = 0
    resume: bool = False
    prompt_format: PromptFormat | None = None  # None: chat when the tokenizer has a template
    device: str | None = None  # None: cuda when present, else cpu
    target_modules: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )


@dataclass
class TrainSummary:
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    samples_seen: dict[str, int] = field(default_factory=dict)
    masked_fraction: float = 0.0
    skipped_too_long: int = 0
    adapter: str = ""
    device: str = ""


def load_records(paths: Sequence[Path]) -> list[TrainingRecord]:
    from cyclefix.training.mbpp import read_jsonl

    records = []
    for path in paths:
        for number, row in enumerate(read_jsonl(path), start=1):
            records.append(record_from_json(row, f"{path}:{number}"))
    if not records:
        raise CyclefixError("the training data holds no samples")
    return records


@dataclass(frozen=True)
class EncodedSample:
    input_ids: list[int]
    labels: list[int]
    attention: list[int]  # 0 where PGM hides the token from every later position
    pgm_candidates: int  # tokens inside the PGM spans
    pgm_masked: int


def encode(
    sample: RenderedSample, tokenizer: Any, pgm: float, rng: random.Random, max_length: int
) -> EncodedSample | None:
    """Token ids, labels on the target only, and the PGM attention row; None if too long."""
    encoding = tokenizer(sample.text, return_offsets_mapping=True, add_special_tokens=False)
    ids: list[int] = list(encoding["input_ids"])
    offsets: list[tuple[int, int]] = [(int(a), int(b)) for a, b in encoding["offset_mapping"]]
    if len(ids) > max_length:
        return None
    labels = [
        tok if start >= sample.target_start else IGNORE_INDEX
        for tok, (start, _) in zip(ids, offsets, strict=True)
    ]
    attention = [1] * len(ids)
    inside = masked_positions(offsets, sample.pgm_spans, 1.0, rng) if sample.pgm_spans else []
    hidden = (
        masked_positions(offsets, sample.pgm_spans, pgm, rng)
        if sample.pgm_spans and pgm > 0
        else []
    )
    for position in hidden:
        attention[position] = 0
    return EncodedSample(ids, labels, attention, len(inside), len(hidden))


def target_loss(causal_lm: Any, ids: Any, mask: Any, positions: Any, labels: Any) -> Any:
    """Mean next-token loss on the target tokens; the vocabulary projection runs only there.

    The LM head is a large share of a small model's compute, and prompt positions carry no loss.
    """
    import torch

    hidden = causal_lm.model(
        input_ids=ids, attention_mask=mask, position_ids=positions
    ).last_hidden_state
    next_labels = labels[:, 1:]
    selected = next_labels != IGNORE_INDEX
    logits = causal_lm.lm_head(hidden[:, :-1][selected]).float()
    return torch.nn.functional.cross_entropy(logits, next_labels[selected])


def pick_device(requested: str | None) -> str:
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def _latest_checkpoint(out: Path) -> Path | None:
    found = [p for p in out.glob("checkpoint-*") if p.name.removeprefix("checkpoint-").isdigit()]
    return max(found, key=lambda p: int(p.name.removeprefix("checkpoint-")), default=None)


def train(config: TrainConfig, on_progress: Callable[[str], None] = print) -> TrainSummary:
    """Fine-tune a LoRA adapter: checkpoints in OUT/checkpoint-N, the result in OUT/adapter."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    from cyclefix.training.base_model import (
        load_model,
        load_tokenizer,
        resolve_base,
        save_base_config,
    )

    records = load_records(config.data)
    base = resolve_base(config.base)
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    config.out.mkdir(parents=True, exist_ok=True)
    on_progress(f"loading {config.base} on {device}")
    tokenizer = load_tokenizer(base)
    model = load_model(base, device)
    has_template = bool(getattr(tokenizer, "chat_template", None))
    fmt: PromptFormat = config.prompt_format or ("chat" if has_template else "marker")

    def chat_template(messages: Sequence[dict[str, str]], generation_prompt: bool) -> str:
        text: str = tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=generation_prompt
        )
        return text

    rendered = [
        render(r, fmt, chat_template if has_template else None, tokenizer.eos_token or "")
        for r in records
    ]
    plain = [s for s in rendered if s.kind == "plain"]
    refine = [s for s in rendered if s.kind == "refine"]
    on_progress(
        f"{len(plain)} plain and {len(refine)} refine samples; format {fmt}; "
        f"mix {config.mix}; PGM {config.pgm}"
    )
    order = mixed_order(
        len(plain), len(refine), config.mix, config.steps * config.batch, config.seed
    )

    checkpoint = _latest_checkpoint(config.out) if config.resume else None
    if config.resume and checkpoint is None:
        on_progress(f"no checkpoint in {config.out}; starting from step 0")
    if checkpoint is not None:
        model = PeftModel.from_pretrained(model, str(checkpoint), is_trainable=True)
    else:
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=0.0,
            target_modules=list(config.target_modules),
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    warmup = max(1, config.steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, config.steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    summary = TrainSummary(steps=0, device=device, samples_seen={"plain": 0, "refine": 0})
    start_step = 0
    candidates_total = 0
    masked_total = 0
    if checkpoint is not None:
        state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_step = int(state["step"])
        summary.losses = list(state["losses"])
        summary.samples_seen = dict(state["samples_seen"])
        summary.skipped_too_long = int(state.get("skipped_too_long", 0))
        candidates_total, masked_total = state.get("pgm_counts", (0, 0))
        on_progress(f"resumed from {checkpoint.name} at step {start_step}")
    save_base_config(model.get_base_model(), tokenizer, config.out / BASE_CONFIG_DIR)
    _write_meta(config, base.spec, str(base.gguf_path or base.folder), fmt, summary)

    t0 = time.monotonic()
    pad = int(tokenizer.pad_token_id)
    for step in range(start_step, config.steps):
        # Each step's PGM draw depends only on the seed and the step, so a resumed run matches.
        rng = random.Random(f"{config.seed}:pgm:{step}")
        batch: list[EncodedSample] = []
        for kind, index in order[step * config.batch : (step + 1) * config.batch]:
            sample = (refine if kind == "refine" else plain)[index]
            encoded = encode(sample, tokenizer, config.pgm, rng, config.max_length)
            if encoded is None:
                summary.skipped_too_long += 1
                continue
            batch.append(encoded)
            summary.samples_seen[kind] = summary.samples_seen.get(kind, 0) + 1
            candidates_total += encoded.pgm_candidates
            masked_total += encoded.pgm_masked
        if not batch:
            continue
        width = max(len(s.input_ids) for s in batch)
        ids = torch.tensor(
            [s.input_ids + [pad] * (width - len(s.input_ids)) for s in batch], device=device
        )
        labels = torch.tensor(
            [s.labels + [IGNORE_INDEX] * (width - len(s.labels)) for s in batch], device=device
        )
        mask = torch.tensor(
            [s.attention + [0] * (width - len(s.attention)) for s in batch], device=device
        )
        positions = torch.arange(width, device=device).unsqueeze(0).expand(len(batch), -1)
        loss = target_loss(model.get_base_model(), ids, mask, positions, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        summary.losses.append(float(loss.item()))
        done = step + 1
        elapsed = time.monotonic() - t0
        rate = elapsed / (done - start_step)
        on_progress(
            f"step {done}/{config.steps} loss {loss.item():.4f} "
            f"lr {scheduler.get_last_lr()[0]:.2e} "
            f"tokens {width} {rate:.1f}s/step eta {rate * (config.steps - done) / 60:.1f} min"
        )
        if done % config.save_every == 0 or done == config.steps:
            summary.masked_fraction = masked_total / candidates_total if candidates_total else 0.0
            _save_checkpoint(
                model,
                optimizer,
                scheduler,
                config.out / f"checkpoint-{done}",
                done,
                summary,
                (candidates_total, masked_total),
            )
            summary.steps = done
            summary.seconds = time.monotonic() - t0
            # Progress on disk too: an interrupted run still says how far it got.
            _write_meta(config, base.spec, str(base.gguf_path or base.folder), fmt, summary)
    summary.steps = config.steps
    summary.seconds = time.monotonic() - t0
    summary.masked_fraction = masked_total / candidates_total if candidates_total else 0.0
    adapter = config.out / ADAPTER_DIR
    model.save_pretrained(str(adapter))
    summary.adapter = str(adapter)
    _write_meta(config, base.spec, str(base.gguf_path or base.folder), fmt, summary)
    return summary


def _save_checkpoint(
    model: Any,
    optimizer: Any,
    scheduler: Any,
    folder: Path,
    step: int,
    summary: TrainSummary,
    pgm_counts: tuple[int, int],
) -> None:
    import torch

    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(str(tmp))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "losses": summary.losses,
            "samples_seen": summary.samples_seen,
            "skipped_too_long": summary.skipped_too_long,
            "pgm_counts": pgm_counts,
        },
        tmp / STATE_FILE,
    )
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)  # a checkpoint folder exists only once it is complete


def _write_meta(
    config: TrainConfig, base_spec: str, base_file: str, fmt: str, summary: TrainSummary
) -> None:
    meta = {
        "base": base_spec,
        "base_file": base_file,
        "format": fmt,
        "config": {
            k: (str(v) if isinstance(v, Path) else [str(x) for x in v] if k == "data" else v)
            for k, v in asdict(config).items()
        },
        "summary": asdict(summary),
    }
    (config.out / META_FILE).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")


def read_meta(out: Path) -> dict[str, Any]:
    path = out / META_FILE
    if not path.is_file():
        raise CyclefixError(f"{out} is not a cyclefix training folder (no {META_FILE})")
    meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return meta
