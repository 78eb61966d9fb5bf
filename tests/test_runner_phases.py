"""RunPhases: where a pytest run's wall time went (start-up, collection, tests, total)."""

from __future__ import annotations

from pathlib import Path

from cyclefix.runner import RunPhases, SandboxLimits, run_tests
from cyclefix.runner.records import ProcessReport


def _project(root: Path, files: dict[str, str]) -> Path:
    (root / "pyproject.toml").write_text("")
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def _run(root: Path) -> RunPhases:
    limits = SandboxLimits(per_test_timeout=5.0, run_timeout=60.0)
    phases = run_tests(root, limits=limits, autoload_plugins=False).phases
    assert phases is not None
    return phases


def test_slow_tests_show_in_the_tests_phase(tmp_path: Path) -> None:
    root = _project(
        tmp_path, {"test_slow.py": "import time\n\ndef test_a():\n    time.sleep(0.3)\n"}
    )
    phases = _run(root)
    assert phases.tests_s >= 0.3
    assert phases.collect_s < phases.tests_s


def test_a_slow_import_shows_in_the_collection_phase(tmp_path: Path) -> None:
    slow = "import time\ntime.sleep(0.3)\n\ndef test_a():\n    pass\n"
    phases = _run(_project(tmp_path, {"test_import.py": slow}))
    assert phases.collect_s >= 0.3
    assert phases.tests_s < phases.collect_s


def test_phases_add_up_to_at_most_the_total(tmp_path: Path) -> None:
    phases = _run(_project(tmp_path, {"test_ok.py": "def test_a():\n    pass\n"}))
    assert phases.startup_s > 0
    assert phases.startup_s + phases.collect_s + phases.tests_s <= phases.total_s


def test_a_process_that_never_started_its_session_was_all_start_up() -> None:
    attempt = ProcessReport(spawned=10.0, reaped=12.0)
    assert attempt.phases() == RunPhases(startup_s=2.0, collect_s=0.0, tests_s=0.0, total_s=2.0)


def test_a_process_that_died_while_collecting_was_collecting_until_it_ended() -> None:
    attempt = ProcessReport(spawned=10.0, reaped=14.0, session_started=11.0)
    assert attempt.phases() == RunPhases(startup_s=1.0, collect_s=3.0, tests_s=0.0, total_s=4.0)


def test_a_test_that_killed_its_process_ran_until_the_process_ended() -> None:
    attempt = ProcessReport(
        spawned=10.0, reaped=20.0, session_started=11.0, collected_at=12.0, last_test_at=13.0
    )
    attempt.running = "test_x.py::test_hang"
    assert attempt.phases().tests_s == 8.0


def test_the_tests_phase_ends_with_the_last_test() -> None:
    attempt = ProcessReport(
        spawned=10.0, reaped=20.0, session_started=11.0, collected_at=12.0, last_test_at=15.0
    )
    assert attempt.phases() == RunPhases(startup_s=1.0, collect_s=1.0, tests_s=3.0, total_s=10.0)


def test_child_times_outside_the_process_s_life_are_clamped() -> None:
    # The stamps come from the test process: a nonsense clock must not make negative phases.
    attempt = ProcessReport(spawned=10.0, reaped=12.0, session_started=5.0, collected_at=50.0)
    phases = attempt.phases()
    assert min(phases.startup_s, phases.collect_s, phases.tests_s) >= 0.0
    assert max(phases.startup_s, phases.collect_s, phases.tests_s) <= phases.total_s
