"""Tests on save: a save (or a command) schedules a job for its project; after the debounce
the tests of the saved module run, their failures become diagnostics, and a refinement may
follow (autoRefine)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterable
from pathlib import Path

from cyclefix.config import tests_under_root
from cyclefix.errors import CyclefixError
from cyclefix.refine import check, prepare_candidates, select
from cyclefix.server.core import LspJob, RefineMode
from cyclefix.server.diagnostics import syntax_problem
from cyclefix.server.progress import JobProgress, run_status_line
from cyclefix.server.refinement import Refinement
from cyclefix.session.fixes import read_disk
from cyclefix.session.ledger import localize

logger = logging.getLogger(__name__)


class TestsOnSave(Refinement):
    __test__ = False  # not a pytest test class, though its name starts with "Test"

    def schedule(
        self,
        root: Path,
        paths: Iterable[Path],
        *,
        debounce: float,
        refine: RefineMode,
        seed: int | None = 0,
    ) -> LspJob:
        """Start a job for `root`, cancelling the one in flight (latest save wins)."""
        self.board.add_pending(root, paths)
        old = self.board.current(root)
        if old is not None:
            if old.refine == "always" and refine == "auto":
                refine = "always"  # a save during an explicit refine keeps it explicit
            self.board.add_pending(root, old.paths)
        job = LspJob(key=root, debounce=debounce, refine=refine, seed=seed)
        job.tests_done = self.loop.create_future()
        job.finished = self.loop.create_future()
        self.board.start(job, "superseded by a newer save")
        job.task = self.loop.create_task(self._run_job(job))
        return job

    async def _run_job(self, job: LspJob) -> None:
        try:
            if job.debounce > 0:
                await asyncio.sleep(job.debounce)
            job.paths = self.board.take_pending(job.root)
            await self._job_body(job)
        except asyncio.CancelledError:
            job.cancel.set()
            raise
        except CyclefixError as exc:
            self.warn(str(exc), once=False)
        except Exception:
            logger.exception("job for %s failed", job.root)
            self.warn(f"internal error while testing {job.root}; see the log", once=False)
        finally:
            if job.progress is not None:
                job.progress.end("cancelled" if job.cancel.is_set() else "done")
            for future in (job.tests_done, job.finished):
                if future is not None and not future.done():
                    future.set_result(None)
            self.board.finish(job)
            if self._refining is job:
                self._refining = None

    async def _job_body(self, job: LspJob) -> None:
        root = job.root
        state = self.state(root)
        settings = self.settings_for(root)
        python_paths = sorted(p for p in job.paths if p.suffix == ".py")
        # A syntax error in a saved file: show it, skip the run and the refinement.
        for path in python_paths:
            state.syntax_problems.pop(path, None)
            text = read_disk(path)
            if text is not None and (problem := syntax_problem(path, text)) is not None:
                state.syntax_problems[path] = problem
        broken = [p for p in python_paths if p in state.syntax_problems]
        if broken:
            self._drop_stale_fix(state)
            self.publish(state)
            names = ", ".join(p.name for p in broken)
            self.log(f"syntax error in {names}: tests not run")
            return
        target = python_paths[0] if len(python_paths) == 1 else root
        # Settings files name tests from the project root.
        tests = tests_under_root(root, settings.tests) or None
        versions = self._open_versions(root)
        job.progress = JobProgress(self)
        await job.progress.begin("cyclefix", f"running tests of {target.name or root}")
        on_event = self.threadsafe(functools.partial(self._on_event, job))
        config = settings.refine_config()
        # Worked out once (root, tests, interpreter): the refinement reuses it.
        chosen = await self.in_thread(select, target, tests, config=config)
        refine = job.refine == "always" or (job.refine == "auto" and settings.auto_refine)
        if refine:  # a fix's candidates would fork from it: it warms up beside this run
            prepare_candidates(chosen, config, self.warm)
        run = await self.in_thread(
            check,
            chosen,
            config=config,
            previously_failing=state.failing_nodeids(),
            on_event=on_event,
            cancel=job.cancel,
            warm=self.warm,
        )
        if run.cancelled or job.cancel.is_set():
            return
        localized = await self.in_thread(localize, run)
        state.ledger.record(run, localized)
        self._drop_stale_fix(state)
        if state.fix is not None and any(p not in state.fix.paths for p in job.paths):
            state.fix = None  # another file changed (a test, a helper): verified against the past
        if state.fix is not None and run.all_passed and not run.collection_errors:
            state.fix = None  # the tests pass now: nothing left to fix
        self.publish(state)
        summary = run_status_line(run)
        self.log(f"{root.name}: {summary}")
        if job.tests_done is not None and not job.tests_done.done():
            job.tests_done.set_result(run)
        if not refine or not run.failures or run.collection_errors:
            job.progress.end(summary)
            return
        result = await self._refine(job, state, settings, chosen, run, versions)
        if job.finished is not None and not job.finished.done():
            job.finished.set_result(result)

    def _open_versions(self, root: Path) -> dict[Path, int]:
        out: dict[Path, int] = {}
        for path in self.uris:
            doc = self.document(path) if root in path.parents else None
            if doc is not None and doc.version is not None:
                out[path] = doc.version
        return out
