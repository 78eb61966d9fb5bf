"""Which Python runs a project's tests: the project's own environment when it has one.

A project's tests import its dependencies, which live in the project's virtual environment,
not in cyclefix's. Order: an explicit interpreter; the activated environment ($VIRTUAL_ENV);
a `.venv`, `venv` or `env` folder in the project root or a folder above it (home and / are
never searched); else the Python cyclefix runs on. An environment without pytest, or older
than the test plugin needs, is passed over with a note.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VENV_NAMES = (".venv", "venv", "env")
# Seconds the probe (Python version, import pytest) may take: a cold disk, a slow network home.
PROBE_TIMEOUT = 30.0


@dataclass(frozen=True)
class ProjectPython:
    python: str
    # Why this interpreter, for the user; empty for cyclefix's own.
    note: str = ""


def _venv_python(venv: Path) -> Path | None:
    if not (venv / "pyvenv.cfg").is_file():
        return None
    for rel in ("bin/python", "Scripts/python.exe"):
        if (venv / rel).exists():
            return venv / rel
    return None


def _is_own(venv: Path) -> bool:
    try:
        return venv.resolve() == Path(sys.prefix).resolve()
    except OSError:
        return False


# The test plugin's oldest Python (it uses ast.unparse).
PLUGIN_MIN_PYTHON = (3, 9)
_PROBE = (
    "import sys\n"
    f"if sys.version_info < {PLUGIN_MIN_PYTHON!r}:\n"
    "    print('is Python %d.%d (%d.%d or newer needed)' % (sys.version_info[:2] + "
    f"{PLUGIN_MIN_PYTHON!r}))\n"
    "    sys.exit(3)\n"
    "try:\n"
    "    import pytest\n"
    "except ImportError:\n"
    "    print('has no pytest')\n"
    "    sys.exit(3)\n"
)
# Interpreters that passed the probe; only successes are remembered (pytest may be installed
# while a server runs).
_USABLE: set[str] = set()


def unusable_because(python: str) -> str | None:
    """Why `python` cannot run the tests (too old, no pytest), or None when it can."""
    if python in _USABLE:
        return None
    try:
        done = subprocess.run(
            [python, "-c", _PROBE],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"does not start ({exc})"
    if done.returncode != 0:
        return done.stdout.strip() or f"does not start (exit status {done.returncode})"
    _USABLE.add(python)
    return None


def _candidate_venvs(root: Path) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    active = os.environ.get("VIRTUAL_ENV")
    if active and not _is_own(Path(active)):
        found.append((Path(active), "the activated environment"))
    home = Path.home().resolve()
    for folder in (root, *root.parents):
        if folder == home or folder.parent == folder:
            break
        for name in VENV_NAMES:
            if _venv_python(folder / name) is not None:
                return [*found, (folder / name, "the project's virtual environment")]
    return found


def find_project_python(root: Path, explicit: str | None = None) -> ProjectPython:
    """The interpreter for the tests of the project at `root` (see the module docstring)."""
    if explicit:
        return ProjectPython(explicit, f"tests run with {explicit}")
    skipped: list[str] = []
    for venv, what in _candidate_venvs(root.resolve()):
        if _is_own(venv):
            break  # cyclefix's own environment: the default below
        python = _venv_python(venv)
        if python is None:
            continue
        reason = unusable_because(str(python))
        if reason is None:
            return ProjectPython(str(python), f"tests run with {python} ({what})")
        skipped.append(f"{python} {reason}")
    note = f"{'; '.join(skipped)}: tests run with {sys.executable}" if skipped else ""
    return ProjectPython(sys.executable, note)
