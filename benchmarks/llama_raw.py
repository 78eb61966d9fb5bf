"""Raw llama.cpp speed on given prompts: plain `llama_cpp.Llama`, none of cyclefix's code.

A speed table puts cyclefix's own model calls beside these numbers (same model, threads and
machine). Each prompt is read whole from an empty cache, then greedy tokens are decoded one at
a time up to the end of turn or --max-tokens.

    python benchmarks/llama_raw.py prompts.jsonl --model qwen2.5-coder-1.5b --threads 2

A JSONL line is {"text": rendered prompt} or {"messages": [{"role", "content"}...]} (rendered
with the GGUF's chat template, as llama-cpp-python does), with an optional "answer_prefix"
appended and an optional "max_tokens".
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RawPrompt:
    text: str  # the rendered prompt, special tokens included
    max_tokens: int | None = None  # None: the run's max_tokens


@dataclass(frozen=True)
class RawCall:
    prompt_tokens: int
    prompt_seconds: float
    generated_tokens: int
    generate_seconds: float
    # CPU seconds of this process for the prompt: on a busy machine a steadier measure of the
    # work than wall time (with one thread; more threads add their spin-waits).
    prompt_cpu_seconds: float = 0.0


@dataclass(frozen=True)
class RawSpeed:
    """Totals over the prompts; tokens per second are total tokens over total seconds."""

    model: str
    n_threads: int
    calls: tuple[RawCall, ...] = field(default=())

    @property
    def prompt_tokens(self) -> int:
        return sum(c.prompt_tokens for c in self.calls)

    @property
    def prompt_seconds(self) -> float:
        return sum(c.prompt_seconds for c in self.calls)

    @property
    def generated_tokens(self) -> int:
        return sum(c.generated_tokens for c in self.calls)

    @property
    def generate_seconds(self) -> float:
        return sum(c.generate_seconds for c in self.calls)

    @property
    def prompt_tokens_per_second(self) -> float:
        return self.prompt_tokens / self.prompt_seconds if self.prompt_seconds > 0 else 0.0

    @property
    def generate_tokens_per_second(self) -> float:
        return self.generated_tokens / self.generate_seconds if self.generate_seconds > 0 else 0.0


def render_messages(model: Path, messages: Sequence[dict[str, str]]) -> str:
    """`messages` in the GGUF's chat template, with the assistant turn opened."""
    from llama_cpp import llama_chat_format

    from cyclefix.models.gguf_check import read_gguf_info

    template = read_gguf_info(model).metadata.get("tokenizer.chat_template")
    if not isinstance(template, str):
        raise ValueError(f"{model} has no chat template; give rendered prompts as text")
    formatter = llama_chat_format.Jinja2ChatFormatter(template, eos_token="", bos_token="")
    rendered: str = formatter(messages=list(messages)).prompt  # type: ignore[arg-type]
    return rendered


def read_prompts(path: Path, model: Path) -> list[RawPrompt]:
    prompts: list[RawPrompt] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        text = data["text"] if "text" in data else render_messages(model, data["messages"])
        prompts.append(RawPrompt(text + data.get("answer_prefix", ""), data.get("max_tokens")))
    return prompts


