"""Probes of candidate runs, both ways: a fresh pytest process and a fork of a warm worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cyclefix.runner import SandboxLimits
from cyclefix.runner.warm import WarmRun, WarmWorkers, WorkerKind, usable


class CountingWorkers(WarmWorkers):
    """Warm workers that count the runs they forked: a probe meant for the warm path must not
    pass because its runs quietly started cold."""

    def __init__(self) -> None:
        super().__init__()
        self.forked = 0

    def start(
        self,
        kind: WorkerKind,
        args: list[str],
        env: dict[str, str],
        cwd: Path,
        pass_fds: tuple[int, int],
        limits: SandboxLimits,
        cancel: threading.Event | None,
    ) -> WarmRun | None:
        run = super().start(kind, args, env, cwd, pass_fds, limits, cancel)
        self.forked += run is not None
        return run


@pytest.fixture(params=["fresh", "warm"])
def workers(request: pytest.FixtureRequest) -> Iterator[WarmWorkers | None]:
    """Each candidate-run probe both ways: a fresh pytest process, and a fork of a warm
    worker (what `fix`, `serve` and the TUI use for candidates where they can)."""
    if request.param == "fresh":
        yield None
        return
    if why := usable(confined=True):
        pytest.skip(why)
    counting = CountingWorkers()
    with counting:
        yield counting
        assert counting.forked, "no run was forked from the warm worker"
