"""The sandbox: scratch copies, limits, and hostile code that must leave us and the machine fine."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from cyclefix.errors import CyclefixError
from cyclefix.runner import SandboxLimits, cgroup, sandbox, scratch_copy
from cyclefix.runner.isolation import Isolation, detect_isolation
from cyclefix.runner.sandbox import (
    HeadTailBuffer,
    SandboxedProcess,
    run_sandboxed,
)

PY = sys.executable
DEFAULT_LIMITS = SandboxLimits()


def python(
    code: str,
    *,
    limits: SandboxLimits = DEFAULT_LIMITS,
    cwd: Path | None = None,
    cancel: threading.Event | None = None,
) -> sandbox.SandboxResult:
    return run_sandboxed([PY, "-c", code], cwd=cwd or Path.cwd(), limits=limits, cancel=cancel)


def processes_with(marker: str) -> list[int]:
    """Pids whose command line contains `marker` (other than ours)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


def wait_until_gone(marker: str, seconds: float = 3.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while True:
        left = processes_with(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


# ---------------------------------------------------------------- scratch copies


def tree_digest(root: Path) -> dict[str, str]:
    digest = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            digest[str(path.relative_to(root))] = "link:" + os.readlink(path)
        elif path.is_file():
            digest[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest[str(path.relative_to(root))] = "dir"
    return digest


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    files = {
        "pyproject.toml": "",
        "pkg/__init__.py": "",
        "pkg/mod.py": "X = 1\n",
        "data/big.bin": "",
        ".git/HEAD": "ref: refs/heads/main\n",
        ".venv/pyvenv.cfg": "home = /usr\n",
        "env2/pyvenv.cfg": "home = /usr\n",
        "node_modules/x/index.js": "",
        "pkg/__pycache__/mod.cpython-311.pyc": "",
        ".pytest_cache/v": "",
        "build/lib/pkg/mod.py": "",
        "dist/pkg.whl": "",
        "pkg.egg-info/PKG-INFO": "Metadata-Version: 2.1\nName: pkg\nVersion: 1.2.0\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "data" / "big.bin").write_bytes(b"\0" * (2 * 2**20))
    (root / "pkg" / "alias.py").symlink_to("mod.py")
    outside = tmp_path / "shared-venv"
    (outside / "lib").mkdir(parents=True)
    (outside / "pyvenv.cfg").write_text("")
    (root / "venv-link").symlink_to(outside)
    (tmp_path / "outside.txt").write_text("outside\n")
    (root / "outside-link.txt").symlink_to(tmp_path / "outside.txt")
    return root


def test_scratch_copy_copies_the_project_and_skips_the_rest(project: Path) -> None:
    with scratch_copy(project) as copy:
        assert copy != project and copy.name == project.name
        assert (copy / "pkg" / "mod.py").read_text() == "X = 1\n"
        assert (copy / "pyproject.toml").exists()
        for skipped in (".git", ".venv", "env2", "node_modules", "pkg/__pycache__",
                        ".pytest_cache", "build", "dist", "venv-link"):  # fmt: skip
            assert not (copy / skipped).exists(), skipped
        # A link inside the project stays a link, into the copy.
        assert (copy / "pkg" / "alias.py").is_symlink()
        assert (copy / "pkg" / "alias.py").resolve() == (copy / "pkg" / "mod.py").resolve()
        # A link to a file outside becomes a copy: writing it cannot reach the original.
        assert not (copy / "outside-link.txt").is_symlink()
        assert (copy / "outside-link.txt").read_text() == "outside\n"


def test_scratch_copy_keeps_the_package_metadata_the_code_reads(project: Path) -> None:
    """A package's `__version__` often comes from importlib.metadata, which reads *.egg-info."""
    with scratch_copy(project) as copy:
        found = subprocess.run(
            [sys.executable, "-c", "import importlib.metadata as m; print(m.version('pkg'))"],
            cwd=copy, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert found.stdout.strip() == "1.2.0"


def test_scratch_copy_keeps_large_files_as_separate_copies(project: Path) -> None:
    with scratch_copy(project) as copy:
        big = copy / "data" / "big.bin"
        assert big.read_bytes() == (project / "data" / "big.bin").read_bytes()
        # A copy, not a link: writing it cannot reach the user's file.
        assert big.stat().st_ino != (project / "data" / "big.bin").stat().st_ino
        big.write_bytes(b"changed")
        assert (project / "data" / "big.bin").stat().st_size == 2 * 2**20


def test_scratch_copy_keeps_source_encodings_byte_for_byte(tmp_path: Path) -> None:
    root = tmp_path / "latin"
    root.mkdir()
    source = "# -*- coding: latin-1 -*-\nNAME = 'été'\n".encode("latin-1")
    (root / "mod.py").write_bytes(source)
    (root / "crlf.py").write_bytes(b"X = 1\r\nY = 2\r\n")
    with scratch_copy(root) as copy:
        assert (copy / "mod.py").read_bytes() == source
        assert (copy / "crlf.py").read_bytes() == b"X = 1\r\nY = 2\r\n"


def test_a_project_over_the_size_cap_is_refused_naming_its_largest_file(project: Path) -> None:
    with (
        pytest.raises(CyclefixError, match=r"too large.*big\.bin \(2 MiB\)"),
        scratch_copy(project, max_total_mb=1),
    ):
        pass


def test_scratch_copy_leaves_the_original_untouched_and_cleans_up(project: Path) -> None:
    before = tree_digest(project)
    with scratch_copy(project) as copy:
        (copy / "pkg" / "mod.py").write_text("X = 2\n")
        (copy / "outside-link.txt").write_text("changed\n")
        (copy / "new.py").write_text("")
        (copy / "readonly").mkdir()
        (copy / "readonly" / "f").write_text("")
        (copy / "readonly").chmod(0o500)
        parent = copy.parent
    assert tree_digest(project) == before
    assert (project.parent / "outside.txt").read_text() == "outside\n"
    assert not parent.exists()


def test_scratch_copy_is_removed_when_the_body_raises(project: Path) -> None:
    with pytest.raises(RuntimeError), scratch_copy(project) as copy:
        parent = copy.parent
        raise RuntimeError("boom")
    assert not parent.exists()


def test_scratch_copy_refuses_missing_and_oversized_projects(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    with pytest.raises(CyclefixError, match="not a folder"), scratch_copy(tmp_path / "missing"):
        pass
    with pytest.raises(CyclefixError, match="too large"), scratch_copy(project, max_total_mb=1):
        pass
    assert list(temp.iterdir()) == []


# ---------------------------------------------------------------- output


def test_head_tail_buffer_keeps_both_ends() -> None:
    buffer = HeadTailBuffer(20)
    for i in range(1000):
        buffer.feed(f"{i:04d}\n".encode())
    text = buffer.text()
    assert text.startswith("0000\n0001\n")
    assert text.endswith("0998\n0999\n")
    assert "[4980 bytes cut]" in text
    assert buffer.total == 5000


def test_a_1gb_print_costs_no_memory() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code = (
        "import sys\n"
        "chunk = 'x' * (1 << 20) + '\\n'\n"
        "for _ in range(1024):\n"
        "    sys.stdout.write(chunk)\n"
    )
    result = python(code, limits=SandboxLimits(output_limit=10_000, run_timeout=60))
    assert result.returncode == 0
    assert "bytes cut" in result.output
    assert len(result.output) < 10_100
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert growth_mb < 64


# ---------------------------------------------------------------- limits and kills


def test_open_files_are_capped_per_process() -> None:
    code = "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE))"
    result = python(code, limits=SandboxLimits(open_files=200))
    assert result.output.strip() == "(200, 200)"


def test_the_whole_run_shares_one_memory_cap_where_a_memory_cgroup_is_writable() -> None:
    probe = cgroup.memory_cgroup(64)
    if probe is None:
        pytest.skip("no writable memory cgroup here (the cap is per process: RLIMIT_AS)")
    probe.remove()
    code = "print(open('/proc/self/cgroup').read())"
    with SandboxedProcess([PY, "-c", code], cwd=Path.cwd(), limits=SandboxLimits()) as process:
        process.wait()
        memory = process._memory_cgroup
        assert memory is not None
        limit_file = "memory.limit_in_bytes" if memory.version == 1 else "memory.max"
        assert (memory.path / limit_file).read_text().strip() == str(4096 * 2**20)
        result = process.close()
    assert memory.path.name in result.output
    assert not memory.path.exists()  # removed with the run


def test_process_limit_stops_a_bounded_fork_loop() -> None:
    code = (
        "import os, time\n"
        "n = 0\n"
        "for _ in range(100):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(5)\n"
        "        os._exit(0)\n"
        "    n += 1\n"
        "print('forked', n)\n"
    )
    result = python(code, limits=SandboxLimits(max_processes=16, run_timeout=20))
    if result.process_limit in ("watch", "none"):
        pytest.skip("no enforceable process limit on this machine")
    forked = int(result.output.split("forked")[1].split()[0])
    assert forked < 16
    assert result.duration < 4  # the sleeping children did not keep the run alive


def test_fork_bomb_is_contained_and_cleaned_up() -> None:
    # Only with a limit the kernel enforces (the bounded test above shows it works).
    probe = python("pass", limits=SandboxLimits(max_processes=16))
    if probe.process_limit not in ("cgroup", "rlimit"):
        pytest.skip("no enforceable process limit on this machine")
    marker = "cyclefix-fork-bomb-marker"
    code = (
        f"# {marker}\n"
        "import os\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError:\n"
        "        pass\n"
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:  # how many bomb processes exist at once, while it runs
        nonlocal peak
        while not done.is_set():
            peak = max(peak, len(processes_with(marker)))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    try:
        result = python(code, limits=SandboxLimits(max_processes=32, run_timeout=1.5))
    finally:
        done.set()
        sampler.join()
    assert result.timed_out
    assert time.monotonic() - started < 6
    assert 1 < peak <= 32
    assert wait_until_gone(marker) == []


def test_background_child_that_leaves_the_group_is_killed() -> None:
    marker = "987.654"
    code = f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
    started = time.monotonic()
    result = python(code)
    assert result.returncode == 0
    assert time.monotonic() - started < 5
    if not detect_isolation().pid_namespace:
        for pid in processes_with(marker):
            os.kill(pid, 9)
        pytest.skip("no pid namespace here: a setsid() child escapes")
    assert wait_until_gone(marker) == []


def test_wall_clock_cap_kills_the_run() -> None:
    started = time.monotonic()
    result = python("import time\ntime.sleep(30)\n", limits=SandboxLimits(run_timeout=0.5))
    assert result.timed_out and not result.cancelled
    assert time.monotonic() - started < 3
    assert "longer than 0.5 s" in result.killed_reason


def test_cancel_event_kills_promptly() -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    result = python("import time\ntime.sleep(30)\n", cancel=cancel)
    assert result.cancelled and not result.timed_out
    assert time.monotonic() - started < 2


def test_memory_limit_turns_a_hog_into_memory_error() -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 2**20))\n"
    result = python(code, limits=SandboxLimits(memory_mb=256, run_timeout=20))
    assert result.returncode == 1
    assert "MemoryError" in result.output


def test_cpu_limit_kills_a_spinning_process() -> None:
    result = python("while True:\n    pass\n", limits=SandboxLimits(cpu_seconds=1, run_timeout=20))
    # Killed by SIGXCPU (unshare, in between, reports a signal death as exit code 1).
    assert result.returncode not in (0, None)
    assert not result.timed_out and not result.killed_reason


def test_file_size_limit(tmp_path: Path) -> None:
    code = "open('big.bin', 'wb').write(b'x' * (3 * 2**20))\n"
    result = python(code, cwd=tmp_path, limits=SandboxLimits(file_size_mb=1))
    assert result.returncode == 1
    assert "File too large" in result.output
    assert (tmp_path / "big.bin").stat().st_size <= 2**20


def test_network_is_cut_but_localhost_works_when_isolated() -> None:
    code = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('192.0.2.1', 80), timeout=3)\n"
        "    print('connected')\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno)\n"
    )
    result = python(code)
    if not result.network_isolated:
        pytest.skip("the OS does not let us cut the network here")
    assert "refused" in result.output


def test_fallback_without_namespaces_or_cgroups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "detect_isolation", lambda: Isolation((), False, False))
    monkeypatch.setenv("CYCLEFIX_NO_CGROUP", "1")
    marker = "876.543"
    code = f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'])\nprint('ok')\n"
    result = python(code)
    assert result.returncode == 0 and "ok" in result.output
    assert not result.network_isolated
    assert any("network not isolated" in note for note in result.notes)
    expected = "watch" if os.geteuid() == 0 else "rlimit"
    assert result.process_limit == expected
    # The child stayed in the process group, so killing the group reached it.
    assert wait_until_gone(marker) == []


def test_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CyclefixError, match="cannot start"):
        SandboxedProcess([str(tmp_path / "no-such-program")], cwd=tmp_path)
