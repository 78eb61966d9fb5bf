"""Turn a model spec into a ready Backend: registry name, .gguf path, openai:, scripted:."""

from __future__ import annotations

from pathlib import Path

from cyclefix.models.adapters import resolve_model_spec
from cyclefix.models.backend import Backend
from cyclefix.models.errors import ModelError
from cyclefix.models.gguf_check import check_gguf_file
from cyclefix.models.install import model_path
from cyclefix.models.kv_state import default_state_dir
from cyclefix.models.registry import REGISTRY
from cyclefix.models.remote import SPEC_PREFIX as OPENAI_PREFIX
from cyclefix.models.remote import OpenAICompatibleBackend
from cyclefix.models.scripted import SPEC_PREFIX as SCRIPTED_PREFIX
from cyclefix.models.scripted import ScriptedBackend

__all__ = ["ModelError", "describe_specs", "open_backend"]


def describe_specs() -> str:
    names = ", ".join(sorted(REGISTRY))
    return f"one of {names}, a .gguf file, openai:URL#MODEL or scripted:PATH.json"


def open_backend(
    spec: str,
    *,
    n_ctx: int | None = None,
    n_threads: int | None = None,
    n_gpu_layers: int | None = None,
) -> Backend:
    """Load the model `spec` names; one-line ModelError when it is unknown, missing or bad.

    n_gpu_layers: None offloads every layer when llama.cpp has a GPU backend (models.hardware).
    A llama.cpp model saves the KV state of its prompts' fixed opening in the user cache
    ($CYCLEFIX_KV_STATE_DIR, "off" for none), so the next process skips evaluating it.
    """
    spec = spec.strip()
    if spec.startswith(OPENAI_PREFIX):
        return OpenAICompatibleBackend.from_spec(spec)
    if spec.startswith(SCRIPTED_PREFIX):
        return ScriptedBackend.from_file(Path(spec.removeprefix(SCRIPTED_PREFIX)).expanduser())
    # Imported here: loading llama_cpp costs time that the other backends do not need.
    from cyclefix.models.llama import LlamaCppBackend

    # An adapter (exported by `cyclefix export`) is its base model plus a LoRA GGUF on top.
    resolved = resolve_model_spec(spec)
    if resolved is not None:
        base = open_path_or_name(resolved.base)
        if resolved.adapter is not None:
            check_gguf_file(resolved.adapter)
        return LlamaCppBackend(
            base,
            name=spec,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            lora_path=resolved.adapter,
            lora_scale=resolved.scale,
            state_dir=default_state_dir(),
        )
    if spec in REGISTRY:
        entry = REGISTRY[spec]
        path = model_path(entry)
        check_gguf_file(path)
        return LlamaCppBackend(
            path,
            name=entry.name,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            context_length=entry.context_length,
            state_dir=default_state_dir(),
        )
    path = Path(spec).expanduser()
    if spec.lower().endswith(".gguf") or path.is_file():
        check_gguf_file(path)
        return LlamaCppBackend(
            path,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            state_dir=default_state_dir(),
        )
    raise ModelError(f"unknown model {spec!r}; use {describe_specs()}")


def open_path_or_name(spec: str) -> Path:
    """The checked GGUF file of a registry name or a path."""
    path = model_path(REGISTRY[spec]) if spec in REGISTRY else Path(spec).expanduser()
    check_gguf_file(path)
    return path
