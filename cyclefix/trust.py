"""Workspace trust: settings a cloned project may choose only once the user confirmed them.

A project's `[tool.cyclefix]` could name a model endpoint (`openai:URL#M`, where its code and
the user's API key would go), a .gguf file, or the Python that runs everything. Such a value
is used only after the user trusted it for that project root; registry models (installed from
cyclefix's own list) need no confirmation. Confirmations are kept per project root and exact
value in the user's config folder ($XDG_CONFIG_HOME/cyclefix/trusted.json), never in the project.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclefix.models.registry import REGISTRY

SCHEMA = "cyclefix.trust/1"
# Settings a project file may set only with the user's consent (keys as in [tool.cyclefix]).
GUARDED_SETTINGS = ("model", "python")


@dataclass(frozen=True)
class TrustRequest:
    """One setting a project file wants, that the user has not confirmed for that project."""

    root: Path
    setting: str  # "model" or "python"
    value: str

    def describe(self) -> str:
        """What the value would do, in words the user can decide on."""
        if self.setting == "python":
            return f"run the tests with {self.value}"
        if self.value.startswith("openai:"):
            url = self.value.removeprefix("openai:").partition("#")[0]
            return f"send this project's code (and $CYCLEFIX_API_KEY) to {url}"
        return f"load the model file {self.value}"

    def question(self) -> str:
        return (
            f"{self.root / 'pyproject.toml'} sets {self.setting} = {self.value!r}, which would "
            f"{self.describe()}. Trust it for this project?"
        )


def needs_trust(setting: str, value: object) -> bool:
    """Whether a project file's `setting` = `value` waits for the user's confirmation."""
    if setting not in GUARDED_SETTINGS or value is None:
        return False
    return not (setting == "model" and isinstance(value, str) and value.strip() in REGISTRY)


def trust_file() -> Path:
    """$XDG_CONFIG_HOME/cyclefix/trusted.json, else ~/.config/cyclefix/trusted.json."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cyclefix" / "trusted.json"


class TrustStore:
    """The user's confirmations, read from and written to `path` (default: trust_file())."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else trust_file()

    def _entries(self) -> list[dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []  # missing or unreadable: nothing is trusted
        entries = data.get("trusted") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            return []
        return [e for e in entries if isinstance(e, dict)]

    def is_trusted(self, root: Path, setting: str, value: str) -> bool:
        wanted = {"root": str(root.resolve()), "setting": setting, "value": value}
        return any(entry == wanted for entry in self._entries())

    def trust(self, root: Path, setting: str, value: str) -> None:
        """Remember the user's confirmation; OSError when the config folder is not writable."""
        entry = {"root": str(root.resolve()), "setting": setting, "value": value}
        entries = self._entries()
        if entry in entries:
            return
        entries.append(entry)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps({"schema": SCHEMA, "trusted": entries}, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=".trusted.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def untrusted(self, root: Path, values: Mapping[str, Any]) -> list[TrustRequest]:
        """The guarded settings among a project file's `values` the user has not confirmed."""
        return [
            TrustRequest(root, setting, str(values[setting]))
            for setting in GUARDED_SETTINGS
            if needs_trust(setting, values.get(setting))
            and not self.is_trusted(root, setting, str(values[setting]))
        ]
