"""The loop: localize, prompt, generate, guard, verify in a scratch copy, iterate.

Round 1 shows the model the user's code; each later round shows its latest attempt and that
attempt's feedback (CYCLE keeps only the latest). A candidate that makes some failing tests
pass without breaking any passing one becomes the new base, so several bugs can be fixed one
after another. Only a candidate under which every selected test passes is returned as a fix.

`_Session._refine` orchestrates the rounds; each concern lives in its own module: the round
schedule (refine.schedule), the round's target and prompt (refine.focus, with refine.turns,
refine.related and refine.fit), the round's attempts and the copies they avoid
(refine.copies), one candidate from answer to verdict (refine.candidate), verification in the
scratch copy (refine.verify), what a round keeps (refine.round), the fix as file changes
(refine.changes).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cyclefix.errors import CyclefixError
from cyclefix.models.backend import Backend
from cyclefix.refine.agreement import CONFIRM_MAX_TESTS, agreement_note, confirmed
from cyclefix.refine.apply import write_atomic
from cyclefix.refine.candidate import Candidates
from cyclefix.refine.changes import file_change, unified_diff
from cyclefix.refine.check import Selection, find_project_root, limits_for, select
from cyclefix.refine.copies import LONG_ANSWER_CHARS, CopyPlanner, plan_round
from cyclefix.refine.fit import WindowedBackend
from cyclefix.refine.focus import Focus
from cyclefix.refine.held import HeldFix, edits_tested, held_note, passes_by_chance
from cyclefix.refine.partial import partial_answers
from cyclefix.refine.project_index import focus_file
from cyclefix.refine.prompt import RefinePrompt, answer_prefix, copy_continuation
from cyclefix.refine.round import (
    RESAMPLED,
    TESTED,
    Outcome,
    Round,
    State,
    assert_reach,
    base_files,
    improves,
    worse,
)
from cyclefix.refine.sandbox_only import sandbox_only_note
from cyclefix.refine.schedule import (
    STALE_EXTRA_ROUNDS,
    RoundBudget,
    RoundStop,
    round_plan,
    round_share,
)
from cyclefix.refine.source import SourceError, project_file
from cyclefix.refine.token_edits import EDIT_SHARE
from cyclefix.refine.turns import FOCUS_ROUNDS
from cyclefix.refine.types import (
    Attempt,
    FixFinished,
    FixResult,
    FixStatus,
    RefineConfig,
    RefineEvent,
    RoundRecord,
    RoundStarted,
    Target,
)
from cyclefix.refine.variants import VariantTests
from cyclefix.refine.verify import Verifier
from cyclefix.runner import WarmWorkers, scratch_copy
from cyclefix.runner.results import TestRunResult


class _Deadline:
    """One event set by the user's cancel or by the time budget, whichever comes first."""

    def __init__(self, budget: float, user_cancel: threading.Event | None) -> None:
        self.event = threading.Event()
        self.expires = time.monotonic() + budget
        self.user_cancel = user_cancel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cyclefix-deadline", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            if (self.user_cancel is not None and self.user_cancel.is_set()) or self.expired:
                self.event.set()
                return

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.expires

    @property
    def cancelled_by_user(self) -> bool:
        return self.user_cancel is not None and self.user_cancel.is_set()

    def close(self) -> None:
        self._stop.set()


def fix(
    path: Path | Selection,
    backend: Backend,
    *,
    tests: Sequence[str] | None = None,
    config: RefineConfig = RefineConfig(),
    initial_run: TestRunResult | None = None,
    on_event: Callable[[RefineEvent], None] | None = None,
    cancel: threading.Event | None = None,
    warm: WarmWorkers | None = None,
) -> FixResult:
    """Find and verify a fix for the failing tests of `path`; never touches the user's files.
    A `Selection` (refine.check.select, as the check before it used) is reused as is;
    `tests` then do not apply. `warm`: the session's warm workers (runner.warm), whose forks
    run the candidates' tests without starting pytest each time."""
    started = time.monotonic()
    emit = on_event or (lambda _event: None)
    # A missing path raises here, before any result.
    root = path.root if isinstance(path, Selection) else find_project_root(path, tests or ())
    deadline = _Deadline(config.budget_seconds, cancel)
    try:
        selection = (
            path if isinstance(path, Selection) else select(path, tests, config=config, root=root)
        )
        session = _Session(selection, backend, config, emit, deadline, warm)
        result = session.run(initial_run, started)
    except CyclefixError as exc:
        seconds = time.monotonic() - started
        result = FixResult(
            "error", root, (), "", (), initial_run, None, seconds, backend.name, error=str(exc)
        )
    finally:
        deadline.close()
    emit(FixFinished(result))
    return result


