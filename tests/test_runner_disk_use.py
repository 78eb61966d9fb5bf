"""A candidate's run may add only so much to the disk: past the limit it is stopped and fails."""

from __future__ import annotations

import dataclasses
import os
import textwrap
import threading
import time
from pathlib import Path

import pytest
import warm_support
from project_support import make_project

import cyclefix.refine.loop as loop_module
from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, fix
from cyclefix.refine.check import limits_for
from cyclefix.runner import Confinement, SandboxLimits, run_tests, scratch_copy
from cyclefix.runner.disk_use import CHECK_SECONDS, DiskUse, Free
from cyclefix.runner.run import UNTRUSTED_NODEID
from cyclefix.runner.warm import WarmWorkers

# The confined probes run fresh and forked from a warm worker.
workers = warm_support.workers

pytestmark = pytest.mark.usefixtures("runtime_defences_alone")

MIB = 1 << 20
LIMITS = SandboxLimits(per_test_timeout=20.0, run_timeout=60.0, disk_mb=16, disk_files=2000)

# Writes 1 MiB files into the working directory (the scratch copy) until it is stopped.
FILLER = """\
import itertools
import time


def test_fills_the_disk():
    for n in itertools.count():
        with open(f"filler-{n}.bin", "wb") as handle:
            handle.write(b"x" * (1 << 20))
        time.sleep(0.005)
"""

# Empty files, until it is stopped.
MAKES_FILES = """\
import itertools
import os


def test_makes_files(tmp_path):
    for n in itertools.count():
        os.close(os.open(tmp_path / f"empty-{n}", os.O_CREAT | os.O_WRONLY))
"""

WRITES_A_LITTLE = """\
def test_writes_two_mib(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"x" * (2 << 20))
    with open("local.bin", "wb") as handle:
        handle.write(b"y" * (2 << 20))
"""


class FakeDisk:
    """Free bytes and inodes that a test sets, what the process wrote itself, and a clock
    it moves."""

    def __init__(self, free: int, files: int = 1000) -> None:
        self.free = free
        self.files = files
        self.own: Free | None = Free(0, 0)
        self.now = 0.0

    def measure(self, folder: Path) -> Free:
        return Free(self.free, self.files)

    def count_own(self) -> Free | None:
        return self.own

    def process_writes(self, size: int = 0, files: int = 0) -> None:
        assert self.own is not None
        self.free -= size
        self.files -= files
        self.own = Free(self.own.bytes + size, self.own.files + files)

    def clock(self) -> float:
        return self.now


def watch(disk: FakeDisk, tmp_path: Path, limit_mb: int = 10, limit_files: int = 0) -> DiskUse:
    return DiskUse.start(
        [tmp_path],
        limit_mb,
        limit_files,
        clock=disk.clock,
        measure=disk.measure,
        count_own=disk.count_own,
    )


def test_under_the_limit_nothing_is_exceeded(tmp_path: Path) -> None:
    disk = FakeDisk(free=100 * MIB)
    use = watch(disk, tmp_path)
    disk.process_writes(10 * MIB)
    disk.now += CHECK_SECONDS
    assert use.exceeded() == ""


def test_past_the_limit_the_reason_names_the_limit_and_the_amount(tmp_path: Path) -> None:
    disk = FakeDisk(free=100 * MIB)
    use = watch(disk, tmp_path)
    disk.process_writes(12 * MIB)
    disk.now += CHECK_SECONDS
    assert use.exceeded() == "the test process wrote over 10 MiB to disk (12 MiB)"


def test_what_another_program_takes_meanwhile_is_set_aside(tmp_path: Path) -> None:
    disk = FakeDisk(free=100 * MIB)
    use = watch(disk, tmp_path)
    disk.free -= 50 * MIB  # a download beside the run
    disk.process_writes(1 * MIB)
    disk.now += CHECK_SECONDS
    assert use.exceeded() == ""
    disk.process_writes(11 * MIB)  # 12 MiB of its own in all
    disk.now += CHECK_SECONDS
    assert use.exceeded() == "the test process wrote over 10 MiB to disk (12 MiB)"


def test_what_is_set_aside_is_bounded(tmp_path: Path) -> None:
    # A file deleted but held open is in no folder: past 8 limits, the disk's loss counts.
    disk = FakeDisk(free=1000 * MIB)
    use = watch(disk, tmp_path)
    disk.free -= 81 * MIB
    disk.now += CHECK_SECONDS
    assert use.exceeded().startswith("the disk lost over 8 times the limit")


def test_a_folder_hidden_from_the_count_stops_the_process(tmp_path: Path) -> None:
    disk = FakeDisk(free=100 * MIB)
    use = watch(disk, tmp_path)
    disk.free -= 12 * MIB
    disk.own = None  # a folder it made unreadable
    disk.now += CHECK_SECONDS
    assert use.exceeded() == "the test process made a folder the disk count cannot read"


def test_past_the_file_limit_the_reason_names_the_files(tmp_path: Path) -> None:
    disk = FakeDisk(free=100 * MIB, files=1000)
    use = watch(disk, tmp_path, limit_files=100)
    disk.process_writes(files=150)  # empty files: no bytes taken
    disk.now += CHECK_SECONDS
    assert use.exceeded() == "the test process made over 100 files on disk (150)"


