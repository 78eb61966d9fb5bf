"""The server's settings: typed, validated, merged from pyproject, init options and the client.

Sources, later ones winning key by key: defaults < `[tool.cyclefix]` in the project's
pyproject.toml < `initializationOptions` < `workspace/didChangeConfiguration`.
Keys are camelCase as LSP clients send them; snake_case and kebab-case are accepted too,
so the same names work in pyproject.toml.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from cyclefix.refine.types import RefineConfig

DEFAULT_MODEL = "qwen2.5-coder-1.5b"


@dataclass(frozen=True)
class Settings:
    model: str = DEFAULT_MODEL
    # Test selection (paths or node ids relative to the project root); empty: the tests
    # that import the saved module.
    tests: tuple[str, ...] = ()
    rounds: int = RefineConfig.rounds
    # Wall-clock budget of one refinement, seconds.
    budget: float = RefineConfig.budget_seconds
    auto_refine: bool = True
    # Seconds to wait after a save before running, so a burst of saves runs once.
    debounce: float = 0.3
    per_test_timeout: float = RefineConfig.per_test_timeout
    # Python that runs the tests; None: the project's own virtual environment when it has one.
    python: str | None = None

    def refine_config(self, seed: int | None = 0) -> RefineConfig:
        return RefineConfig(
            rounds=self.rounds,
            budget_seconds=self.budget,
            per_test_timeout=self.per_test_timeout,
            seed=seed,
            python=self.python,
        )


# The LSP (camelCase) name of every field.
_LSP_NAMES = {
    "model": "model",
    "tests": "tests",
    "rounds": "rounds",
    "budget": "budget",
    "auto_refine": "autoRefine",
    "debounce": "debounce",
    "per_test_timeout": "perTestTimeout",
    "python": "python",
}
assert set(_LSP_NAMES) == {f.name for f in fields(Settings)}


def _field_for_key(key: str) -> str | None:
    """Map autoRefine / auto_refine / auto-refine / autorefine to the field name."""
    folded = re.sub(r"[-_]", "", key).lower()
    for name, lsp in _LSP_NAMES.items():
        if folded == lsp.lower():
            return name
    return None


def _validate(name: str, value: object) -> tuple[Any, str | None]:
    """The typed value for one field, or an error saying what was expected."""
    lsp = _LSP_NAMES[name]
    if name == "model":
        if isinstance(value, str) and value.strip():
            return value.strip(), None
        return None, f"{lsp} must be a non-empty string (a model name, .gguf path or URL)"
    if name == "tests":
        if isinstance(value, str) and value.strip():
            return (value.strip(),), None
        if isinstance(value, list | tuple) and all(isinstance(v, str) and v.strip() for v in value):
            return tuple(v.strip() for v in value), None
        return None, f"{lsp} must be a list of test paths or node ids"
    if name == "rounds":
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 20:
            return value, None
        return None, f"{lsp} must be a whole number from 1 to 20"
    if name == "python":
        if isinstance(value, str):
            return value.strip() or None, None  # "": the project's own environment
        return None, f"{lsp} must be the path of a Python interpreter, or null"
    if name == "auto_refine":
        if isinstance(value, bool):
            return value, None
        return None, f"{lsp} must be true or false"
    # budget, debounce, per_test_timeout: seconds.
    limits = {"budget": (1.0, 86400.0), "debounce": (0.0, 60.0), "per_test_timeout": (0.1, 3600.0)}
    low, high = limits[name]
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and low <= number <= high:
            return number, None
    return None, f"{lsp} must be a number of seconds from {low:g} to {high:g}"


def unwrap_section(raw: object) -> object:
    """Clients send either the settings or {"cyclefix": settings}; accept both."""
    if isinstance(raw, Mapping) and isinstance(raw.get("cyclefix"), Mapping):
        return raw["cyclefix"]
    return raw


def parse_overrides(raw: object, source: str) -> tuple[dict[str, Any], list[str]]:
    """Valid settings found in `raw` (field name -> value) and one warning per bad entry.

    `source` names where they came from, for the warnings.
    """
    raw = unwrap_section(raw)
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        return {}, [f"{source}: settings must be an object, got {type(raw).__name__}"]
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in raw.items():
        name = _field_for_key(str(key))
        if name is None:
            warnings.append(f"{source}: unknown setting {key!r}")
            continue
        if value is None:
            continue
        typed, error = _validate(name, value)
        if error is not None:
            warnings.append(f"{source}: {error}; using the default")
            continue
        values[name] = typed
    return values, warnings


def merge(*layers: Mapping[str, Any]) -> Settings:
    """Defaults overridden by each layer in turn (later layers win)."""
    settings = Settings()
    for layer in layers:
        settings = replace(settings, **layer)
    return settings


def read_pyproject(root: Path) -> tuple[dict[str, Any], list[str]]:
    """The `[tool.cyclefix]` overrides of the project at `root`, with warnings."""
    path = root / "pyproject.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, []
    except OSError as exc:
        return {}, [f"{path}: cannot read: {exc.strerror}"]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return {}, [f"{path}: invalid TOML ({exc}); [tool.cyclefix] ignored"]
    tool = data.get("tool", {})
    section = tool.get("cyclefix") if isinstance(tool, dict) else None
    return parse_overrides(section, f"{path} [tool.cyclefix]")
