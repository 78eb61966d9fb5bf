"""The server's settings: the shared configuration (cyclefix.config) under the server's names.

Sources, later ones winning key by key: defaults < the user's config file < `[tool.cyclefix]`
in the project's pyproject.toml < `initializationOptions` < `workspace/didChangeConfiguration`.
"""

from __future__ import annotations

from cyclefix.config import (
    DEFAULT_MODEL,
    Settings,
    merge,
    parse_overrides,
    read_pyproject,
    read_user_config,
    unwrap_section,
)

__all__ = [
    "DEFAULT_MODEL",
    "Settings",
    "merge",
    "parse_overrides",
    "read_pyproject",
    "read_user_config",
    "unwrap_section",
]
