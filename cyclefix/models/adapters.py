"""Exported LoRA adapters, recorded in the cyclefix cache so `--model` can name them.

adapters.json maps an adapter name to its GGUF file and the base model it was trained on (a
registry name or a .gguf path). A model spec "BASE+ADAPTER" names a base and an adapter file
(or a recorded adapter name); a bare recorded adapter name means its own base.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from cyclefix.errors import CyclefixError

ADAPTERS_FILE_ENV = "CYCLEFIX_ADAPTERS_FILE"
SPEC_JOINER = "+"


@dataclass(frozen=True)
class AdapterEntry:
    name: str
    base: str  # registry name or .gguf path the adapter was trained on
    path: str  # the GGUF LoRA adapter
    scale: float = 1.0
    created: str = ""


@dataclass(frozen=True)
class ResolvedModel:
    """What a model spec means for llama.cpp: a base spec, and a LoRA adapter file or none."""

    base: str
    adapter: Path | None
    scale: float = 1.0


def adapters_file() -> Path:
    override = os.environ.get(ADAPTERS_FILE_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("cyclefix")) / "adapters.json"


def load_adapters() -> dict[str, AdapterEntry]:
    path = adapters_file()
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CyclefixError(f"cannot read the adapter list {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise CyclefixError(f"the adapter list {path} is not a JSON object")
    return {name: AdapterEntry(**entry) for name, entry in raw.items()}


def record_adapter(entry: AdapterEntry) -> Path:
    """Add or replace an adapter entry; written atomically."""
    entries = load_adapters()
    entries[entry.name] = entry
    path = adapters_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        json.dumps({k: asdict(v) for k, v in sorted(entries.items())}, indent=2) + "\n",
        encoding="utf-8",
    )
    tmp.replace(path)
    return path


def resolve_model_spec(spec: str) -> ResolvedModel | None:
    """None when `spec` names no adapter; else the base spec and the adapter file.

    "BASE+ADAPTER" where ADAPTER is a .gguf path or a recorded name; or a recorded name alone.
    """
    entries = load_adapters()
    if SPEC_JOINER in spec and not Path(spec).exists():
        base, _, adapter = spec.rpartition(SPEC_JOINER)
        if adapter in entries:
            entry = entries[adapter]
            return ResolvedModel(base, _existing(Path(entry.path), adapter), entry.scale)
        return ResolvedModel(base, _existing(Path(adapter).expanduser(), adapter))
    if spec in entries:
        entry = entries[spec]
        return ResolvedModel(entry.base, _existing(Path(entry.path), spec), entry.scale)
    return None


def _existing(path: Path, label: str) -> Path:
    if not path.is_file():
        raise CyclefixError(
            f"adapter {label}: file {path} is missing; export it again with `cyclefix export`"
        )
    return path
