"""Export a trained adapter for llama.cpp: a GGUF LoRA adapter, or a merged quantized model.

Both go through llama.cpp's own converters (convert_lora_to_gguf.py, convert_hf_to_gguf.py) and
llama.cpp's quantizer as exposed by llama-cpp-python.
"""

from __future__ import annotations

import datetime
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cyclefix.errors import CyclefixError
from cyclefix.models.adapters import AdapterEntry, record_adapter
from cyclefix.training.converter import HF_SCRIPT, LORA_SCRIPT, run_script
from cyclefix.training.train import ADAPTER_DIR, BASE_CONFIG_DIR, read_meta

# llama.cpp's file types (llama_ftype) for the quantizations we offer.
QUANT_TYPES = {"Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18, "Q8_0": 7, "F16": 1}


@dataclass(frozen=True)
class ExportResult:
    path: Path
    kind: str  # "lora" or "merged"
    base: str
    name: str
    size: int


def _adapter_dir(folder: Path) -> tuple[Path, Path]:
    """(training folder, adapter folder) for a training folder or one of its checkpoints."""
    if (folder / "adapter_config.json").is_file():
        root = folder.parent if (folder.parent / BASE_CONFIG_DIR).is_dir() else folder
        return root, folder
    if (folder / ADAPTER_DIR / "adapter_config.json").is_file():
        return folder, folder / ADAPTER_DIR
    raise CyclefixError(f"{folder} holds no trained adapter (adapter_config.json)")


def export_lora(
    folder: Path, out: Path, outtype: str = "f16", name: str | None = None
) -> ExportResult:
    """The adapter as a GGUF LoRA adapter for the base it was trained on; recorded by name."""
    root, adapter = _adapter_dir(folder)
    meta = read_meta(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    run_script(
        LORA_SCRIPT,
        [
            "--base",
            str(root / BASE_CONFIG_DIR),
            "--outtype",
            outtype,
            "--outfile",
            str(out),
            str(adapter),
        ],
    )
    if not out.is_file():
        raise CyclefixError(f"{LORA_SCRIPT} wrote no {out}")
    label = name or out.stem
    base = str(meta.get("base_file") or meta["base"])
    # A registry base is recorded by name so the entry keeps working if the cache moves.
    base_spec = str(meta["base"]) if not str(meta["base"]).endswith(".gguf") else base
    record_adapter(
        AdapterEntry(
            label,
            base_spec,
            str(out.resolve()),
            1.0,
            datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )
    )
    return ExportResult(out, "lora", base_spec, label, out.stat().st_size)


def export_merged(
    folder: Path, out: Path, quant: str = "Q4_K_M", on_progress: Callable[[str], None] = print
) -> ExportResult:
    """Base + adapter merged, converted to GGUF (f16) and quantized with llama.cpp."""
    if quant not in QUANT_TYPES:
        raise CyclefixError(f"unknown quantization {quant!r}; use one of {', '.join(QUANT_TYPES)}")
    import torch
    from peft import PeftModel

    from cyclefix.training.base_model import load_model, load_tokenizer, resolve_base

    root, adapter = _adapter_dir(folder)
    meta = read_meta(root)
    base = resolve_base(str(meta["base"]))
    on_progress(f"merging {adapter} into {meta['base']}")
    model = load_model(base, "cpu")
    tokenizer = load_tokenizer(base)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged = merged.to(torch.float16)
    # GGUF weights were dequantized on load: the quantizer left behind only blocks saving them.
    merged.hf_quantizer = None
    if hasattr(merged.config, "quantization_config"):
        del merged.config.quantization_config
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cyclefix-merge-", dir=out.parent) as tmp:
        hf_dir = Path(tmp) / "hf"
        merged.save_pretrained(str(hf_dir), safe_serialization=True)
        tokenizer.save_pretrained(str(hf_dir))
        f16 = Path(tmp) / "model-f16.gguf"
        on_progress("converting to GGUF with llama.cpp's convert_hf_to_gguf.py")
        run_script(HF_SCRIPT, [str(hf_dir), "--outtype", "f16", "--outfile", str(f16)])
        if quant == "F16":
            f16.replace(out)
        else:
            on_progress(f"quantizing to {quant}")
            quantize(f16, out, quant)
    return ExportResult(out, "merged", str(meta["base"]), out.stem, out.stat().st_size)


def quantize(source: Path, target: Path, quant: str) -> None:
    """llama.cpp's quantizer through llama-cpp-python's bindings."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_TYPES[quant]
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), params)
    if status != 0 or not target.is_file():
        raise CyclefixError(
            f"llama.cpp could not quantize {source.name} to {quant} (status {status})"
        )
