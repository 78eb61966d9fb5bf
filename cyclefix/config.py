"""One configuration for every front-end: typed settings, their sources, and one precedence.

`fix`, `tui`, `serve` and `cyclefix config` read the same settings. Sources, later ones
winning key by key: defaults < the user's config file ($XDG_CONFIG_HOME/cyclefix/config.toml,
else ~/.config/cyclefix/config.toml) < `[tool.cyclefix]` in the project's pyproject.toml <
editor or TUI settings < command-line flags. A project's `model` and `python` count only once
the user trusts them (cyclefix.trust). Keys are camelCase as LSP clients send them;
snake_case and kebab-case are accepted too, so the same names work in TOML files.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from cyclefix.errors import CyclefixError
from cyclefix.models.registry import DEFAULT_MODEL
from cyclefix.refine.types import RefineConfig
from cyclefix.trust import TrustRequest, TrustStore

# llama.cpp's n_gpu_layers for "every layer".
ALL_LAYERS = -1

GitOnApply = Literal["commit", "stage", "none"]
GIT_ON_APPLY: tuple[GitOnApply, ...] = ("commit", "stage", "none")


@dataclass(frozen=True)
class Settings:
    model: str = DEFAULT_MODEL
    # Test selection (paths or node ids relative to the project root); empty: the tests
    # that import the saved module (serve) or PATH (fix).
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
    # Model layers offloaded to the GPU; None: all when llama.cpp can offload, else none.
    gpu_layers: int | None = None
    # CPU threads for generation; None: the machine's physical cores (models.llama).
    threads: int | None = None
    # What applying a verified fix does in git besides writing the files.
    git_on_apply: GitOnApply = "none"
    # Environment names passed to the tests besides the runner's allowlist (never CYCLEFIX_*).
    # Honoured from the user's own settings only: a project cannot ask for the user's secrets.
    pass_env: tuple[str, ...] = ()

    def refine_config(self, seed: int | None = 0) -> RefineConfig:
        return RefineConfig(
            rounds=self.rounds,
            budget_seconds=self.budget,
            per_test_timeout=self.per_test_timeout,
            seed=seed,
            python=self.python,
            pass_env=self.pass_env,
        )


# The LSP (camelCase) name of every field: the name `cyclefix config` prints.
LSP_NAMES = {
    "model": "model",
    "tests": "tests",
    "rounds": "rounds",
    "budget": "budget",
    "auto_refine": "autoRefine",
    "debounce": "debounce",
    "per_test_timeout": "perTestTimeout",
    "python": "python",
    "gpu_layers": "gpuLayers",
    "threads": "threads",
    "git_on_apply": "gitOnApply",
    "pass_env": "passEnv",
}
assert set(LSP_NAMES) == {f.name for f in fields(Settings)}


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Settings a project's own pyproject.toml may not set at all (only the user may).
USER_ONLY_SETTINGS = ("pass_env",)


def field_for_key(key: str) -> str | None:
    """Map autoRefine / auto_refine / auto-refine / autorefine to the field name."""
    folded = re.sub(r"[-_]", "", key).lower()
    for name, lsp in LSP_NAMES.items():
        if folded == lsp.lower():
            return name
    return None


def _whole(value: object, low: int, high: int) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None


def validate(name: str, value: object) -> tuple[Any, str | None]:
    """The typed value for one field, or an error saying what was expected."""
    lsp = LSP_NAMES[name]
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
        rounds = _whole(value, 1, 20)
        if rounds is not None:
            return rounds, None
        return None, f"{lsp} must be a whole number from 1 to 20"
    if name == "gpu_layers":
        if value == "all":
            return ALL_LAYERS, None
        layers = _whole(value, ALL_LAYERS, 10_000)
        if layers is not None:
            return layers, None
        return None, f'{lsp} must be a whole number of layers (0: CPU only), or "all" (-1)'
    if name == "threads":
        threads = _whole(value, 1, 1024)
        if threads is not None:
            return threads, None
        return None, f"{lsp} must be a whole number of threads from 1 to 1024"
    if name == "git_on_apply":
        if isinstance(value, str) and value.strip().lower() in GIT_ON_APPLY:
            return value.strip().lower(), None
        return None, f'{lsp} must be "commit", "stage" or "none"'
    if name == "pass_env":
        names = [value] if isinstance(value, str) else value
        if isinstance(names, list | tuple) and all(
            isinstance(n, str) and ENV_NAME.fullmatch(n) for n in names
        ):
            return tuple(names), None
        return None, f"{lsp} must be a list of environment variable names"
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
        name = field_for_key(str(key))
        if name is None:
            warnings.append(f"{source}: unknown setting {key!r}")
            continue
        if value is None:
            continue
        typed, error = validate(name, value)
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


def _read_toml(path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, []
    except OSError as exc:
        return None, [f"{path}: cannot read: {exc.strerror}"]
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        return None, [f"{path}: invalid TOML ({exc}); ignored"]


def read_pyproject(root: Path) -> tuple[dict[str, Any], list[str]]:
    """The `[tool.cyclefix]` overrides of the project at `root`, with warnings."""
    path = root / "pyproject.toml"
    data, warnings = _read_toml(path)
    if data is None:
        return {}, [w.replace("; ignored", "; [tool.cyclefix] ignored") for w in warnings]
    tool = data.get("tool", {})
    section = tool.get("cyclefix") if isinstance(tool, dict) else None
    return parse_overrides(section, f"{path} [tool.cyclefix]")


def user_config_file() -> Path:
    """$XDG_CONFIG_HOME/cyclefix/config.toml, else ~/.config/cyclefix/config.toml."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cyclefix" / "config.toml"


