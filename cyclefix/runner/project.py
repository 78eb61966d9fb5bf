"""Find the project root a path belongs to, the folder pytest is run in."""

from __future__ import annotations

from pathlib import Path

from cyclefix.errors import CyclefixError

# Files that make a folder the root, as pytest's rootdir search sees them.
CONFIG_FILES = ("pyproject.toml", "pytest.ini", "setup.cfg", "tox.ini")


def find_project_root(path: Path) -> Path:
    """The project folder for a file or folder.

    The nearest ancestor (starting with the folder itself, or the file's folder) holding
    pyproject.toml, pytest.ini, setup.cfg or tox.ini; failing that, the outermost folder of
    the chain of ancestors holding conftest.py (so tests/conftest.py does not hide the project
    above it); failing that, the folder itself. Raises CyclefixError when `path` does not exist.
    """
    given = Path(path).expanduser()
    if not given.exists():
        raise CyclefixError(f"no such file or folder: {path}")
    start = given.resolve()
    folder = start if start.is_dir() else start.parent
    outermost_conftest: Path | None = None
    for candidate in (folder, *folder.parents):
        if any((candidate / name).is_file() for name in CONFIG_FILES):
            return candidate
        if (candidate / "conftest.py").is_file():
            outermost_conftest = candidate
        elif outermost_conftest is not None:
            break  # the chain of conftest folders ended
    return outermost_conftest or folder
