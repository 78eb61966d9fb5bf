"""Refinement in the server: the model (loaded once, one generation at a time) fixes the
failing tests of a job's run; a verified fix is kept for the text it was computed from."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from pathlib import Path
from typing import Any

from cyclefix.errors import CyclefixError
from cyclefix.refine import (
    AttemptFinished,
    FixResult,
    RefineEvent,
    Selection,
    TestRunResult,
    fix,
)
from cyclefix.server.core import LspJob
from cyclefix.server.fix_actions import FixActions, fix_locations
from cyclefix.server.progress import event_text, run_status_line
from cyclefix.server.state import ProjectState
from cyclefix.session.fixes import VerifiedFix
from cyclefix.session.models import install_hint
from cyclefix.session.settings import Settings

logger = logging.getLogger(__name__)


class Refinement(FixActions):
    async def _refine(
        self,
        job: LspJob,
        state: ProjectState,
        settings: Settings,
        chosen: Selection,
        run: TestRunResult,
        versions: dict[Path, int],
    ) -> FixResult | None:
        assert job.progress is not None
        if self._refining is not None and self._refining is not job:
            self._refining.cancel.set()  # one generation at a time: the latest save wins
        self._refining = job
        job.progress.report(f"{run_status_line(run)}; loading model {settings.model}")
        on_event = self.threadsafe(functools.partial(self._on_event, job))
        state.refinements += 1
        outcome = await self.in_thread(
            self._fix_with_model,
            settings.model,
            chosen,
            hardware=(settings.threads, settings.gpu_layers),
            config=settings.refine_config(seed=job.seed),
            initial_run=run,
            on_event=on_event,
            cancel=job.cancel,
        )
        if outcome is None:
            return None
        if isinstance(outcome, str):  # the model could not load
            if settings.model not in self._model_warned:
                self._model_warned.add(settings.model)
                self.warn(outcome, once=False)
            job.progress.end(f"{run_status_line(run)}; no model: {outcome}")
            return None
        result = outcome
        if job.cancel.is_set() or result.status == "cancelled":
            return result
        if result.status != "fixed":
            detail = result.error or f"no candidate passed in {len(result.rounds)} round(s)"
            self.log(f"no verified fix for {chosen.path.name}: {detail}")
            job.progress.end(f"no verified fix: {detail}")
            return result
        verified = VerifiedFix(
            result=result,
            versions={
                p: v for p, v in versions.items() if p in {c.path.resolve() for c in result.changes}
            },
            locations=await asyncio.to_thread(fix_locations, result),
        )
        if self.is_stale(verified):
            self.log("verified fix discarded: the file changed while refining")
            job.progress.end("fix discarded: the file changed meanwhile")
            return result
        state.fix = verified
        self.publish(state)
        self.log(f"verified fix {verified.fix_id}: {verified.passed} tests pass")
        job.progress.end(f"verified fix available ({verified.passed} tests pass)")
        return result

    def _fix_with_model(
        self,
        spec: str,
        chosen: Selection,
        *,
        cancel: threading.Event,
        hardware: tuple[int | None, int | None] = (None, None),
        **kwargs: Any,
    ) -> FixResult | str | None:
        """In a worker thread: load the model if needed and refine.

        A load error comes back as its message; None when cancelled before starting.
        """
        # Wait for the model, giving up once this job is cancelled.
        with self.models.hold(cancel) as held:
            if not held:
                return None
            try:
                backend = self.models.get(spec, *hardware)  # (threads, gpuLayers)
            except CyclefixError as exc:
                return install_hint(spec, str(exc))
            # The check's selection (root, tests, interpreter) is the refinement's too.
            return fix(chosen, backend, cancel=cancel, warm=self.warm, **kwargs)

    def _on_event(self, job: LspJob, event: RefineEvent) -> None:
        if isinstance(event, AttemptFinished):
            attempt = event.attempt
            logger.info(
                "round %d attempt: %s (%d/%d tests) %s",
                attempt.round,
                attempt.verdict,
                attempt.tests_passed,
                attempt.tests_total,
                attempt.detail,
            )
        if job.progress is None or job.cancel.is_set():
            return
        shown = event_text(event)
        if shown is not None:
            job.progress.report(*shown)