def read_user_config(path: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """The settings of the user's config file (top-level keys), with warnings."""
    path = path if path is not None else user_config_file()
    data, warnings = _read_toml(path)
    if data is None:
        return {}, warnings
    return parse_overrides(data, str(path))


@dataclass(frozen=True)
class Layer:
    """Settings from one source (field name -> typed value), named as `cyclefix config` shows it."""

    source: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class ResolvedSettings:
    settings: Settings
    # Field name -> the source its value came from ("default" when no layer set it).
    sources: Mapping[str, str]
    warnings: tuple[str, ...]
    # Project settings left out because the user has not trusted them (they use a lower layer).
    untrusted: tuple[TrustRequest, ...] = ()


def resolve(layers: Sequence[Layer], warnings: Sequence[str] = ()) -> ResolvedSettings:
    """Layers from lowest to highest precedence merged onto the defaults, with each value's source."""
    sources = {name: "default" for name in LSP_NAMES}
    for layer in layers:
        for name in layer.values:
            sources[name] = layer.source
    settings = merge(*(layer.values for layer in layers))
    return ResolvedSettings(settings, sources, tuple(warnings))


def load_settings(
    root: Path,
    *,
    flags: Mapping[str, Any] | None = None,
    editor: Mapping[str, Any] | None = None,
    trust_store: TrustStore | None = None,
    user_config: Path | None = None,
) -> ResolvedSettings:
    """The effective settings for the project at `root`, each with its source.

    `flags` and `editor` hold field names and typed values (None values are ignored: a flag
    not given). A project value of a guarded setting (model, python) that the user has not
    trusted is left out and listed in `untrusted`, unless a higher layer replaces it anyway.
    """
    flag_values = {k: v for k, v in (flags or {}).items() if v is not None}
    editor_values = {k: v for k, v in (editor or {}).items() if v is not None}
    user_values, user_warnings = read_user_config(user_config)
    project_values, project_warnings = read_pyproject(root)
    for name in USER_ONLY_SETTINGS:
        if project_values.pop(name, None) is not None:
            project_warnings.append(
                f"{root / 'pyproject.toml'} [tool.cyclefix]: {LSP_NAMES[name]} is taken only from "
                "your own settings (flags, editor, user config); ignored"
            )
    store = trust_store if trust_store is not None else TrustStore()
    higher = {**editor_values, **flag_values}
    waiting = store.untrusted(root, {k: v for k, v in project_values.items() if k not in higher})
    for request in waiting:
        del project_values[request.setting]
    path = user_config if user_config is not None else user_config_file()
    layers = [
        Layer(f"user config ({path})", user_values),
        Layer(f"project ({root / 'pyproject.toml'} [tool.cyclefix])", project_values),
        Layer("editor/TUI settings", editor_values),
        Layer("command line", flag_values),
    ]
    resolved = resolve(layers, [*user_warnings, *project_warnings])
    return replace(resolved, untrusted=tuple(waiting))


def tests_under_root(root: Path, tests: Sequence[str]) -> list[str]:
    """Test paths or node ids from a settings file (relative to the project root) made absolute,
    so they mean the same whatever the current folder."""
    out = []
    for test in tests:
        path, sep, rest = test.partition("::")
        absolute = Path(path) if Path(path).is_absolute() else root / path
        out.append(str(absolute) + sep + rest)
    return out


def require_trusted(resolved: ResolvedSettings, flag_for: Mapping[str, str]) -> None:
    """Raise a CyclefixError naming each untrusted project setting and the flags that allow it.

    `flag_for` maps a setting to the command-line flag that replaces it (e.g. model: --model).
    """
    if not resolved.untrusted:
        return
    lines = []
    for request in resolved.untrusted:
        other = flag_for.get(request.setting)
        instead = f", or pass {other} to choose another" if other else ""
        lines.append(
            f"{request.root / 'pyproject.toml'} sets {request.setting} = {request.value!r}, "
            f"which would {request.describe()}; it is used only once you trust it: run again "
            f"with --trust-project{instead}"
        )
    raise CyclefixError("\n".join(lines))


def trust_project(root: Path, store: TrustStore | None = None) -> list[TrustRequest]:
    """Trust every guarded setting the project's pyproject sets now; the ones newly trusted."""
    store = store if store is not None else TrustStore()
    values, _ = read_pyproject(root)
    requests = store.untrusted(root, values)
    for request in requests:
        store.trust(request.root, request.setting, request.value)
    return requests


def describe_value(name: str, value: object) -> str:
    """A setting's value as TOML would spell it (None: what the default means)."""
    if value is None:
        return {
            "python": "(the project's environment)",
            "gpu_layers": "(all when llama.cpp can offload to a GPU, else 0)",
            "threads": "(the physical CPU cores)",
        }.get(name, "(none)")
    if isinstance(value, bool):
        return "true" if value else "false"
    if name == "gpu_layers" and value == ALL_LAYERS:
        return '"all"'
    if name == "pass_env" and isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]" if value else "[] (chosen per file)"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_settings(resolved: ResolvedSettings) -> str:
    """`cyclefix config`'s table: one line per setting, its value and where it came from."""
    rows = [
        (
            LSP_NAMES[f.name],
            describe_value(f.name, getattr(resolved.settings, f.name)),
            resolved.sources[f.name],
        )
        for f in fields(Settings)
    ]
    key_width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    lines = [f"{k:<{key_width}}  {v:<{value_width}}  {s}" for k, v, s in rows]
    for request in resolved.untrusted:
        lines.append(
            f"not trusted: {request.setting} = {request.value!r} from the project "
            "(cyclefix fix/tui --trust-project to trust it)"
        )
    lines += [f"warning: {w}" for w in resolved.warnings]
    return "\n".join(lines)
