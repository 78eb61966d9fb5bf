"""Probes of candidate runs, both ways: a fresh pytest process and a fork of a warm worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cyclefix.runner.warm import WarmRun, WarmWorkers, usable


class CountingWorkers(WarmWorkers):
    """Warm workers that count the runs they forked: a probe meant for the warm path must not
    pass because its runs quietly started cold."""

    def __init__(self) -> None:
        super().__init__()
        self.forked = 0

    def start(self, *args: Any, **kwargs: Any) -> WarmRun | None:
        run = super().start(*args, **kwargs)
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
