"""benchmarks/llama_raw.py: raw llama.cpp speed beside cyclefix's own calls."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from cyclefix.models.install import model_path
from cyclefix.models.registry import FAST_MODEL

REPO = Path(__file__).resolve().parents[1]


def load_raw() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llama_raw", REPO / "benchmarks" / "llama_raw.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["llama_raw"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


raw = load_raw()


def test_speeds_are_total_tokens_over_total_seconds() -> None:
    speed = raw.RawSpeed(
        "m.gguf", 2, (raw.RawCall(100, 2.0, 10, 1.0), raw.RawCall(300, 2.0, 30, 3.0))
    )
    assert speed.prompt_tokens_per_second == 100.0
    assert speed.generate_tokens_per_second == 10.0


def test_no_calls_is_no_speed_rather_than_an_error() -> None:
    assert raw.RawSpeed("m.gguf", 2).prompt_tokens_per_second == 0.0


def test_text_prompts_get_their_answer_prefix_and_token_limit(tmp_path: Path) -> None:
    lines = [{"text": "<|im_start|>user\nhi", "answer_prefix": "```python\n", "max_tokens": 5}]
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    prompts = raw.read_prompts(path, tmp_path / "unused.gguf")
    assert prompts == [raw.RawPrompt("<|im_start|>user\nhi```python\n", 5)]


@pytest.mark.model
def test_the_real_model_reads_and_writes_at_measured_speeds() -> None:
    model = model_path(FAST_MODEL)
    messages = [{"role": "user", "content": "Write def add(a, b)."}]
    prompt = raw.RawPrompt(raw.render_messages(model, messages), max_tokens=4)
    speed = raw.raw_llama_speed(model, [prompt], n_threads=2, n_ctx=512)
    [call] = speed.calls
    assert call.prompt_tokens > 10 and 1 <= call.generated_tokens <= 4
    assert speed.prompt_tokens_per_second > 0 and speed.generate_tokens_per_second > 0
