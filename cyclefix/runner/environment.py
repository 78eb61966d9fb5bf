"""The environment a test process starts with: an allowlist, never cyclefix's own secrets.

The user's tests and a model's candidates get what running Python and pytest needs (PATH, the
locale, the time zone, the virtual environment, pytest's own variables) plus the names the user
lists; nothing else of the caller's environment (API keys, tokens, ``CYCLEFIX_*`` settings).
A candidate also gets a private HOME and TMPDIR, and PYTHONPATH entries that pointed into the
real project point into its scratch copy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

# Names passed through as they are.
ALLOWED_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
        "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHONPATH", "PYTHONHOME",
        "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONWARNINGS", "PYTHONFAULTHANDLER",
        "PYTHONDEVMODE", "SYSTEMROOT", "COMSPEC", "PATHEXT", "SOURCE_DATE_EPOCH",
        # Where the interpreter's native extensions find their libraries (conda, custom builds).
        "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH",
    }
)  # fmt: skip
ALLOWED_PREFIXES = ("LC_", "PYTEST_")
# Options from the calling environment (-x, --pdb, a plugin's flags) are not the project's:
# its own ini file still applies.
DROPPED_NAMES = frozenset({"PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST"})
# Never passed, even when the user lists them: cyclefix's settings and keys.
SECRET_PREFIX = "CYCLEFIX_"


def child_environment(
    source: Mapping[str, str],
    *,
    pass_env: Sequence[str] = (),
    private_home: Path | None = None,
    remap: tuple[Path, Path] | None = None,
) -> dict[str, str]:
    """The allowed part of `source` (plus `pass_env` names), for one test process.

    `private_home`: a folder of the run's own, made HOME and (its ``tmp``) TMPDIR; for
    candidates, whose writes Landlock keeps to the scratch copy and that folder.
    `remap`: (real project, scratch copy); PYTHONPATH entries inside the first move to the second.
    """
    wanted = set(pass_env)
    env = {
        name: value
        for name, value in source.items()
        if not name.startswith(SECRET_PREFIX)
        and name not in DROPPED_NAMES
        and (name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES) or name in wanted)
    }
    if private_home is not None:
        temp = private_home / "tmp"
        temp.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(private_home)
        env["TMPDIR"] = env["TEMP"] = env["TMP"] = str(temp)
    if remap is not None and env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(
            _moved(entry, *remap) for entry in env["PYTHONPATH"].split(os.pathsep)
        )
    return env


def _moved(entry: str, original: Path, copy: Path) -> str:
    """A PYTHONPATH entry inside the real project, as the same place in the copy (where the
    copy has it: a virtual environment in the project is not copied)."""
    if not entry:
        return entry
    try:
        inside = Path(entry).resolve().relative_to(original.resolve())
    except (ValueError, OSError):
        return entry
    moved = copy / inside
    return str(moved) if moved.exists() else entry