def test_free_space_is_read_at_most_once_per_check_interval(tmp_path: Path) -> None:
    disk = FakeDisk(free=100 * MIB)
    use = watch(disk, tmp_path)
    disk.process_writes(12 * MIB)
    assert use.exceeded() == ""  # not yet time to look
    disk.now += CHECK_SECONDS
    assert use.exceeded() != ""


def test_a_limit_of_zero_watches_nothing(tmp_path: Path) -> None:
    disk = FakeDisk(free=100 * MIB)
    use = watch(disk, tmp_path, limit_mb=0)
    disk.free = 0
    disk.now += CHECK_SECONDS
    assert use.exceeded() == ""


def test_folders_on_one_filesystem_are_watched_once(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    use = DiskUse.start([tmp_path / "a", tmp_path / "b", tmp_path / "gone"], 10)
    assert list(use.free_at_start) == [tmp_path / "a"]


def test_a_confined_run_that_fills_the_disk_is_stopped_and_fails(
    tmp_path: Path, workers: WarmWorkers | None
) -> None:
    project = make_project(tmp_path / "filler", {"test_fill.py": FILLER})
    with scratch_copy(project) as copy:
        result = run_tests(
            copy,
            limits=LIMITS,
            autoload_plugins=False,
            confinement=Confinement(project),
            warm=workers,
        )
        left = sorted(p.name for p in copy.glob("filler-*"))
    assert [t.nodeid for t in result.tests if not t.ok] == [UNTRUSTED_NODEID]
    assert "MiB to disk" in (result.tests[-1].exc_message or "")
    assert result.duration < LIMITS.per_test_timeout  # stopped by the disk, not the timeout
    assert left == []  # the copy was put back


def test_a_confined_run_that_makes_too_many_files_is_stopped_and_fails(tmp_path: Path) -> None:
    project = make_project(tmp_path / "inodes", {"test_inodes.py": MAKES_FILES})
    with scratch_copy(project) as copy:
        result = run_tests(
            copy, limits=LIMITS, autoload_plugins=False, confinement=Confinement(project)
        )
    assert [t.nodeid for t in result.tests if not t.ok] == [UNTRUSTED_NODEID]
    assert "files on disk" in (result.tests[-1].exc_message or "")


def test_a_confined_run_that_writes_less_than_the_limit_passes(tmp_path: Path) -> None:
    project = make_project(tmp_path / "small", {"test_small.py": WRITES_A_LITTLE})
    with scratch_copy(project) as copy:
        result = run_tests(
            copy, limits=LIMITS, autoload_plugins=False, confinement=Confinement(project)
        )
    assert [(t.nodeid, t.outcome) for t in result.tests] == [
        ("test_small.py::test_writes_two_mib", "passed")
    ]


def test_another_program_filling_the_disk_meanwhile_fails_no_candidate(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "slow",
        {"test_slow.py": "import time\n\n\ndef test_waits():\n    time.sleep(1.5)\n"},
    )
    elsewhere = tmp_path / "download.bin"  # the same disk, outside the copy

    def download() -> None:
        time.sleep(0.5)
        elsewhere.write_bytes(b"x" * (24 * MIB))
        os.fsync(os.open(elsewhere, os.O_RDONLY))

    writer = threading.Thread(target=download)
    with scratch_copy(project) as copy:
        writer.start()
        result = run_tests(
            copy, limits=LIMITS, autoload_plugins=False, confinement=Confinement(project)
        )
        writer.join()
    assert [(t.nodeid, t.outcome) for t in result.tests] == [("test_slow.py::test_waits", "passed")]


def test_your_own_run_is_not_limited(tmp_path: Path) -> None:
    # 24 files of 1 MiB, then the test passes: unconfined, the 16 MiB limit does not apply.
    bounded = FILLER.replace("itertools.count()", "range(24)")
    project = make_project(tmp_path / "own", {"test_fill.py": bounded})
    result = run_tests(project, limits=LIMITS, autoload_plugins=False)
    assert [t.outcome for t in result.tests] == ["passed"]


def test_a_right_answer_that_fills_the_disk_fails_and_only_its_honest_part_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        loop_module,
        "limits_for",
        lambda config: dataclasses.replace(limits_for(config), disk_mb=16),
    )
    project = make_project(
        tmp_path / "calc",
        {
            # No one-token edit of `0` is `a + b`: the answer alone can pass.
            "calc.py": "def add(a, b):\n    return 0\n",
            "test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        },
    )
    filler = textwrap.dedent(
        """\
        ```python
        def add(a, b):
            for n in range(200):
                with open(f"filler-{n}.bin", "wb") as handle:
                    handle.write(b"x" * (1 << 20))
            return a + b
        ```
        """
    )
    config = RefineConfig(rounds=1, budget_seconds=60, extend_to_budget=False)
    result = fix(project, ScriptedBackend([filler]), config=config)
    answer = result.rounds[0].attempts[0]
    assert (answer.generated, answer.verdict) == (True, "tests_failed")
    # Its return line alone (refine.partial) is the fix; the loop that filled the disk is not.
    assert result.status == "fixed"
    assert "filler" not in result.diff and "+    return a + b" in result.diff
    assert not list(project.glob("filler-*"))


def test_a_check_asked_for_now_reads_the_free_space_between_intervals(tmp_path: Path) -> None:
    disk = FakeDisk(free=100 * MIB)
    use = watch(disk, tmp_path)
    disk.process_writes(12 * MIB)
    assert use.exceeded(now=True) != ""
