"""A session's settings, in one order for `fix`, `serve` and `tui` alike (cyclefix.config):
command-line flags > editor/TUI settings > `[tool.cyclefix]` (trusted values) > the user's
config file > defaults."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cyclefix.config import (
    Layer,
    ResolvedSettings,
    Settings,
    load_settings,
    read_user_config,
    resolve,
    tests_under_root,
    user_config_file,
)
from cyclefix.trust import TrustStore

__all__ = ["ResolvedSettings", "Settings", "selected_tests", "session_settings"]


def session_settings(
    root: Path | None,
    *,
    flags: Mapping[str, Any] | None = None,
    editor: Mapping[str, Any] | None = None,
    trust_store: TrustStore | None = None,
) -> ResolvedSettings:
    """The effective settings of the project at `root`; with no project, those of the user
    (config file, editor, flags) alone."""
    if root is not None:
        return load_settings(root, flags=flags, editor=editor, trust_store=trust_store)
    user_values, warnings = read_user_config()
    layers = [
        Layer(f"user config ({user_config_file()})", user_values),
        Layer("editor/TUI settings", {k: v for k, v in (editor or {}).items() if v is not None}),
        Layer("command line", {k: v for k, v in (flags or {}).items() if v is not None}),
    ]
    return resolve(layers, warnings)


def selected_tests(
    root: Path, resolved: ResolvedSettings, *, from_cwd: bool = False
) -> tuple[str, ...] | None:
    """The `tests` setting as `check` and `fix` take it; None: the default selection.

    A settings file's tests are relative to the project root, made absolute here so they mean
    the same whatever the current folder; with `from_cwd`, tests given on the command line are
    kept as given (relative to the current folder)."""
    tests = resolved.settings.tests
    if not tests:
        return None
    if from_cwd and resolved.sources["tests"] == "command line":
        return tuple(tests)
    return tuple(tests_under_root(root, tests))