def prepare_candidates(selection: Selection, config: RefineConfig, warm: WarmWorkers) -> None:
    """Start the warm worker that `fix(selection, config=config, warm=warm)` will fork its
    candidates from, ahead of the fix (runner.warm): beside the user's run of the tests and
    the model's load, its start does not slow the model's first prompt, whose two threads on
    two cores it would (a worker's kind does not depend on the per-test timeout that the
    user's run may raise)."""
    _verifier(selection, config, lambda event: None, threading.Event(), warm).prepare_candidates()


def _verifier(
    selection: Selection,
    config: RefineConfig,
    emit: Callable[[RefineEvent], None],
    cancel: threading.Event,
    warm: WarmWorkers | None,
) -> Verifier:
    return Verifier(
        selection.root,
        selection.tests,
        selection.explicit,
        limits_for(config),
        selection.python,
        emit,
        cancel,
        config.pass_env,
        warm,
    )


class _Session:
    def __init__(
        self,
        selection: Selection,
        backend: Backend,
        config: RefineConfig,
        emit: Callable[[RefineEvent], None],
        deadline: _Deadline,
        warm: WarmWorkers | None = None,
    ) -> None:
        self.root = selection.root
        self.selection = selection
        self.backend = backend
        self.config = config
        self.emit = emit
        self.deadline = deadline
        self.verifier = _verifier(selection, config, emit, deadline.event, warm)
        self.notes: list[str] = [selection.python.note] if selection.python.note else []
        self.candidates = Candidates(backend, config, self.verifier, emit, deadline.event)
        self.copies = CopyPlanner(backend, config, self.candidates.answers, deadline.event)
        self.focus = Focus(backend, config, focus_file(self.root, selection.path), self.notes)
        self.rounds: list[RoundRecord] = []
        # The failing tests' calls varied, to vote among passing answers (refine.agreement).
        self.variants: VariantTests | None = None
        # Seconds of the user's run of the tests (when this fix ran it) and of localizing.
        self.initial_tests_s = 0.0
        self.localize_s = 0.0

    # -- results ---------------------------------------------------------------------------

    def _result(
        self,
        status: FixStatus,
        initial: TestRunResult | None,
        final: TestRunResult | None,
        started: float,
        state: State | None = None,
        fixed_by: Attempt | None = None,
    ) -> FixResult:
        originals = self.candidates.originals
        changes = tuple(
            file_change(self.root, rel, originals[rel], text)
            for rel, text in sorted(state.sources.items() if state and status == "fixed" else ())
            if text != originals[rel]
        )
        notes = list(self.notes)
        sandbox_only = self.verifier.sandbox_only
        if sandbox_only:
            notes.append(sandbox_only_note(sandbox_only))
        left_out = self.focus.left_out
        if left_out and isinstance(self.backend, WindowedBackend):
            notes.append(
                f"prompts narrowed to fit the model's {self.backend.n_ctx}-token window: "
                f"left out {'; '.join(left_out)}"
            )
        return FixResult(
            status,
            self.root,
            changes,
            "".join(c.diff for c in changes),
            tuple(self.rounds),
            initial,
            final,
            time.monotonic() - started,
            self.backend.name,
            notes=tuple(notes),
            initial_tests_s=self.initial_tests_s,
            localize_s=self.localize_s,
            sandbox_only=sandbox_only,
            fixed_by=fixed_by,
        )

    def _status_when_stopped(self) -> FixStatus:
        return "cancelled" if self.deadline.cancelled_by_user else "not_fixed"

    # -- the loop --------------------------------------------------------------------------

    def run(self, initial: TestRunResult | None, started: float) -> FixResult:
        if initial is None:
            tests_started = time.monotonic()
            initial = self.verifier.run_tests(self.root, self.selection.tests, scratch=False)
            self.initial_tests_s = time.monotonic() - tests_started
        settled = FixResult.without_model(
            initial,
            time.monotonic() - started,
            model=self.backend.name,
            stopped=self._status_when_stopped(),
            notes=tuple(self.notes),
        )
        if settled is not None:
            return dataclasses.replace(settled, initial_tests_s=self.initial_tests_s)
        # What the user's run says of itself (tests not run after hangs, a rerun) is theirs to see.
        self.notes.extend(n for n in initial.notes if n not in self.notes)
        self.verifier.test_order = tuple(t.nodeid for t in initial.tests)
        self.verifier.ran_before = frozenset(
            t.nodeid for t in initial.tests if t.outcome != "skipped"
        )
        raised = self.verifier.fit_timeout_to(initial)
        if raised:
            self.notes.append(raised)
        passed_before = initial.passed_ids
        if self.config.agreement_answers:
            self.variants = VariantTests.of(self.root, initial)
        self.verifier.prepare_candidates()  # warming up while the model reads its first prompt
        with scratch_copy(self.root) as scratch:
            return self._refine(scratch, initial, passed_before, started)

    def _refine(
        self, scratch: Path, initial: TestRunResult, passed_before: frozenset[str], started: float
    ) -> FixResult:
        state = State(run=initial)
        latest: Outcome | None = None
        targets: tuple[Target, ...] = ()
        # Rounds spent on each target without progress: after FOCUS_ROUNDS, the next suspect.
        fruitless: dict[tuple[str, str], int] = {}
        # The rounds asked for, then more while the budget lasts (refine.schedule).
        budget = RoundBudget(self.config)
        index = 0
        # A passing edit that may pass by chance, waiting for the rounds asked for (refine.held).
        held: HeldFix | None = None
        while budget.allows(index + 1):
            if held is not None and index >= self.config.rounds:
                break
            index += 1
            plan = round_plan(index, self.config)
            if self.deadline.event.is_set():
                self.notes.append(
                    "stopped: time budget spent" if self.deadline.expired else "cancelled"
                )
                break
            localizing = time.monotonic()
            chosen = self.focus.next_focus(scratch, initial, state, fruitless, targets, latest)
            self.localize_s += time.monotonic() - localizing
            if chosen is None:
                break
            focus, prompt, latest = chosen
            targets = focus.targets
            self._start_round(scratch, index, targets, plan.temperature, plan.extra)
            if plan.from_intent:
                prompt = dataclasses.replace(prompt, from_scratch=True)
            rnd = Round(index, scratch, targets, state, passed_before)
            round_stop = RoundStop(self.deadline.event, self._round_share(index))
            outcome, attempts = self._plan(rnd, prompt, plan.temperature, round_stop)
            # Tests found to fail only in the sandbox no longer judge progress either (a run
            # that stopped early carries them over as they were in the code it started from).
            state.run = self.verifier.without_sandbox_only(state.run)
            outcome = dataclasses.replace(
                outcome, run=self.verifier.without_sandbox_only(outcome.run)
            )
            self.rounds.append(
                RoundRecord(index, tuple(t.qualname for t in targets), tuple(attempts))
            )
            budget.finished(plan, any(a.verdict in TESTED for a in attempts))
            verdict = outcome.attempt.verdict
            if verdict in TESTED:
                self.focus.pointed = outcome.attempt.points_at
            if verdict == "passed":
                tried = edits_tested(self.rounds)
                by_chance = passes_by_chance(outcome.attempt, tried)
                if by_chance and (held is not None or index < self.config.rounds):
                    if held is None:  # the first such edit stays: the likeliest of them
                        held = HeldFix(outcome, {**state.sources, **outcome.files})
                        self.notes.append(held_note(outcome.attempt, tried))
                    _count_fruitless(fruitless, targets, 1)
                    latest = None  # the next round refines the accepted code, not the edit
                    continue
                outcome = self._agreed(rnd, prompt, outcome)
                state.sources.update(outcome.files)
                state.run = outcome.run
                return self._result(
                    "fixed", initial, outcome.run, started, state, fixed_by=outcome.attempt
                )
            if (
                verdict == "tests_failed"
                and outcome.run is not None
                and improves(outcome.run, state.run)
            ):
                if self._adopt(scratch, state, outcome, fruitless, targets):
                    self.focus.progressed = f"{targets[0].path}::{targets[0].qualname}"
                latest = None
                continue
            # A round its time share cut short: the suspect had its turns (its edits not taken
            # yet wait for its next one).
            _count_fruitless(fruitless, targets, FOCUS_ROUNDS if round_stop.cut else 1)
            if verdict not in (*RESAMPLED, "cancelled"):
                # CYCLE refines the latest attempt, unless it passes fewer tests than the code
                # it was meant to improve: then the next round starts from that code again.
                latest = None if worse(outcome.run, state.run) else outcome
        if held is not None and not self.deadline.cancelled_by_user:
            self.notes.append(
                f"the token edit held in round {held.outcome.attempt.round} is the fix: no answer passed"
            )
            state.sources, state.run = dict(held.sources), held.outcome.run
            return self._result(
                "fixed", initial, state.run, started, state, fixed_by=held.outcome.attempt
            )
        self._stopping_notes(budget)
        return self._result(self._status_when_stopped(), initial, state.run, started)

    def _plan(
        self, rnd: Round, prompt: RefinePrompt, temperature: float, stop: RoundStop
    ) -> tuple[Outcome, list[Attempt]]:
        """The round's attempts (refine.copies.plan_round) and the one that counts."""
        return plan_round(
            prompt,
            temperature,
            attempt=functools.partial(self.candidates.attempt, rnd),
            branches_for=lambda p, t: self.copies.branches_off_copies(
                p, t, rnd.targets, self.candidates.generations
            ),
            config=self.config,
            stop=stop,
            parts_for=lambda outcome: partial_answers(
                base_files(rnd, outcome.files), outcome.files
            ),
            edits_for=lambda p: self.copies.token_edits(p, rnd.targets),
            edit_seconds=max(0.0, EDIT_SHARE * self.config.budget_seconds - self._edit_seconds()),
            progressed=lambda o: (
                o.run is not None
                and o.attempt.verdict == "tests_failed"
                and improves(o.run, rnd.state.run)
            ),
        )

    def _agreed(self, rnd: Round, prompt: RefinePrompt, found: Outcome) -> Outcome:
        """`found`, or the passing answer that more answers agree with (refine.agreement),
        where `found` passes only a few tests; the drawn attempts join the round's record.
        None where an answer takes a minute to write (as a round's extra answers)."""
        variants = self.variants
        if (
            self.config.agreement_answers == 0
            or found.attempt.tests_passed > CONFIRM_MAX_TESTS
            or variants is None
            or len(prompt.faulty_code) > LONG_ANSWER_CHARS
        ):
            return found
        hot = self.config.copy_temperature

        def draw(i: int) -> Outcome:
            """A hot refinement and a rewrite from the intent in turn, leaving a copy of the
            faulty code where the model would write one back (as a round's extra answers)."""
            again = dataclasses.replace(
                prompt, note="", from_scratch=prompt.from_scratch or i % 2 == 1
            )
            branches, forked = self.copies.branches_off_copies(
                again, hot, rnd.targets, self.candidates.generations
            )
            first = branches[0] if branches else ""
            return self.candidates.attempt(rnd, again, hot, first, forked=forked)

        chosen, attempts, result = confirmed(
            found,
            draws=self.config.agreement_answers,
            draw=draw,
            behaviour_of=lambda outcome: variants.behaviour(self.verifier, rnd, outcome.files),
            stop=self.deadline.event.is_set,
        )
        last = self.rounds[-1]
        self.rounds[-1] = dataclasses.replace(last, attempts=(*last.attempts, *attempts))
        if result is not None:
            self.notes.append(agreement_note(rnd.index, result))
        return chosen

    def _round_share(self, index: int) -> float:
        return round_share(index, self.config, max(0.0, self.deadline.expires - time.monotonic()))

    def _edit_seconds(self) -> float:
        """Seconds the fix's token edits have taken so far (their test runs and checks)."""
        edits = (a for r in self.rounds for a in r.attempts if a.token_edit)
        return sum(a.seconds - a.score_s for a in edits)

    def _start_round(
        self,
        scratch: Path,
        index: int,
        targets: tuple[Target, ...],
        temperature: float,
        extra: bool,
    ) -> None:
        """Remember the user's text of the round's files and the code under test (a fork
        never heads back there), and say the round started."""
        for t in targets:
            self.candidates.remember_original(scratch, t.path)
        base = "\n".join(t.source.rstrip() for t in targets) + "\n"
        self.candidates.remember_answer(answer_prefix(base) + copy_continuation(base))
        names = tuple(t.qualname for t in targets)
        total = max(index, self.config.rounds)
        self.emit(RoundStarted(index, total, names, temperature, extra=extra))

    @staticmethod
    def _adopt(
        scratch: Path,
        state: State,
        outcome: Outcome,
        fruitless: dict[tuple[str, str], int],
        targets: tuple[Target, ...],
    ) -> bool:
        """Progress without regressions: keep it (in the scratch copy too) and go on from there.
        True when more tests pass than before."""
        assert state.run is not None and outcome.run is not None
        more_pass = len(outcome.run.passed) > len(state.run.passed)
        state.sources.update(outcome.files)
        for rel, text in outcome.files.items():
            write_atomic(project_file(scratch, rel), text)
        state.run = outcome.run
        if more_pass:
            fruitless.clear()
        else:
            # Only further inside a failing test: weak progress (`return x is not None`
            # gets past `assert f(a)` to fail `assert not f(b)`), so the turn counts.
            _count_fruitless(fruitless, targets)
        return more_pass

    def _stopping_notes(self, budget: RoundBudget) -> None:
        extra = sum(1 for r in self.rounds if r.index > self.config.rounds)
        if extra:
            self.notes.append(
                f"went on after the {self.config.rounds} rounds asked for: "
                f"{extra} more within the time budget"
            )
        if budget.gave_up:
            self.notes.append(
                f"stopped: {STALE_EXTRA_ROUNDS} extra rounds in a row brought no new candidate"
            )


def _count_fruitless(
    fruitless: dict[tuple[str, str], int], targets: tuple[Target, ...], rounds: int = 1
) -> None:
    for t in targets:
        key = (t.path, t.qualname)
        fruitless[key] = fruitless.get(key, 0) + rounds


__all__ = ["SourceError", "assert_reach", "fix", "unified_diff"]
