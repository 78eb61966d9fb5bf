"""Find the project root a path belongs to, the folder pytest is run in; paths inside it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath

from cyclefix.errors import CyclefixError

# Files that make a folder the root, as pytest's rootdir search sees them.
CONFIG_FILES = ("pyproject.toml", "pytest.ini", "setup.cfg", "tox.ini")


def find_project_root(path: Path, tests: Sequence[str] = ()) -> Path:
    """The project folder for a file or folder.

    The nearest ancestor (starting with the folder itself, or the file's folder) holding
    pyproject.toml, pytest.ini, setup.cfg or tox.ini; failing that, the outermost folder of
    the chain of ancestors holding conftest.py (so tests/conftest.py does not hide the project
    above it); failing that, the folder itself. Explicit `tests` (paths or node ids, relative
    to the cwd) outside that folder widen it to the common ancestor, as pytest's rootdir is
    when no config file marks one (`fix lib/f.py --tests tests/test_f.py`). Raises
    CyclefixError when `path` does not exist.
    """
    given = Path(path).expanduser()
    if not given.exists():
        raise CyclefixError(f"no such file or folder: {path}")
    start = given.resolve()
    folder = start if start.is_dir() else start.parent
    root = _marked_root(folder)
    outside = [t for t in _test_paths(tests) if not t.is_relative_to(root)]
    if not outside:
        return root
    common = Path(os.path.commonpath([root, *outside]))
    # Never the filesystem root or a home folder: that is no project (select reports the test).
    if common == Path(common.anchor) or common == Path.home():
        return root
    return common


def _test_paths(tests: Sequence[str]) -> list[Path]:
    """The existing files or folders of explicit test args (`path::name` keeps its path)."""
    found: list[Path] = []
    for arg in tests:
        path = Path(arg.partition("::")[0]).expanduser()
        if path.exists():
            found.append(path.resolve())
    return found


def _has_config(folder: Path) -> bool:
    return any((folder / name).is_file() for name in CONFIG_FILES)


def _marked_root(folder: Path) -> Path:
    """The root that config files or a conftest chain mark for `folder`, else `folder`."""
    outermost_conftest: Path | None = None
    for candidate in (folder, *folder.parents):
        if _has_config(candidate):
            return candidate
        if (candidate / "conftest.py").is_file():
            outermost_conftest = candidate
        elif outermost_conftest is not None:
            break  # the chain of conftest folders ended
    return outermost_conftest or folder


def project_relative(value: object) -> str | None:
    """`value` when it names a path inside a project folder: relative, no `..`, no NUL; else None.

    A test run executes model-written code, so the paths it reports may be forged to make
    cyclefix read or write elsewhere (an absolute path, `../`, `/dev/stdin`).
    """
    if not isinstance(value, str) or not value or "\0" in value:
        return None
    windows = PureWindowsPath(value)
    if PurePosixPath(value).is_absolute() or windows.drive or windows.root:
        return None
    return None if ".." in windows.parts else value