def raw_llama_speed(
    model: Path,
    prompts: Sequence[RawPrompt],
    *,
    n_threads: int,
    max_tokens: int = 64,
    n_ctx: int = 8192,
    n_gpu_layers: int = 0,
    weight_repack: bool | None = None,
    **llama_settings: Any,
) -> RawSpeed:
    """Prompt and generation speed of plain llama.cpp on `prompts`, one after another.

    llama_settings go to `llama_cpp.Llama` as they are (n_batch, n_ubatch, flash_attn, ...).
    weight_repack: None repacks the weights as cyclefix would on this machine
    (models.hardware.repack_weights), so that both load the same model.
    """
    import llama_cpp
    import numpy as np

    from cyclefix.models.hardware import Device, read_cpuinfo, repack_weights
    from cyclefix.models.llama_runtime import model_params_amended

    if weight_repack is None:
        weight_repack = repack_weights(Device(n_gpu_layers, n_threads), read_cpuinfo())
    with model_params_amended(llama_cpp, use_extra_bufts=weight_repack):
        llama = llama_cpp.Llama(
            model_path=str(model),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=llama_settings.pop("n_threads_batch", n_threads),
            n_gpu_layers=n_gpu_layers,
            verbose=False,
            **llama_settings,
        )
    calls: list[RawCall] = []
    n_vocab = llama.n_vocab()
    try:
        for prompt in prompts:
            tokens = llama.tokenize(prompt.text.encode("utf-8"), add_bos=False, special=True)
            llama.n_tokens = 0
            llama._ctx.kv_cache_seq_rm(-1, 0, -1)  # an empty cache: every token is read
            started, cpu_started = time.perf_counter(), time.process_time()
            llama.eval(tokens)
            read, cpu_read = time.perf_counter(), time.process_time()
            generated = 0
            for _ in range(prompt.max_tokens or max_tokens):
                logits = llama._ctx.get_logits_ith(-1)
                token = int(np.argmax(np.ctypeslib.as_array(logits, shape=(n_vocab,))))
                generated += 1
                if llama_cpp.llama_vocab_is_eog(llama._model.vocab, token):
                    break
                llama.eval([token])
            done = time.perf_counter()
            calls.append(
                RawCall(len(tokens), read - started, generated, done - read, cpu_read - cpu_started)
            )
    finally:
        llama.close()
    return RawSpeed(model=str(model), n_threads=n_threads, calls=tuple(calls))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prompts", type=Path, help="JSONL of prompts")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="registry name or .gguf")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--n-batch", type=int, default=512)
    parser.add_argument("--n-ubatch", type=int, default=512)
    parser.add_argument("--threads-batch", type=int, default=None)
    parser.add_argument("--flash-attn", action="store_true")
    parser.add_argument(
        "--repack",
        choices=("auto", "on", "off"),
        default="auto",
        help="weight repacking for the CPU kernels (auto: as cyclefix chooses here)",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    parser.add_argument("--json", action="store_true", help="print the totals as JSON")
    args = parser.parse_args(argv)

    from cyclefix.models.install import model_path
    from cyclefix.models.registry import REGISTRY

    model = model_path(REGISTRY[args.model]) if args.model in REGISTRY else Path(args.model)
    prompts = read_prompts(args.prompts, model)[: args.limit]
    speed = raw_llama_speed(
        model,
        prompts,
        n_threads=args.threads,
        max_tokens=args.max_tokens,
        n_batch=args.n_batch,
        n_ubatch=args.n_ubatch,
        n_threads_batch=args.threads_batch or args.threads,
        flash_attn=args.flash_attn,
        weight_repack=None if args.repack == "auto" else args.repack == "on",
    )
    if args.json:
        totals = {
            "prompt_tokens_per_second": speed.prompt_tokens_per_second,
            "generate_tokens_per_second": speed.generate_tokens_per_second,
        }
        print(json.dumps({**asdict(speed), **totals}))
        return 0
    for call in speed.calls:
        print(
            f"prompt {call.prompt_tokens:5d} tok {call.prompt_seconds:7.2f} s   "
            f"generate {call.generated_tokens:4d} tok {call.generate_seconds:7.2f} s"
        )
    per_prompt = [c.prompt_tokens / c.prompt_seconds for c in speed.calls if c.prompt_seconds]
    print(
        f"{Path(speed.model).name}, {speed.n_threads} threads: "
        f"prompt {speed.prompt_tokens_per_second:.1f} tok/s "
        f"(median {statistics.median(per_prompt or [0.0]):.1f}), "
        f"generate {speed.generate_tokens_per_second:.1f} tok/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
