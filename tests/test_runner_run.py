"""run_tests end to end: structured results, and hostile tests that must not hurt us."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cyclefix.errors import CyclefixError
from cyclefix.runner import (
    Callee,
    SandboxLimits,
    TestCaseResult,
    TestRunResult,
    feedback_text,
    order_failing_first,
    protocol,
    run_tests,
    scratch_copy,
)
from cyclefix.runner import launch as launch_module
from cyclefix.runner import plugin as plugin_module
from cyclefix.runner import run as run_module
from cyclefix.runner.isolation import detect_isolation
from cyclefix.runner.sandbox import run_sandboxed

FIXTURE = Path(__file__).parent / "fixtures" / "runner" / "calc_project"


def make_project(root: Path, files: dict[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("")
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def fast_run(root: Path, tests: tuple[str, ...] = (), **limits: float) -> TestRunResult:
    """A run without autoloaded plugins (quick start) and short timeouts."""
    settings = {"per_test_timeout": 0.5, "run_timeout": 60.0, **limits}
    return run_tests(root, tests, limits=SandboxLimits(**settings), autoload_plugins=False)  # type: ignore[arg-type]


def by_name(run: TestRunResult) -> dict[str, TestCaseResult]:
    return {case.nodeid.rsplit("::", 1)[-1]: case for case in run.tests}


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry.name))
    return found


# ---------------------------------------------------------------- the fixture project


class FixtureRun:
    def __init__(self) -> None:
        self.progress: list[str] = []
        self.collected: list[int] = []
        self.started = 0.0
        self.seconds = 0.0
        self.progress_times: list[float] = []


@pytest.fixture(scope="module")
def fixture_run() -> Iterator[tuple[TestRunResult, FixtureRun]]:
    seen = FixtureRun()

    def on_test(case: TestCaseResult) -> None:
        seen.progress.append(case.nodeid)
        seen.progress_times.append(time.monotonic() - seen.started)

    with scratch_copy(FIXTURE) as copy:
        seen.started = time.monotonic()
        run = run_tests(
            copy,
            limits=SandboxLimits(per_test_timeout=1.0),
            on_test=on_test,
            on_collected=seen.collected.append,
            autoload_plugins=False,
        )
        seen.seconds = time.monotonic() - seen.started
        yield run, seen


def test_every_test_is_reported_once(fixture_run: tuple[TestRunResult, FixtureRun]) -> None:
    run, seen = fixture_run
    assert run.exit_code == 1
    assert len(run.tests) == 11
    assert seen.collected == [11]
    assert seen.progress == [c.nodeid for c in run.tests]
    assert {c.outcome for c in run.tests} == {"passed", "failed", "timeout"}
    assert sorted(c.nodeid for c in run.passed) == [
        "tests/test_report.py::test_describe",
        "tests/test_stats.py::test_median_odd",
    ]
    assert run.selected == ()
    assert not run.timed_out and not run.cancelled
    assert "FAILED tests/test_stats.py::test_median_even" in run.output_tail


def test_progress_arrives_while_the_run_goes_on(
    fixture_run: tuple[TestRunResult, FixtureRun],
) -> None:
    _, seen = fixture_run
    # test_count_bits hangs for a second: what came before it was reported before it ended.
    hang_index = seen.progress.index("tests/test_stats.py::test_count_bits")
    assert seen.progress_times[hang_index - 1] < seen.progress_times[hang_index] - 0.5
    assert seen.seconds < 10


def test_assert_failure_has_input_expected_actual(
    fixture_run: tuple[TestRunResult, FixtureRun],
) -> None:
    case = by_name(fixture_run[0])["test_median_even"]
    assert case.outcome == "failed"
    assert case.path == "tests/test_stats.py"
    assert case.line == 11
    assert case.exc_type == "AssertionError"
    assert case.assert_source == "assert median([1, 2, 3, 4]) == 2.5"
    assert case.assert_explanation is not None
    assert case.assert_explanation.startswith("assert 3.5 == 2.5")
    assert "where 3.5 = median([1, 2, 3, 4])" in case.assert_explanation
    assert (case.input, case.expected, case.actual) == ("[1, 2, 3, 4]", "2.5", "3.5")
    assert case.test_source is not None
    assert case.test_source.startswith("def test_median_even():")
    assert case.project_frames == ()
    assert feedback_text(case) == (
        'Test Case Failed: assert median([1, 2, 3, 4]) == 2.5, Input: "[1, 2, 3, 4]", '
        'Expected output: "2.5", Actual output: "3.5"'
    )


@pytest.mark.parametrize(
    ("name", "source", "input_", "expected", "actual"),
    [
        (
            "test_median_reversed",
            "assert 2.5 == median([4, 3, 2, 1])",
            "[4, 3, 2, 1]",
            "2.5",
            "3.5",
        ),
        ("test_median_local", "assert result == 25", "[10, 20, 30, 40]", "25", "35.0"),
        ("test_mode_empty", "assert mode([]) is None", "[]", "is None", "0"),
        ("test_mode_in", "assert mode([1, 1, 2]) in (2, 3)", "[1, 1, 2]", "in (2, 3)", "1"),
        ("test_shout", 'assert shout("hi") == "HI"', '"hi"', "'HI'", "'HI!'"),
        (
            "test_median_unittest",
            "self.assertEqual(median([1, 2, 3, 4]), 2.5)",
            "[1, 2, 3, 4]",
            "2.5",
            "3.5",
        ),
    ],
)
def test_assert_shapes(
    fixture_run: tuple[TestRunResult, FixtureRun],
    name: str,
    source: str,
    input_: str,
    expected: str,
    actual: str,
) -> None:
    case = by_name(fixture_run[0])[name]
    assert case.outcome == "failed"
    assert case.assert_source == source
    assert (case.input, case.expected, case.actual) == (input_, expected, actual)


def test_crash_has_project_frames(fixture_run: tuple[TestRunResult, FixtureRun]) -> None:
    case = by_name(fixture_run[0])["test_mean_empty"]
    assert case.outcome == "failed"
    assert case.exc_type == "ZeroDivisionError"
    assert case.exc_message == "division by zero"
    assert case.line == 24
    assert case.line_source == "assert mean([]) is None"
    # A crash, not a failed assert; what the assert wanted from the call is still known.
    assert case.assert_source is None and case.expected == "is None"
    assert [(f.path, f.line, f.function) for f in case.project_frames] == [
        ("calc/stats.py", 15, "mean")
    ]
    assert case.project_frames[0].source == "return sum(values) / len(values)"
    assert feedback_text(case).startswith(
        "Failed at line: return sum(values) / len(values) (calc/stats.py:15); "
        "Error: ZeroDivisionError: division by zero"
    )


def test_infinite_loop_times_out_where_it_loops(
    fixture_run: tuple[TestRunResult, FixtureRun],
) -> None:
    case = by_name(fixture_run[0])["test_count_bits"]
    assert case.outcome == "timeout"
    assert 0.9 < case.duration < 3
    assert case.exc_message == "timed out after 1 s"
    assert case.project_frames[-1].function == "count_bits"
    assert case.project_frames[-1].path == "calc/stats.py"
    assert feedback_text(case).startswith("Test test_count_bits timed out after 1 s")


def test_captured_output_is_kept(fixture_run: tuple[TestRunResult, FixtureRun]) -> None:
    case = by_name(fixture_run[0])["test_shout"]
    assert case.stdout == "shouting hi\n"
    assert case.stderr == ""


def test_running_leaves_the_project_untouched(tmp_path: Path) -> None:
    project = tmp_path / "calc"
    shutil.copytree(FIXTURE, project)
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    run = fast_run(project, ("tests/test_report.py",))
    assert [c.outcome for c in run.tests] == ["passed"]
    assert run.selected == ("tests/test_report.py",)
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before


# ---------------------------------------------------------------- hostile tests


def test_code_that_ignores_its_timeout_meets_the_watchdog_and_the_rest_runs(
    tmp_path: Path,
) -> None:
    root = make_project(
        tmp_path / "p",
        {
            "tests/test_hang.py": (
                "import signal\n\n"
                "def test_first():\n    pass\n\n"
                "def test_swallows_then_returns():\n"
                "    try:\n        while True:\n            pass\n"
                "    except BaseException:\n        pass\n\n"
                "def test_ignores_alarm():\n"
                "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                "    while True:\n        pass\n\n"
                "def test_after():\n    pass\n"
            ),
        },
    )
    started = time.monotonic()
    run = fast_run(root)
    outcomes = {name: case.outcome for name, case in by_name(run).items()}
    assert outcomes == {
        "test_first": "passed",
        "test_swallows_then_returns": "timeout",
        "test_ignores_alarm": "timeout",
        "test_after": "passed",
    }
    assert time.monotonic() - started < 20
    assert run.exit_code == 1
    assert any("remaining" in note for note in run.notes)


@pytest.mark.parametrize("swallow", [False, True])
def test_run_stops_after_max_hangs(tmp_path: Path, swallow: bool) -> None:
    # swallow: the code ignores the alarm, so the watchdog kills the process (no rerun then).
    body = (
        "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    while True:\n        pass\n"
        if swallow
        else "    while n >= 0:\n        pass\n"
    )
    root = make_project(
        tmp_path / "p",
        {
            "tests/test_loop.py": (
                "import signal\nimport pytest\n\n"
                "def test_first():\n    pass\n\n"
                "@pytest.mark.parametrize('n', [1, 2, 3, 4, 5])\n"
                f"def test_hangs(n):\n{body}"
            ),
        },
    )
    run = fast_run(root, per_test_timeout=0.3, max_hangs=2)
    assert [c.outcome for c in run.tests] == ["passed", "timeout", "timeout"]
    assert "stopped at the timeout limit: 3 test(s) not run" in run.notes
    assert not run.all_passed
    # Without the limit every case runs.
    if not swallow:
        run = fast_run(root, per_test_timeout=0.3)
        assert [c.outcome for c in run.tests] == ["passed"] + ["timeout"] * 5


def test_hang_holding_the_gil_is_killed_from_outside(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {
            "tests/test_regex.py": (
                "import collections, itertools\n\n"
                "def test_catastrophic():\n"
                "    # C code that never returns to the interpreter: no signal handler, no thread\n"
                "    collections.deque(itertools.repeat(None), maxlen=0)\n\n"
                "def test_after():\n    pass\n"
            ),
        },
    )
    started = time.monotonic()
    run = fast_run(root)
    outcomes = {name: case.outcome for name, case in by_name(run).items()}
    assert outcomes == {"test_catastrophic": "timeout", "test_after": "passed"}
    assert time.monotonic() - started < 15
    assert feedback_text(by_name(run)["test_catastrophic"]).startswith(
        "Test test_catastrophic timed out after 0.5 s"
    )


def test_the_rerun_after_a_dead_process_skips_exactly_the_tests_seen(tmp_path: Path) -> None:
    # pytest's --deselect takes prefixes: skipping test_exits would drop test_exits_later too.
    root = make_project(
        tmp_path / "p",
        {
            "tests/test_exit.py": (
                "import os\n\n"
                "def test_exits():\n    os._exit(0)\n\n"
                "def test_exits_later():\n    pass\n"
            ),
        },
    )
    cases = by_name(fast_run(root))
    assert cases["test_exits"].exc_type == "ProcessExit"
    assert cases["test_exits_later"].outcome == "passed"


def test_skipped_node_ids_are_left_out_exactly(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {"tests/test_a.py": "def test_a():\n    pass\n\n\ndef test_ab():\n    pass\n"},
    )
    run = run_tests(root, skip=["tests/test_a.py::test_a"], autoload_plugins=False)
    assert [t.nodeid for t in run.tests] == ["tests/test_a.py::test_ab"]


def test_os_exit_inside_a_test(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {
            "tests/test_exit.py": (
                "import os\n\n"
                "def test_before():\n    pass\n\n"
                "def test_exits():\n    os._exit(0)\n\n"
                "def test_after():\n    assert 1 == 2\n"
            ),
        },
    )
    run = fast_run(root)
    cases = by_name(run)
    assert [c.nodeid.rsplit("::")[-1] for c in run.tests] == [
        "test_before",
        "test_exits",
        "test_after",
    ]
    assert cases["test_exits"].outcome == "error"
    assert cases["test_exits"].exc_type == "ProcessExit"
    assert "exited with code 0" in (cases["test_exits"].exc_message or "")
    assert cases["test_after"].outcome == "failed"
    assert run.exit_code == 1
    assert not run.all_passed


def test_background_child_that_outlives_its_test(tmp_path: Path) -> None:
    marker = "765.4321"
    root = make_project(
        tmp_path / "p",
        {
            "tests/test_child.py": (
                "import subprocess\n\n"
                "def test_spawns():\n"
                f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
            ),
        },
    )
    started = time.monotonic()
    run = fast_run(root)
    assert [c.outcome for c in run.tests] == ["passed"]
    assert time.monotonic() - started < 10
    leftovers = processes_with(marker)
    if leftovers and not detect_isolation().pid_namespace:
        for pid in leftovers:
            os.kill(pid, 9)
        pytest.skip("no pid namespace here: a setsid() child escapes")
    deadline = time.monotonic() + 3
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == []


def test_fork_bomb_inside_a_test(tmp_path: Path) -> None:
    marker = "cyclefix-bomb-in-test"
    root = make_project(
        tmp_path / "p",
        {
            "tests/test_bomb.py": (
                f"# {marker}\n"
                "import os\n\n"
                "def test_bomb():\n"
                "    while True:\n"
                "        try:\n"
                "            os.fork()\n"
                "        except OSError:\n"
                "            pass\n\n"
                "def test_after():\n    pass\n"
            ),
        },
    )
    probe = run_sandboxed([sys.executable, "-c", "pass"], cwd=tmp_path)
    if probe.process_limit not in ("cgroup", "rlimit"):
        pytest.skip("no enforceable process limit on this machine")
    started = time.monotonic()
    run = run_tests(
        root,
        limits=SandboxLimits(per_test_timeout=0.5, max_processes=8, run_timeout=30),
        autoload_plugins=False,
    )
    assert time.monotonic() - started < 25
    cases = by_name(run)
    assert cases["test_bomb"].outcome in ("timeout", "error")
    assert "test_after" in cases
    deadline = time.monotonic() + 3
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == []


def test_memory_hog_fails_with_memory_error(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {
            "tests/test_hog.py": (
                "def test_hog():\n"
                "    chunks = []\n"
                "    while True:\n"
                "        chunks.append(bytearray(16 * 2**20))\n\n"
                "def test_after():\n    pass\n"
            ),
        },
    )
    run = fast_run(root, memory_mb=512, per_test_timeout=10)
    cases = by_name(run)
    assert cases["test_hog"].outcome == "failed"
    assert cases["test_hog"].exc_type == "MemoryError"
    assert cases["test_after"].outcome == "passed"


def test_huge_print_inside_a_test(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {
            "tests/test_print.py": (
                "def test_prints():\n"
                "    chunk = 'y' * (1 << 20)\n"
                "    for _ in range(1024):\n"
                "        print(chunk)\n\n"
                "def test_after():\n    pass\n"
            ),
        },
    )
    run = fast_run(root, file_size_mb=16, per_test_timeout=20, output_limit=20_000)
    cases = by_name(run)
    # Captured output goes to a temporary file: the file-size limit stops it.
    assert cases["test_prints"].outcome == "failed"
    assert "File too large" in (cases["test_prints"].exc_message or "")
    assert len(cases["test_prints"].stdout) < 5000
    assert cases["test_after"].outcome == "passed"
    assert len(run.output_tail) <= 20_000


def test_infinite_loop_times_out_within_seconds(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {"tests/test_loop.py": "def test_loop():\n    while True:\n        pass\n"},
    )
    started = time.monotonic()
    run = fast_run(root, per_test_timeout=1.0)
    assert [c.outcome for c in run.tests] == ["timeout"]
    assert time.monotonic() - started < 6


def test_thread_that_keeps_pytest_alive_after_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_module, "SHUTDOWN_GRACE", 0.5)
    root = make_project(
        tmp_path / "p",
        {
            "tests/test_thread.py": (
                "import threading, time\n\n"
                "def test_starts_a_thread():\n"
                "    threading.Thread(target=time.sleep, args=(60,)).start()\n"
            ),
        },
    )
    started = time.monotonic()
    run = fast_run(root)
    assert [c.outcome for c in run.tests] == ["passed"]
    assert run.exit_code == 0 and run.all_passed
    assert time.monotonic() - started < 8
    assert any("did not exit" in note for note in run.notes)


# ---------------------------------------------------------------- collection problems


def test_syntax_error_in_a_source_file_is_a_collection_error(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {
            "pkg/__init__.py": "",
            "pkg/broken.py": "def f(:\n    return 1\n",
            "tests/test_broken.py": "from pkg.broken import f\n\ndef test_f():\n    assert f()\n",
            "tests/test_fine.py": "def test_fine():\n    pass\n",
        },
    )
    run = fast_run(root)
    assert [c.nodeid for c in run.tests] == ["tests/test_fine.py::test_fine"]
    assert len(run.collection_errors) == 1
    error = run.collection_errors[0]
    assert (error.path, error.line, error.nodeid) == ("pkg/broken.py", 1, "tests/test_broken.py")
    assert error.message.startswith("SyntaxError:")
    assert not run.all_passed
    assert run.exit_code != 0


def test_import_error_names_the_importing_line(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {
            "mod.py": "import does_not_exist_anywhere\n",
            "tests/test_mod.py": "import mod\n\ndef test_x():\n    pass\n",
        },
    )
    run = fast_run(root)
    assert run.tests == ()
    error = run.collection_errors[0]
    assert (error.path, error.line) == ("mod.py", 1)
    assert "ModuleNotFoundError" in error.message


def test_non_utf8_source_file(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {
            "latin.py": b"# -*- coding: latin-1 -*-\ndef name():\n    return '\xe9t\xe9'\n",
            "broken.py": b"def name():\n    return '\xe9t\xe9'\n",
            "tests/test_latin.py": (
                "from latin import name\n\ndef test_name():\n    assert name() == 'summer'\n"
            ),
            "tests/test_broken.py": "from broken import name\n\ndef test_b():\n    pass\n",
        },
    )
    run = fast_run(root)
    case = by_name(run)["test_name"]
    assert case.outcome == "failed"
    assert case.actual == "'été'"
    error = run.collection_errors[0]
    assert error.path == "broken.py"
    assert error.nodeid == "tests/test_broken.py"
    assert "utf-8" in error.message


def test_module_level_hang_is_a_collection_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launch_module, "MIN_COLLECT_TIMEOUT", 1.0)
    root = make_project(
        tmp_path / "p",
        {
            "tests/test_hangs_on_import.py": "while True:\n    pass\n",
            "tests/test_ok.py": "def test_ok():\n    pass\n",
        },
    )
    started = time.monotonic()
    run = fast_run(root, per_test_timeout=0.3)
    assert [c.nodeid for c in run.tests] == ["tests/test_ok.py::test_ok"]
    assert run.collection_errors[0].path == "tests/test_hangs_on_import.py"
    assert "TimeoutError" in run.collection_errors[0].message
    assert time.monotonic() - started < 10


def test_conftest_that_fails_to_import(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {
            "conftest.py": "import helper\n",
            "helper.py": "x = (\n",
            "tests/test_x.py": "def test_x():\n    pass\n",
        },
    )
    run = fast_run(root)
    assert run.tests == ()
    error = run.collection_errors[0]
    assert error.nodeid == "conftest.py"
    assert error.path == "helper.py"
    assert error.line == 1
    assert "SyntaxError" in error.message


def test_no_tests_is_a_normal_result(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", {"mod.py": "X = 1\n"})
    run = fast_run(root)
    assert run.exit_code == 5
    assert run.tests == ()
    assert not run.all_passed


# ---------------------------------------------------------------- control


def test_cancel_stops_the_run_promptly(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {"tests/test_sleep.py": "import time\n\ndef test_sleep():\n    time.sleep(60)\n"},
    )
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    started = time.monotonic()
    run = run_tests(
        root, limits=SandboxLimits(per_test_timeout=100), cancel=cancel, autoload_plugins=False
    )
    assert run.cancelled
    assert time.monotonic() - started < 3
    assert run.tests == ()
    assert not run.all_passed


def test_run_timeout_caps_the_whole_run(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {
            "tests/test_slow.py": (
                "import time\n\ndef test_a():\n    pass\n\ndef test_slow():\n    time.sleep(60)\n"
            )
        },
    )
    started = time.monotonic()
    run = fast_run(root, per_test_timeout=100, run_timeout=2.0)
    assert run.timed_out
    assert time.monotonic() - started < 5
    outcomes = {name: case.outcome for name, case in by_name(run).items()}
    assert outcomes == {"test_a": "passed", "test_slow": "error"}
    assert run.exit_code == 2


def test_previously_failing_tests_run_first(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {
            "tests/test_a.py": "def test_a1():\n    pass\n\ndef test_a2():\n    pass\n",
            "tests/test_b.py": "def test_b1():\n    pass\n\ndef test_b2():\n    pass\n",
        },
    )
    order = order_failing_first(
        ("tests/test_a.py", "tests/test_b.py"), ["tests/test_b.py::test_b2"]
    )
    run = fast_run(root, order)
    assert [c.nodeid.rsplit("::")[-1] for c in run.tests] == [
        "test_b2",
        "test_b1",
        "test_a1",
        "test_a2",
    ]
    assert run.selected == ("tests/test_b.py", "tests/test_a.py")


def test_network_isolation_is_reported(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        {
            "tests/test_net.py": (
                "import socket\n\n"
                "def test_localhost_works():\n"
                "    server = socket.socket()\n"
                "    server.bind(('127.0.0.1', 0))\n"
                "    server.listen()\n"
                "    socket.create_connection(server.getsockname(), timeout=2).close()\n\n"
                "def test_outside_is_unreachable():\n"
                "    try:\n"
                "        socket.create_connection(('192.0.2.1', 80), timeout=2)\n"
                "    except OSError:\n"
                "        return\n"
                "    raise AssertionError('connected')\n"
            )
        },
    )
    run = fast_run(root, per_test_timeout=5)
    assert run.network_isolated == detect_isolation().network_isolated
    if not run.network_isolated:
        pytest.skip("the OS does not let us cut the network here")
    assert [c.outcome for c in run.tests] == ["passed", "passed"]


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", {"tests/test_x.py": "def test_x():\n    pass\n"})
    with pytest.raises(CyclefixError, match="no such project folder"):
        run_tests(tmp_path / "missing")
    with pytest.raises(CyclefixError, match="no such Python interpreter"):
        run_tests(root, python=str(tmp_path / "python-nope"))
    with pytest.raises(CyclefixError, match="pytest refused the arguments"):
        fast_run(root, ("--no-such-option",))
    bare_python = shutil.which("python3", path="/usr/bin:/bin")
    if bare_python is None or os.system(f"{bare_python} -c 'import pytest' 2>/dev/null") == 0:
        pytest.skip("no interpreter without pytest here")
    with pytest.raises(CyclefixError, match="cannot run pytest"):
        run_tests(root, python=bare_python)


def test_plugin_and_runner_agree_on_the_protocol() -> None:
    for name in ("FIRST_OPTION", "WATCHDOG_EXIT_CODE", "TEARDOWN_ALLOWANCE"):
        assert getattr(plugin_module, name) == getattr(protocol, name) == getattr(run_module, name)
    assert plugin_module.ENV_TRACE == protocol.ENV_TRACE
    folder = launch_module.plugin_directory()
    runner_folder = Path(protocol.__file__).parent
    for source, private in protocol.PRIVATE_COPIES:
        copy = folder.joinpath(f"{private}.py").read_text()
        assert copy == runner_folder.joinpath(source).read_text()
    assert sys.modules.get(protocol.PLUGIN_MODULE) is None


def test_the_plugin_s_private_files_import_only_each_other() -> None:
    # The test process cannot import cyclefix: each shipped file falls back to a sibling copy.
    runner_folder = Path(protocol.__file__).parent
    for source, _ in protocol.PRIVATE_COPIES:
        text = runner_folder.joinpath(source).read_text()
        for line in text.splitlines():
            if line.startswith(("import cyclefix", "from cyclefix")):
                raise AssertionError(f"{source} imports cyclefix at module level: {line}")


def test_parametrized_inputs_are_shown_as_values(tmp_path: Path) -> None:
    # `kth(*case)` says nothing; the values pytest passed in do.
    kth = "def kth(arr, k):\n    return sorted(arr)[k - 1]\n"
    test_kth = (
        "import pytest\n"
        "from kth import kth\n\n\n"
        "@pytest.mark.parametrize('case, want', [(([3, 1, 2], 0), 1)])\n"
        "def test_star(case, want):\n"
        "    assert kth(*case) == want\n\n\n"
        "@pytest.mark.parametrize('arr', [[3, 1, 2]])\n"
        "def test_named(arr):\n"
        "    got = kth(arr, k=0)\n"
        "    assert got == 1\n"
    )
    run = run_tests(make_project(tmp_path, {"kth.py": kth, "test_kth.py": test_kth}))
    inputs = {c.nodeid.split("::")[1].split("[")[0]: c.input for c in run.failures}
    assert inputs == {"test_star": "[3, 1, 2], 0", "test_named": "[3, 1, 2], k=0"}


def test_crash_feedback_names_the_input_it_crashed_on(tmp_path: Path) -> None:
    pick = "def pick(arr, k):\n    return arr[k]\n"
    test_pick = (
        "import pytest\n"
        "from pick import pick\n\n\n"
        "@pytest.mark.parametrize('case, want', [(([1, 2], 5), 2)])\n"
        "def test_pick(case, want):\n"
        "    assert pick(*case) == want\n\n\n"
        "def test_absent():\n"
        "    assert not pick([], 0)\n"
    )
    run = run_tests(make_project(tmp_path, {"pick.py": pick, "test_pick.py": test_pick}))
    by_test = {c.nodeid.split("::")[1].split("[")[0]: c for c in run.failures}
    case = by_test["test_pick"]
    assert case.exc_type == "IndexError" and case.input == "[1, 2], 5"
    # What the assert wanted from the call that raised: the parameter's value.
    assert feedback_text(case).endswith('; Input: "[1, 2], 5"; Expected output: "2"')
    assert feedback_text(by_test["test_absent"]).endswith(
        '; Input: "[], 0"; Expected output: "a false value"'
    )


def test_objects_without_a_repr_show_their_fields(tmp_path: Path) -> None:
    # `<Node object at 0x7f...>` tells the model nothing; the fields do.
    nodes = (
        "class Node:\n"
        "    def __init__(self, value, successor=None):\n"
        "        self.value = value\n"
        "        self.successor = successor\n\n\n"
        "def last(node):\n"
        "    return node\n"
    )
    test_nodes = (
        "from nodes import Node, last\n\n\n"
        "def test_last():\n"
        "    tail = Node(2)\n"
        "    assert last(Node(1, tail)) == tail\n"
    )
    run = run_tests(make_project(tmp_path, {"nodes.py": nodes, "test_nodes.py": test_nodes}))
    (case,) = run.failures
    assert case.actual == "Node(value=1, successor=Node(value=2, successor=None))"
    assert case.expected == "Node(value=2, successor=None)"


def test_callees_name_the_file_the_test_really_called(tmp_path: Path) -> None:
    # QuixBugs imports the same name from a buggy and a correct copy behind a flag.
    conftest = (
        "import pytest\n\n\n"
        "def pytest_addoption(parser):\n"
        "    parser.addoption('--correct', action='store_true')\n\n\n"
        "def pytest_configure(config):\n"
        "    pytest.use_correct = config.getoption('correct')\n"
    )
    test_gcd = (
        "import pytest\n\n"
        "if pytest.use_correct:\n"
        "    from correct_programs.gcd import gcd\n"
        "else:\n"
        "    from programs.gcd import gcd\n\n\n"
        "def test_gcd():\n"
        "    assert gcd(12, abs(-8)) == 4\n"
    )
    files: dict[str, str | bytes] = {
        "conftest.py": conftest,
        "correct_programs/gcd.py": "def gcd(a, b):\n    return a if not b else gcd(b, a % b)\n",
        "programs/gcd.py": "def gcd(a, b):\n    return b\n",
        "tests/test_gcd.py": test_gcd,
    }
    (case,) = fast_run(make_project(tmp_path, files)).failures
    # `abs` is a builtin: no project file to name.
    assert case.callees == (Callee("gcd", "programs/gcd.py", "gcd"),)


def test_a_check_helper_names_the_function_it_was_handed_and_shows_its_asserts(
    tmp_path: Path,
) -> None:
    # HumanEval-style: the asserts live in check(candidate); the test hands it the function.
    test_solution = (
        "from solution import add\n\n\n"
        "def check(candidate):\n"
        "    assert candidate(1, 1) == 2\n"
        "    assert candidate(2, 3) == 5\n\n\n"
        "def test_add():\n"
        "    check(add)\n"
    )
    files = {"solution.py": "def add(a, b):\n    return a + b + (a > 1)\n"}
    root = make_project(tmp_path, {**files, "test_solution.py": test_solution})
    (case,) = fast_run(root).failures
    assert case.callees == (Callee("candidate", "solution.py", "add"),)
    assert case.test_source is not None
    assert case.test_source.startswith("def check(candidate):")
    assert case.test_source.endswith("def test_add():\n    check(add)")
    assert feedback_text(case).startswith("Test Case Failed: assert candidate(2, 3) == 5")


# ---------------------------------------------------------------- the signed channel


def test_signed_records_are_accepted_only_in_order_and_only_with_the_key() -> None:
    key = protocol.new_key()
    signer = protocol.RecordSigner(key)
    first, second = (signer.line({"event": "start", "nodeid": n})[:-1] for n in ("a", "b"))
    assert protocol.RecordVerifier(key).record(first) == {"event": "start", "nodeid": "a"}
    with pytest.raises(protocol.ForgedRecord, match="wrong signature"):
        protocol.RecordVerifier(key).record(second)  # out of order: a gap or a replay
    with pytest.raises(protocol.ForgedRecord, match="wrong signature"):
        protocol.RecordVerifier(protocol.new_key()).record(first)
    tampered = first.replace(b'"a"', b'"z"')
    with pytest.raises(protocol.ForgedRecord, match="wrong signature"):
        protocol.RecordVerifier(key).record(tampered)
    with pytest.raises(protocol.ForgedRecord, match="not signed"):
        protocol.RecordVerifier(key).record(b'{"event": "session_finish", "exitstatus": 0}')


def test_a_signed_record_nested_past_the_parser_is_refused_not_a_crash() -> None:
    # The test process holds the key: code under test can sign any line it likes.
    key = protocol.new_key()
    mac = hmac.new(key, (0).to_bytes(8, "big"), hashlib.sha256)
    payload = b"[" * 100_000 + b"]" * 100_000
    mac.update(payload)
    with pytest.raises(protocol.ForgedRecord, match="not JSON"):
        protocol.RecordVerifier(key).record(mac.hexdigest().encode("ascii") + b" " + payload)


def test_the_plugin_is_inert_and_keyless_without_the_runner_s_pipes() -> None:
    assert plugin_module._channel is None
    assert not any(isinstance(v, bytes) for v in vars(plugin_module).values())
