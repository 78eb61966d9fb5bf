"""Suite-wide settings: the pytest children that tests start load only the plugins they need."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# pytest's own switch, passed to every child by the runner's allowlist (the PYTEST_ prefix).
AUTOLOAD = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"


@pytest.fixture(scope="session", autouse=True)
def _children_without_plugins() -> Iterator[None]:
    """Children skip entry-point plugins: 1.6-3.4 s of imports per start, which no fixture
    project uses; the runner still passes its own plugin with `-p`.

    A fixture, not an import-time setting: xdist workers started by this process must still
    load theirs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(AUTOLOAD, "1")
        yield


@pytest.fixture(autouse=True)
def _children_with_plugins(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test marked `child_plugins` runs its children as a user's run does, plugins and all."""
    if request.node.get_closest_marker("child_plugins") is None:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(AUTOLOAD, raising=False)
        yield


@pytest.fixture
def without_operator_edits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A round's answers and forks alone: no operator edit fixes the bug before them (tests
    of the fork mechanics, whose one-token bugs an operator edit would undo first)."""
    from cyclefix.refine import copies

    monkeypatch.setattr(copies, "operator_edits", lambda *args, **kwargs: [])


def pytest_configure(config: pytest.Config) -> None:
    """An xdist worker keeps to its share of the CPUs, and so do the llama.cpp threads and the
    pytest children it starts: llama.cpp sizes its thread pool from this affinity, and two
    models spinning on the same two cores slow each other down several times over."""
    worker, count = (
        os.environ.get("PYTEST_XDIST_WORKER"),
        os.environ.get("PYTEST_XDIST_WORKER_COUNT"),
    )
    if worker is None or count is None or not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    share = len(cpus) // int(count)
    if share >= 1:
        index = int(worker.removeprefix("gw"))
        os.sched_setaffinity(0, cpus[index * share : (index + 1) * share])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with real-model tests first: the longest start early, so xdist's workers end
    together instead of one waiting on the other's last model test."""
    with_model = {item.path for item in items if item.get_closest_marker("model") is not None}
    items.sort(key=lambda item: item.path not in with_model)


@pytest.fixture
def runtime_defences_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hostile answers reach the tests: the screen that turns them away first
    (refine.tampering) is off, so what stops them when they run is what is tested."""
    from cyclefix.refine import candidate

    monkeypatch.setattr(candidate, "tampering", lambda before, after: [])


@pytest.fixture
def without_answer_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """The acts of the answer's lines are not watched in its test process
    (runner/answer_guard.py): the layer after it, what the test checks, must stop them."""
    from cyclefix.refine import verify

    monkeypatch.setattr(verify, "written_lines", lambda before, after: ())
