"""Run the user's tests safely and say what failed.

find_project_root(path)              the folder pytest runs in
select_tests(root, changed, explicit) which tests (pytest args); () is the whole suite
order_failing_first(tests, failing)  the same selection, previously failing tests first
with_class_predecessors(ids, order)  those tests and the ones of their classes run before them
run_tests(root, tests, ...)          pytest in a sandbox -> TestRunResult
Confinement(original)                run_tests(confinement=...): a scratch copy's run, confined
find_project_python(root)            the interpreter for a project's tests (its own venv)
scratch_copy(root)                   a throwaway copy of the project to run candidates in
feedback_text(case)                  the CYCLE feedback for one failing test
"""

from cyclefix.runner.feedback import bound_text, feedback_text, run_summary
from cyclefix.runner.interpreter import ProjectPython, find_project_python
from cyclefix.runner.launch import Confinement
from cyclefix.runner.project import find_project_root
from cyclefix.runner.results import (
    Callee,
    CollectionError,
    Frame,
    Outcome,
    RunPhases,
    TestCaseResult,
    TestRunResult,
)
from cyclefix.runner.run import run_tests
from cyclefix.runner.sandbox import SandboxLimits
from cyclefix.runner.scratch import scratch_copy
from cyclefix.runner.select import order_failing_first, select_tests, with_class_predecessors
from cyclefix.runner.warm import WarmWorkers

__all__ = [
    "Callee",
    "CollectionError",
    "Confinement",
    "Frame",
    "Outcome",
    "ProjectPython",
    "RunPhases",
    "SandboxLimits",
    "TestCaseResult",
    "TestRunResult",
    "WarmWorkers",
    "bound_text",
    "feedback_text",
    "find_project_python",
    "find_project_root",
    "order_failing_first",
    "run_summary",
    "run_tests",
    "scratch_copy",
    "select_tests",
    "with_class_predecessors",
]
