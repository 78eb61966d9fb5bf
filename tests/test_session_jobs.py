"""The session's job board: one current job per key, the newest wins, stale news is known."""

from __future__ import annotations

from pathlib import Path

from cyclefix.session.jobs import Job, JobBoard


def test_a_new_job_supersedes_and_cancels_the_current_one_of_its_key() -> None:
    board: JobBoard[Job] = JobBoard()
    first, second = Job(key="tests"), Job(key="tests")
    board.start(first)
    assert board.start(second, "a newer save") is first
    assert first.cancel.is_set() and first.cancel_reason == "a newer save"
    assert not board.is_current(first) and board.current("tests") is second


def test_jobs_of_other_keys_run_side_by_side() -> None:
    board: JobBoard[Job] = JobBoard()
    tests, refine = Job(key="tests"), Job(key="refine")
    board.start(tests)
    board.start(refine)
    assert not tests.cancel.is_set()
    assert board.running() == [tests, refine]


def test_stop_asks_a_job_to_stop_but_keeps_it_current_until_it_reports() -> None:
    board: JobBoard[Job] = JobBoard()
    job = Job(key="refine")
    board.start(job)
    board.stop(job, "cancelled by the user")
    assert job.cancel.is_set() and board.is_current(job)
    board.finish(job)
    assert board.current("refine") is None and board.finished == [job]


def test_cancel_calls_the_front_ends_hook_with_the_reason() -> None:
    seen: list[tuple[Job, str]] = []
    board: JobBoard[Job] = JobBoard(on_cancel=lambda job, reason: seen.append((job, reason)))
    job = Job(key=Path("/project"))
    board.start(job)
    assert board.cancel_all("shutting down") == 1
    assert seen == [(job, "shutting down")] and board.running() == []


def test_pending_paths_of_a_burst_of_saves_are_taken_once() -> None:
    board: JobBoard[Job] = JobBoard()
    board.add_pending("root", [Path("a.py")])
    board.add_pending("root", [Path("b.py"), Path("a.py")])
    assert board.take_pending("root") == {Path("a.py"), Path("b.py")}
    assert board.take_pending("root") == frozenset()


def test_finishing_a_superseded_job_leaves_the_newer_one_current() -> None:
    board: JobBoard[Job] = JobBoard()
    old, new = Job(key="k"), Job(key="k")
    board.start(old)
    board.start(new)
    board.finish(old)
    assert board.current("k") is new
