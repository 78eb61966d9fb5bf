"""A task's work folder: the project the refine loop sees, and the scoring copy it never sees.

<work>/project/   solution.py + test_visible.py (or the folder task's files, hidden tests
                  left out): what `check` and `fix` run on
<work>/score/     the project (with a candidate's files) plus the hidden tests: scoring only
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from cyclefix.bench.folder import HIDDEN_DIR
from cyclefix.bench.tasks import SOLUTION_FILE, VISIBLE_TEST_FILE, BenchTask
from cyclefix.errors import CyclefixError
from cyclefix.refine import RefineConfig, TestRunResult, check
from cyclefix.runner import Confinement
from cyclefix.runner.project import CONFIG_FILES
from cyclefix.runner.testfiles import SKIP_DIRS

# Marks the project root for pytest and for find_project_root, so an out dir inside another
# project (this repository, say) never makes the tests run against that project.
ROOT_MARKER = "pytest.ini"


# Called after each scoring run with the workspace, the files changed (None: the project as
# prepared, i.e. round 0) and the run; lets a suite read more than the harness's pass/fail.
ScoreListener = Callable[["TaskWorkspace", Mapping[str, str] | None, TestRunResult], None]
_listeners: list[ScoreListener] = []
_listeners_lock = threading.Lock()


@contextlib.contextmanager
def score_listener(listener: ScoreListener) -> Iterator[None]:
    """Call `listener` after every TaskWorkspace.score while the block runs."""
    with _listeners_lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _listeners_lock:
            _listeners.remove(listener)


def _ignore(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in SKIP_DIRS}


class TaskWorkspace:
    def __init__(self, task: BenchTask, root: Path) -> None:
        self.task = task
        self.root = root
        self.project = root / "project"
        self.score_dir = root / "score"

    @property
    def has_visible_tests(self) -> bool:
        return self.task.kind == "folder" or bool(self.task.visible_tests)

    def prepare(self, solution: str | None) -> Path:
        """Write the project the loop works on; returns its folder."""
        if self.project.exists():
            shutil.rmtree(self.project)
        if self.task.kind == "folder":
            if self.task.source_dir is None:
                raise CyclefixError(f"task {self.task.task_id} has no project folder")

            def ignore(directory: str, names: list[str]) -> set[str]:
                skip = _ignore(directory, names)
                if Path(directory).resolve() == self.task.source_dir:
                    skip |= {HIDDEN_DIR} & set(names)
                return skip

            shutil.copytree(self.task.source_dir, self.project, ignore=ignore, symlinks=True)
        else:
            if solution is None:
                raise CyclefixError(f"task {self.task.task_id} needs a solution to write")
            self.project.mkdir(parents=True)
            (self.project / SOLUTION_FILE).write_text(solution, encoding="utf-8")
            if self.task.visible_tests:
                (self.project / VISIBLE_TEST_FILE).write_text(
                    self.task.visible_tests, encoding="utf-8"
                )
        if not any((self.project / m).exists() for m in (*CONFIG_FILES, "conftest.py")):
            (self.project / ROOT_MARKER).write_text("[pytest]\n", encoding="utf-8")
        return self.project

    def check_visible(self, config: RefineConfig) -> TestRunResult:
        return check(self.project, config=config)

    def score(self, changed: Mapping[str, str] | None = None) -> TestRunResult:
        """Run the hidden tests on the project with `changed` (relative path -> text) applied."""
        if self.score_dir.exists():
            shutil.rmtree(self.score_dir)
        shutil.copytree(self.project, self.score_dir, ignore=_ignore, symlinks=True)
        for rel, text in {**self.task.hidden_files, **(changed or {})}.items():
            target = self.score_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        if self.task.kind == "generate":
            # Only the hidden tests score generate tasks (visible ones are examples of them).
            (self.score_dir / VISIBLE_TEST_FILE).unlink(missing_ok=True)
        # No named hidden tests: the copy's whole tree (hidden_tests/ lies outside testpaths).
        tests = [str(self.score_dir / t) for t in self.task.hidden_tests] or [str(self.score_dir)]
        config = RefineConfig(
            per_test_timeout=self.task.hidden_timeout,
            run_timeout=max(120.0, 4 * self.task.hidden_timeout),
        )
        # The model's code runs here too: confined to the copy, like a candidate.
        result = check(self.score_dir, tests, config=config, confinement=Confinement(self.project))
        with _listeners_lock:
            listeners = list(_listeners)
        for listener in listeners:
            listener(self, changed, result)
        return result

    def changed_files(self, fixed: Mapping[Path, str]) -> dict[str, str]:
        """A fix's files (absolute paths in the project) as project-relative paths."""
        out: dict[str, str] = {}
        project = self.project.resolve()
        for path, text in fixed.items():
            try:
                out[path.resolve().relative_to(project).as_posix()] = text
            except ValueError as exc:
                raise CyclefixError(f"a fix changed {path}, outside the task project") from exc
        return out

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
