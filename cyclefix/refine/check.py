"""Run the tests that matter for a file or project, on the user's own files.

`select` works out once what a check and the fix after it share (the project root, the tests,
the interpreter); both take its `Selection` in place of a path and reuse it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cyclefix.refine.localize import localize
from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.types import RefineConfig, RefineEvent, Target, TestsFinished, TestsStarted
from cyclefix.runner import (
    Confinement,
    ProjectPython,
    SandboxLimits,
    WarmWorkers,
    find_project_python,
    find_project_root,
    order_failing_first,
    run_tests,
    select_tests,
)
from cyclefix.runner.results import TestCaseResult, TestRunResult

__all__ = [
    "Selection",
    "check",
    "find_project_root",
    "limits_for",
    "select",
    "selection_for",
    "suspects",
]


# The user's own run stops after this many timed-out tests: a bug that makes a loop endless
# hangs most tests, and a fix needs one failure to start from, not a timeout for every case.
USER_RUN_MAX_HANGS = 3


def limits_for(config: RefineConfig) -> SandboxLimits:
    return SandboxLimits(
        per_test_timeout=config.per_test_timeout,
        run_timeout=config.run_timeout,
        max_hangs=USER_RUN_MAX_HANGS,
    )


def selection_for(root: Path, path: Path, tests: Sequence[str] | None) -> tuple[str, ...]:
    """Explicit tests win; else the tests that import the changed file; else the whole suite."""
    changed = [path.resolve()] if path.is_file() else []
    return select_tests(root, changed, tests or ())


@dataclass(frozen=True)
class Selection:
    """What to run for a path, worked out once for its check and its fix."""

    path: Path  # the file or folder the user named
    root: Path  # its project root
    tests: tuple[str, ...]  # the pytest arguments that select its tests
    explicit: bool  # the tests were named (--tests), not found from the path
    python: ProjectPython  # the interpreter that runs them


def select(
    path: Path,
    tests: Sequence[str] | None = None,
    *,
    config: RefineConfig = RefineConfig(),
    root: Path | None = None,
) -> Selection:
    """The project root of `path` (unless known: `root`), the tests that matter for it
    (`selection_for`) and the Python that runs them."""
    root = root or find_project_root(path, tests or ())
    return Selection(
        path,
        root,
        selection_for(root, path, tests),
        bool(tests),
        find_project_python(root, config.python),
    )


def check(
    path: Path | Selection,
    tests: Sequence[str] | None = None,
    *,
    config: RefineConfig = RefineConfig(),
    previously_failing: Sequence[str] = (),
    on_event: Callable[[RefineEvent], None] | None = None,
    cancel: threading.Event | None = None,
    confinement: Confinement | None = None,
    warm: WarmWorkers | None = None,
) -> TestRunResult:
    """One traced run of the tests that matter for `path` (a `Selection` is reused as is;
    `tests` then do not apply), the previously failing first; `warm`: the session's warm
    workers (runner.warm)."""
    chosen = path if isinstance(path, Selection) else select(path, tests, config=config)
    root, python = chosen.root, chosen.python
    selection = order_failing_first(chosen.tests, previously_failing)
    if on_event:
        on_event(TestsStarted(root, selection, scratch=False))
    # Traced: what each test executed localizes the bug (refine.spectrum).
    run = run_tests(
        root,
        selection,
        limits=limits_for(config),
        python=python.python,
        cancel=cancel,
        trace=True,
        pass_env=config.pass_env,
        confinement=confinement,
        warm=warm,
    )
    if python.note:
        run = dataclasses.replace(run, notes=(*run.notes, python.note))
    if on_event:
        on_event(TestsFinished(run, scratch=False))
    return run


def suspects(
    run: TestRunResult, failures: Sequence[TestCaseResult] | None = None
) -> tuple[Target, ...]:
    """The functions the failures of `run` point at, most likely first (by what its tests
    executed when `run` was traced). `failures`: only these of its failing tests (one test's
    suspects), its passing tests still counting for the spectrum."""
    chosen = run.failures if failures is None else tuple(failures)
    if not chosen:
        return ()
    # The other failing tests are neither this failure's evidence nor passing tests.
    ids = {case.nodeid for case in chosen}
    spectrum = dataclasses.replace(
        run, tests=tuple(t for t in run.tests if t.ok or t.nodeid in ids)
    )
    return localize(ProjectIndex(run.root), chosen, spectrum=spectrum).targets
