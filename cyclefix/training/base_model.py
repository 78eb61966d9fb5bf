"""Load a base model for fine-tuning: a registry GGUF, a .gguf file, or a Hugging Face folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclefix.errors import CyclefixError


@dataclass(frozen=True)
class BaseSpec:
    """Where the base lives; gguf is set when transformers dequantizes a GGUF file."""

    spec: str
    folder: Path
    gguf_file: str | None

    @property
    def gguf_path(self) -> Path | None:
        return self.folder / self.gguf_file if self.gguf_file else None


def resolve_base(spec: str) -> BaseSpec:
    """A registry name, a .gguf path or a local Hugging Face model folder."""
    from cyclefix.models.registry import REGISTRY

    if spec in REGISTRY:
        from cyclefix.models.install import model_path

        path = model_path(spec).resolve()
        return BaseSpec(spec, path.parent, path.name)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return BaseSpec(spec, path.resolve().parent, path.name)
    if path.is_dir() and (path / "config.json").is_file():
        return BaseSpec(spec, path.resolve(), None)
    known = ", ".join(sorted(REGISTRY))
    raise CyclefixError(
        f"base model {spec!r} is not a registry name ({known}), a .gguf file or an HF folder"
    )


def load_tokenizer(base: BaseSpec) -> Any:
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": base.gguf_file} if base.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(str(base.folder), **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(base: BaseSpec, device: str) -> Any:
    """The base as a causal LM, float32 on CPU, bfloat16 on CUDA; GGUF weights dequantized."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    kwargs: dict[str, Any] = {"gguf_file": base.gguf_file} if base.gguf_file else {}
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(str(base.folder), dtype=dtype, **kwargs)
    except (OSError, ValueError) as exc:
        raise CyclefixError(
            f"cannot load base model {base.spec}: {str(exc).splitlines()[0]}"
        ) from None
    return model.to(device)


def save_base_config(model: Any, tokenizer: Any, folder: Path) -> None:
    """config.json and tokenizer files: what llama.cpp's LoRA converter reads of the base."""
    folder.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict()
    config.pop("quantization_config", None)  # the GGUF dequantization note is not the base's config
    if not config.get("architectures"):
        # Models loaded from GGUF carry no architecture name; the converter picks its class by it.
        config["architectures"] = [type(model).__name__]
    import json

    (folder / "config.json").write_text(json.dumps(config, indent=2, default=str), encoding="utf-8")
    tokenizer.save_pretrained(str(folder))
