"""Warm workers: runs forked from a process that has pytest and its plugins imported give the
results a fresh process gives, confined the same way, and nothing of one run reaches the next."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cyclefix.runner import Confinement, SandboxLimits, TestRunResult, run_tests
from cyclefix.runner import confine as confine_module
from cyclefix.runner import warm as warm_module
from cyclefix.runner.warm import WarmWorkers, usable

pytestmark = pytest.mark.skipif(bool(usable(confined=True)), reason=usable(confined=True))

LIMITS = SandboxLimits(per_test_timeout=2.0, run_timeout=30.0)
CALC = "def add(a, b):\n    return a + b\n"


@pytest.fixture
def warm() -> Iterator[WarmWorkers]:
    with WarmWorkers() as workers:
        yield workers


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "calc.py").write_text(CALC)
    return root


def with_tests(root: Path, source: str) -> Path:
    (root / "test_calc.py").write_text("from calc import add\n\n" + source)
    return root


def copy_of(root: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "scratch" / root.name
    shutil.copytree(root, copy)
    return copy


def outcomes(run: TestRunResult) -> dict[str, str]:
    return {t.nodeid.split("::")[-1]: t.outcome for t in run.tests}


def candidate_run(copy: Path, original: Path, warm: WarmWorkers | None) -> TestRunResult:
    return run_tests(
        copy, limits=LIMITS, autoload_plugins=False, confinement=Confinement(original), warm=warm
    )


def test_a_warm_run_reports_what_a_cold_run_reports(project: Path, warm: WarmWorkers) -> None:
    tests = "def test_ok():\n    assert add(1, 2) == 3\n\ndef test_wrong():\n    assert add(2, 2) == 5\n"
    with_tests(project, tests)
    cold = run_tests(project, limits=LIMITS, autoload_plugins=False, trace=True)
    for _ in range(2):  # the first run starts the worker, the second is forked from it warm
        hot = run_tests(project, limits=LIMITS, autoload_plugins=False, trace=True, warm=warm)
        assert outcomes(hot) == outcomes(cold) == {"test_ok": "passed", "test_wrong": "failed"}
        assert hot.exit_code == cold.exit_code == 1
        assert hot.failures[0].assert_source == cold.failures[0].assert_source
        assert [e.qualname for e in hot.tests[0].executed] == ["add"]
        assert hot.notes == cold.notes


def test_module_state_of_one_run_never_reaches_the_next(project: Path, warm: WarmWorkers) -> None:
    with_tests(
        project,
        "import builtins, sys, calc\n\n"
        "def test_fresh():\n"
        "    assert not hasattr(builtins, 'LEFT_BY_A_RUN')\n"
        "    assert 'planted_module' not in sys.modules\n"
        "    assert calc.add(1, 2) == 3\n"
        "    builtins.LEFT_BY_A_RUN = True\n"
        "    sys.modules['planted_module'] = calc\n"
        "    calc.add = lambda a, b: 3\n",
    )
    for _ in range(3):
        assert outcomes(run_tests(project, limits=LIMITS, warm=warm)) == {"test_fresh": "passed"}


def test_a_warm_candidate_may_write_only_in_its_scratch_copy(
    project: Path, tmp_path: Path, warm: WarmWorkers
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    with_tests(
        project,
        "def test_write(tmp_path):\n"
        "    (tmp_path / 'own.txt').write_text('ok')\n"
        f"    open({str(victim)!r}, 'w').write('overwritten')\n",
    )
    copy = copy_of(project, tmp_path)
    for _ in range(2):
        run = candidate_run(copy, project, warm)
        assert outcomes(run) == {"test_write": "failed"}
        assert "PermissionError" in (run.failures[0].exc_type or "")
    assert victim.read_text() == "mine"


def test_what_a_run_leaves_running_is_ended_before_the_next(
    project: Path, tmp_path: Path, warm: WarmWorkers
) -> None:
    late = project / "late.txt"
    with_tests(
        project,
        "import subprocess, sys\n\n"
        "def test_detach():\n"
        '    code = \'import time; time.sleep(1.5); open(%r, "w").write("late")\'\n'
        f"    subprocess.Popen([sys.executable, '-c', code % {str(late)!r}], "
        "start_new_session=True)\n",
    )
    assert outcomes(run_tests(project, limits=LIMITS, warm=warm)) == {"test_detach": "passed"}
    time.sleep(2.5)
    assert not late.exists()


def test_a_run_over_its_time_ends_the_worker_and_the_next_run_gets_a_new_one(
    project: Path, warm: WarmWorkers
) -> None:
    with_tests(project, "import time\n\ndef test_slow():\n    time.sleep(10)\n")
    limits = SandboxLimits(per_test_timeout=20.0, run_timeout=1.5)
    started = time.monotonic()
    slow = run_tests(project, limits=limits, warm=warm)
    assert slow.timed_out and time.monotonic() - started < 8
    with_tests(project, "def test_ok():\n    assert add(1, 2) == 3\n")
    assert outcomes(run_tests(project, limits=LIMITS, warm=warm)) == {"test_ok": "passed"}


def test_a_test_that_ends_its_process_is_reported_and_the_rest_still_run(
    project: Path, warm: WarmWorkers
) -> None:
    with_tests(
        project,
        "import os\n\n"
        "def test_exit():\n    os._exit(0)\n\n"
        "def test_after():\n    assert add(1, 2) == 3\n",
    )
    cold = run_tests(project, limits=LIMITS)
    assert outcomes(cold) == {"test_exit": "error", "test_after": "passed"}
    for _ in range(2):
        run = run_tests(project, limits=LIMITS, warm=warm)
        assert outcomes(run) == outcomes(cold)
        assert run.tests[0].exc_message == cold.tests[0].exc_message


@pytest.mark.skipif(confine_module.landlock_abi() < 6, reason="signals are scoped from ABI 6")
def test_a_candidate_cannot_signal_the_worker_or_reach_its_socket(
    project: Path, tmp_path: Path, warm: WarmWorkers
) -> None:
    # Every inherited descriptor but the run's own is closed; the worker is outside the
    # candidate's Landlock domain, so signals to it are refused.
    with_tests(
        project,
        "import os, signal\n\n"
        "def test_attack():\n"
        "    for fd in range(3, 256):\n"
        "        try:\n"
        "            os.write(fd, b'{\"exit\": 0}\\n')\n"
        "        except OSError:\n"
        "            pass\n"
        "    try:\n"
        "        os.kill(os.getppid(), signal.SIGKILL)\n"
        "    except PermissionError:\n"
        "        pass\n"
        "    assert add(2, 2) == 5\n",
    )
    copy = copy_of(project, tmp_path)
    for _ in range(2):
        run = candidate_run(copy, project, warm)
        assert run.exit_code != 0
        assert not run.all_passed
        assert not any("start cold" in note for note in run.notes)


def test_a_worker_that_cannot_start_leaves_the_run_cold_with_a_note(
    project: Path, warm: WarmWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warm_module, "WORKER_LAUNCHER", "import sys; sys.exit('no pytest here')")
    with_tests(project, "def test_ok():\n    assert add(1, 2) == 3\n")
    run = run_tests(project, limits=LIMITS, warm=warm)
    assert outcomes(run) == {"test_ok": "passed"}
    assert any("start cold" in note and "no pytest here" in note for note in run.notes)
    for _ in range(2):  # after two failed starts the session stops trying, silently
        run = run_tests(project, limits=LIMITS, warm=warm)
        assert outcomes(run) == {"test_ok": "passed"}
    assert not any("start cold" in note for note in run.notes)


def test_a_worker_prepared_ahead_serves_the_first_candidate_run(
    project: Path, tmp_path: Path, warm: WarmWorkers
) -> None:
    with_tests(project, "def test_ok():\n    assert add(1, 2) == 3\n")
    copy = copy_of(project, tmp_path)
    warm.prepare(project, python=sys.executable, limits=LIMITS, confinement=Confinement(project))
    run = run_tests(copy, limits=LIMITS, confinement=Confinement(project), warm=warm)
    assert outcomes(run) == {"test_ok": "passed"}
    assert warm.take_notes() == []
    serving = workers_of(project)
    assert serving  # the prepared worker (its unshare and its interpreter)
    run = run_tests(copy, limits=LIMITS, confinement=Confinement(project), warm=warm)
    assert outcomes(run) == {"test_ok": "passed"}
    assert workers_of(project) == serving


def workers_of(project: Path) -> list[int]:
    """Processes started as warm workers for `project` (by their initial environment)."""
    marker = f"CYCLEFIX_WARM_PROJECT={project}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_closing_while_a_worker_is_prepared_leaves_nothing_running(project: Path) -> None:
    workers = WarmWorkers()
    workers.prepare(project, python=sys.executable, limits=LIMITS, confinement=None)
    workers.close()
    assert workers_of(project) == []
    with_tests(project, "def test_ok():\n    assert add(1, 2) == 3\n")
    # A closed pool runs nothing warm: the run starts cold and still gives its results.
    assert outcomes(run_tests(project, limits=LIMITS, warm=workers)) == {"test_ok": "passed"}
    assert workers_of(project) == []


def test_a_worker_prepared_before_a_fix_serves_its_candidates(
    project: Path, warm: WarmWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `cyclefix fix` does beside the user's run: the fix's first candidate finds it.
    from cyclefix.models.scripted import ScriptedBackend
    from cyclefix.refine import RefineConfig, check, fix, prepare_candidates, select

    started_in: list[str] = []  # the thread each worker was started in
    starting = threading.Event()

    class Recorded(warm_module.WarmWorker):
        def __init__(self, kind: warm_module.WorkerKind) -> None:
            started_in.append(threading.current_thread().name)
            starting.set()
            super().__init__(kind)

    monkeypatch.setattr(warm_module, "WarmWorker", Recorded)
    (project / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    with_tests(project, "def test_ok():\n    assert add(1, 2) == 3\n")
    config = RefineConfig(rounds=1, extend_to_budget=False)
    selection = select(project, config=config)
    prepare_candidates(selection, config, warm)
    assert starting.wait(30)  # before the user's run and the fix
    initial = check(selection, config=config)  # the user's run: a fresh process
    answer = "```python\ndef add(a, b):\n    return a + b\n```\n"
    backend = ScriptedBackend([answer])
    result = fix(selection, backend, config=config, initial_run=initial, warm=warm)
    assert result.status == "fixed" and warm.take_notes() == []
    # One worker, started ahead by prepare's thread; the candidate forked from it.
    assert started_in == ["cyclefix-warm"]
