"""Paths a test run reports come from the process that runs model-written code: cyclefix
reads and writes only inside the scratch copy whatever they say (refine.source.project_file)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.source import OutsideProjectError, project_file


@pytest.mark.parametrize("rel", ["/etc/passwd", "../victim.py", "a/../../victim.py", "c\0.py"])
def test_a_path_out_of_the_scratch_copy_is_refused(tmp_path: Path, rel: str) -> None:
    with pytest.raises(OutsideProjectError):
        project_file(tmp_path, rel)
    assert project_file(tmp_path, "pkg/calc.py") == tmp_path / "pkg" / "calc.py"


def test_the_project_index_reads_no_fifo_and_nothing_outside(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.py")  # reading it would wait for a writer forever
    index = ProjectIndex(tmp_path)
    assert index.source("pipe.py") is None
    assert index.source("/etc/hostname") is None
