"""Adapter entries: recorded on export, resolved from "NAME" or "BASE+ADAPTER" model specs."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from cyclefix.errors import CyclefixError
from cyclefix.models.adapters import (
    AdapterEntry,
    load_adapters,
    record_adapter,
    resolve_model_spec,
)
from cyclefix.training.converter import extract_scripts


@pytest.fixture(autouse=True)
def adapters_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "adapters.json"
    monkeypatch.setenv("CYCLEFIX_ADAPTERS_FILE", str(path))
    return path


def test_recorded_adapter_resolves_by_name_and_with_a_base(tmp_path: Path) -> None:
    adapter = tmp_path / "tuned.gguf"
    adapter.write_bytes(b"GGUF")
    record_adapter(AdapterEntry("tuned", "qwen2.5-coder-0.5b", str(adapter), 0.5))
    assert load_adapters()["tuned"].scale == 0.5
    by_name = resolve_model_spec("tuned")
    assert by_name is not None
    assert (by_name.base, by_name.adapter, by_name.scale) == ("qwen2.5-coder-0.5b", adapter, 0.5)
    other_base = resolve_model_spec("qwen2.5-coder-1.5b+tuned")
    assert other_base is not None and other_base.base == "qwen2.5-coder-1.5b"
    by_path = resolve_model_spec(f"qwen2.5-coder-0.5b+{adapter}")
    assert by_path is not None and by_path.adapter == adapter and by_path.scale == 1.0


def test_plain_specs_are_not_adapters() -> None:
    assert resolve_model_spec("qwen2.5-coder-0.5b") is None
    assert resolve_model_spec("openai:http://127.0.0.1:1/v1#m") is None


def test_missing_adapter_file_is_a_clear_error(tmp_path: Path) -> None:
    record_adapter(AdapterEntry("gone", "qwen2.5-coder-0.5b", str(tmp_path / "gone.gguf")))
    with pytest.raises(CyclefixError, match="export it again"):
        resolve_model_spec("gone")
    with pytest.raises(CyclefixError, match="missing"):
        resolve_model_spec(f"qwen2.5-coder-0.5b+{tmp_path / 'nothing.gguf'}")


def test_entries_replace_by_name(tmp_path: Path) -> None:
    record_adapter(AdapterEntry("a", "base-1", "/x/a.gguf"))
    record_adapter(AdapterEntry("a", "base-2", "/x/a.gguf"))
    record_adapter(AdapterEntry("b", "base-1", "/x/b.gguf"))
    assert {k: v.base for k, v in load_adapters().items()} == {"a": "base-2", "b": "base-1"}


def test_corrupt_list_is_a_clear_error(adapters_file: Path) -> None:
    adapters_file.write_text("{not json")
    with pytest.raises(CyclefixError, match="adapter list"):
        load_adapters()


def test_conversion_scripts_come_out_of_an_sdist(tmp_path: Path) -> None:
    root = tmp_path / "src" / "llama_cpp_python-9.9.9" / "vendor" / "llama.cpp"
    for rel in (
        "convert_lora_to_gguf.py",
        "convert_hf_to_gguf.py",
        "conversion/__init__.py",
        "gguf-py/gguf/__init__.py",
        "ggml/other.c",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("# " + rel)
    sdist = tmp_path / "llama_cpp_python-9.9.9.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(tmp_path / "src" / "llama_cpp_python-9.9.9", arcname="llama_cpp_python-9.9.9")
    target = extract_scripts(sdist, tmp_path / "cache" / "9.9.9")
    assert (target / "convert_lora_to_gguf.py").read_text() == "# convert_lora_to_gguf.py"
    assert (target / "gguf-py" / "gguf" / "__init__.py").is_file()
    assert (target / "conversion" / "__init__.py").is_file()
    assert not (target / "ggml").exists()
