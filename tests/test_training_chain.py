"""The whole chain at tiny scale with the real 0.5B model, on the CPU:
lintseq -> collect -> train -> export -> llama.cpp loads base + adapter and generates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest

from cyclefix.cli import main
from cyclefix.errors import CyclefixError

pytestmark = pytest.mark.model

FIXTURES = Path(__file__).parent / "fixtures" / "training"
MODEL = "qwen2.5-coder-0.5b"


@pytest.fixture(scope="module")
def base_gguf() -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from cyclefix.models.install import model_path

    try:
        return model_path(MODEL)
    except CyclefixError as exc:
        pytest.skip(str(exc))


def test_lintseq_collect_train_export_and_generate(
    base_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CYCLEFIX_ADAPTERS_FILE", str(tmp_path / "adapters.json"))
    lintseq = tmp_path / "lintseq.jsonl"
    assert (
        main(
            [
                "data",
                "lintseq",
                str(FIXTURES / "programs"),
                "-o",
                str(lintseq),
                "--per-program",
                "1",
            ]
        )
        == 0
    )
    assert len(lintseq.read_text().splitlines()) == 3

    collected = tmp_path / "collect.jsonl"
    problems = f"{FIXTURES / 'mbpp_small.jsonl'}:train"
    argv = ["data", "collect", "--problems", problems, "--model", MODEL, "-o", str(collected)]
    assert main([*argv, "--limit", "3", "--max-tokens", "128"]) == 0
    stats = json.loads(collected.with_suffix(".stats.json").read_text())
    assert stats["problems"] == 3 and stats["samples"] == 3
    rows = [json.loads(line) for line in collected.read_text().splitlines()]
    assert {r["kind"] for r in rows} <= {"plain", "refine"}
    # Every problem gives its reference as a plain sample; each failing usable sample a refine one.
    assert sum(r["kind"] == "refine" for r in rows) == stats["refine_records"] <= stats["failing"]

    out = tmp_path / "run"
    train_argv = [
        "train",
        "--base",
        MODEL,
        "--data",
        str(collected),
        str(lintseq),
        "--out",
        str(out),
    ]
    assert (
        main(
            [
                *train_argv,
                "--steps",
                "2",
                "--mix",
                "0.5",
                "--max-length",
                "768",
                "--lora-r",
                "4",
                "--save-every",
                "1",
            ]
        )
        == 0
    )
    assert (out / "checkpoint-2" / "adapter_model.safetensors").is_file()
    meta = json.loads((out / "cyclefix-train.json").read_text())
    # --mix 0.5 over two draws: one plain, one refine (all plain if the model failed nothing).
    expected = {"plain": 1, "refine": 1} if stats["refine_records"] else {"plain": 2, "refine": 0}
    assert meta["summary"]["samples_seen"] == expected

    adapter = tmp_path / "tuned.gguf"
    assert main(["export", str(out), "--out", str(adapter), "--name", "tiny-tuned"]) == 0
    import gguf

    reader = gguf.GGUFReader(str(adapter))
    fields = {
        name: field.contents()
        for name, field in reader.fields.items()
        if name.startswith(("general.type", "adapter."))
    }
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert any(t.name.endswith(".lora_a") for t in reader.tensors)

    from cyclefix.models.adapters import resolve_model_spec

    resolved = resolve_model_spec("tiny-tuned")
    assert resolved is not None and resolved.base == MODEL and resolved.adapter == adapter.resolve()

    import llama_cpp
    from llama_cpp.llama_types import CreateChatCompletionResponse

    llm = llama_cpp.Llama(
        model_path=str(base_gguf), lora_path=str(adapter), n_ctx=512, verbose=False, seed=0
    )
    # Without stream=True the declared Union is one response, not an iterator of chunks.
    reply = cast(
        CreateChatCompletionResponse,
        llm.create_chat_completion(
            messages=[
                {"role": "user", "content": "Write a Python function add(a, b) that returns a + b."}
            ],
            max_tokens=48,
            temperature=0.0,
        ),
    )
    text = reply["choices"][0]["message"]["content"]
    assert text is not None and "def add" in text

    # What every frontend calls (fix, serve, tui, bench): the adapter by name and as BASE+PATH.
    from cyclefix.models.backend import ChatMessage, GenerationOptions
    from cyclefix.refine import open_backend

    for spec in ("tiny-tuned", f"{MODEL}+{adapter}"):
        backend = open_backend(spec, n_ctx=512)
        try:
            result = backend.generate(
                [ChatMessage("user", "Write a Python function add(a, b) that returns a + b.")],
                GenerationOptions(temperature=0.0, max_tokens=48),
            )
        finally:
            backend.close()
        assert "def add" in result.text, spec
