"""A small importable project on disk, for tests that run pytest on it."""

from __future__ import annotations

from pathlib import Path


def make_project(root: Path, files: dict[str, str]) -> Path:
    """`files` (relative path -> text) under `root`, with a pyproject.toml that puts the root
    on the tests' import path."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root
