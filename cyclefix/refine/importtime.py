"""Errors raised while importing project code are bugs to fix, not the end of a run.

A test module whose import fails because a project (non-test) module raised at import time (a
`NameError` at module level, a bad default argument) is collected by no one. When the runner
recorded the exception and its project frames, the loop refines that code as it would for a
failing test, the import-time exception as the feedback. Errors in the test files themselves,
in conftest.py or in configuration stay errors.
"""

from __future__ import annotations

from collections.abc import Sequence

from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.source import module_target
from cyclefix.refine.types import Target
from cyclefix.runner.results import CollectionError, TestCaseResult, TestRunResult
from cyclefix.runner.testfiles import is_test_code


def is_project_import_error(error: CollectionError) -> bool:
    """The import raised in a project file that is not a test: a bug the loop can refine."""
    return error.exc_type is not None and any(
        not is_test_code(frame.path) for frame in error.project_frames
    )


def import_failure(error: CollectionError) -> TestCaseResult | None:
    """A collection error in project code as a failing "test": its node id is the test module
    that could not be imported, its frames the project frames of the exception."""
    if not is_project_import_error(error):
        return None
    frames = tuple(f for f in error.project_frames if not is_test_code(f.path))
    module = (error.nodeid or error.path).split("::", 1)[0]
    return TestCaseResult(
        nodeid=module,
        outcome="error",
        path=module if is_test_code(module) else None,
        exc_type=error.exc_type,
        exc_message=exception_message(error),
        project_frames=frames,
    )


def exception_message(error: CollectionError) -> str:
    """The exception's own message from pytest's report (`E   NameError: name ...`), else the
    report's first line."""
    kind = error.exc_type or ""
    for line in reversed(error.message.splitlines()):
        text = line.strip().removeprefix("E").strip()
        if kind and text.startswith(f"{kind}:"):
            return text.removeprefix(f"{kind}:").strip()
    return next((ln.strip() for ln in error.message.splitlines() if ln.strip()), "")


def failures_with_import_errors(run: TestRunResult) -> tuple[TestCaseResult, ...]:
    """The run's failing tests, then its import-time errors in project code as failures."""
    imported = (import_failure(err) for err in run.collection_errors)
    return run.failures + tuple(case for case in imported if case is not None)


def blocking_collection_error(run: TestRunResult) -> CollectionError | None:
    """The first collection error the loop cannot refine (a test file's, a conftest's, one
    without project frames); None when every one is an import-time bug in project code."""
    return next((e for e in run.collection_errors if not is_project_import_error(e)), None)


def import_time_targets(index: ProjectIndex, failures: Sequence[TestCaseResult]) -> list[Target]:
    """Where import-time failures raised: the function holding the deepest project frame, or
    the whole module when the error is in module-level code."""
    found: list[Target] = []
    for case in failures:
        # Only the failures made of collection errors: their node id names a test module.
        if "::" in case.nodeid or not case.project_frames:
            continue
        frame = case.project_frames[-1]
        target = index.target_at(frame.path, frame.line)
        if target is None:
            source = index.source(frame.path)
            target = module_target(frame.path, source) if source is not None else None
        if target is not None and all(
            (t.path, t.qualname) != (target.path, target.qualname) for t in found
        ):
            found.append(target)
    return found
