"""The loop: localize, prompt, generate, guard, verify in a scratch copy, iterate.

Round 1 shows the model the user's code; each later round shows its latest attempt and that
attempt's feedback (CYCLE keeps only the latest). A candidate that makes some failing tests
pass without breaking any passing one becomes the new base, so several bugs can be fixed one
after another. Only a candidate under which every selected test passes is returned as a fix.

`_Session._refine` orchestrates the rounds; each concern lives in its own module: the round
schedule (refine.schedule), whose turn it is (refine.turns), the failing path across files
(refine.related), prompts fitted to the model's window (refine.fit), the copy-avoidance
planner (refine.copies), verification in the scratch copy (refine.verify), import-time errors
(refine.importtime).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import threading
import time
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path

from cyclefix.errors import CyclefixError
from cyclefix.models.backend import Backend, GenerationOptions
from cyclefix.refine.apply import write_atomic
from cyclefix.refine.check import limits_for, selection_for
from cyclefix.refine.copies import FORKS_PER_COPY, CopyPlanner
from cyclefix.refine.fit import (
    FittedPrompt,
    WindowedBackend,
    fit_prompt,
    function_instead_of_module,
)
from cyclefix.refine.fork import branch_prefixes
from cyclefix.refine.guard import new_undefined_names, stdlib_imports_for
from cyclefix.refine.importtime import (
    blocking_collection_error,
    failures_with_import_errors,
    import_failure,
)
from cyclefix.refine.localize import (
    Localization,
    ProjectIndex,
    focus_file,
    localize,
)
from cyclefix.refine.parse import extract_code
from cyclefix.refine.probe import with_probe
from cyclefix.refine.prompt import (
    COPY_NOTE,
    RefinePrompt,
    answer_prefix,
    build_refine_messages,
    copy_continuation,
    other_failure_names,
)
from cyclefix.refine.related import executed_neighbours, path_functions
from cyclefix.refine.schedule import STALE_EXTRA_ROUNDS, RoundBudget, round_plan
from cyclefix.refine.source import (
    MODULE_QUALNAME,
    SourceError,
    called_functions,
    has_docstring,
    module_context,
    module_description,
    normalized_code,
    read_source,
)
from cyclefix.refine.splice import SpliceError, splice_candidate, with_imports
from cyclefix.refine.turns import (
    choose_focus,
    pointed_target,
    with_import_time_targets,
)
from cyclefix.refine.types import (
    Attempt,
    AttemptFinished,
    FileChange,
    FixFinished,
    FixResult,
    FixStatus,
    RefineConfig,
    RefineEvent,
    RoundRecord,
    RoundStarted,
    Target,
    TextGenerated,
    Verdict,
)
from cyclefix.refine.verify import Verifier
from cyclefix.runner import (
    find_project_python,
    find_project_root,
    scratch_copy,
)
from cyclefix.runner.feedback import feedback_text
from cyclefix.runner.results import TestCaseResult, TestRunResult
from cyclefix.runner.testfiles import is_test_code

# Answers end at the closing fence, or where a small model starts writing tests or a demo at
# the top level after the function; the chat template's end of turn also stops them.
STOP_SEQUENCES = ("\n```\n", "\ndef test_", "\nif __name__", "\nassert ", "\nprint(")
# Verdicts of answers that never reached the tests: the round samples again.
_RESAMPLED = ("copy", "duplicate", "no_code", "wrong_target", "syntax_error")
# Verdicts of candidates the tests judged.
_TESTED = ("passed", "tests_failed", "regressed")


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


@dataclass
class _State:
    """The accepted state of the project in the scratch copy: user's code plus adopted progress."""

    sources: dict[str, str] = field(default_factory=dict)  # rel path -> text (files touched)
    run: TestRunResult | None = None


@dataclass(frozen=True)
class _Round:
    """What every attempt of one round shares."""

    index: int  # 1-based
    scratch: Path  # the scratch copy the candidates run in
    targets: tuple[Target, ...]  # the functions the round rewrites
    state: _State  # the accepted state the round starts from
    passed_before: set[str]  # tests that passed in the user's run: none may break


@dataclass(frozen=True)
class _Outcome:
    attempt: Attempt
    files: dict[str, str]  # spliced files of this candidate (empty if never spliced)
    run: TestRunResult | None
    failing: TestCaseResult | None  # first failing test of its run, for the next round's feedback
    # A copy's answer prefixes that leave it where the model was least sure (refine.fork).
    branches: tuple[str, ...] = ()


def fix(
    path: Path,
    backend: Backend,
    *,
    tests: Sequence[str] | None = None,
    config: RefineConfig = RefineConfig(),
    initial_run: TestRunResult | None = None,
    on_event: Callable[[RefineEvent], None] | None = None,
    cancel: threading.Event | None = None,
) -> FixResult:
    """Find and verify a fix for the failing tests of `path`; never touches the user's files."""
    started = time.monotonic()
    emit = on_event or (lambda _event: None)
    root = find_project_root(path, tests or ())
    deadline = _Deadline(config.budget_seconds, cancel)
    try:
        session = _Session(root, path, backend, tests, config, emit, deadline)
        result = session.run(initial_run, started)
    except CyclefixError as exc:
        result = FixResult(
            "error",
            root,
            (),
            "",
            (),
            initial_run,
            None,
            time.monotonic() - started,
            backend.name,
            error=str(exc),
        )
    finally:
        deadline.close()
    emit(FixFinished(result))
    return result


class _Session:
    def __init__(
        self,
        root: Path,
        path: Path,
        backend: Backend,
        tests: Sequence[str] | None,
        config: RefineConfig,
        emit: Callable[[RefineEvent], None],
        deadline: _Deadline,
    ) -> None:
        self.root = root
        self.backend = backend
        self.config = config
        self.emit = emit
        self.deadline = deadline
        self.selection = selection_for(root, path, tests)
        self.focus = focus_file(root, path)
        self.python = find_project_python(root, config.python)
        self.verifier = Verifier(
            root,
            self.selection,
            bool(tests),
            limits_for(config),
            self.python,
            emit,
            deadline.event,
            config.pass_env,
        )
        self.originals: dict[str, str] = {}  # the user's text of every file we touched
        self.tried: set[str] = set()
        # Answers written so far, and the code under test as one: a fork never heads back there.
        self.answers: list[str] = []
        self.copies = CopyPlanner(backend, config, self.answers, deadline.event)
        self.generations = 0
        # Suspects whose prompt does not fit the model's window, even narrowed: never chosen.
        self.unfit: set[tuple[str, str]] = set()
        # Where the latest tested candidate's failure pointed ("path::qualname"), if elsewhere.
        self.pointed = ""
        # What prompts left out to fit the model's window, for the notes.
        self.left_out: list[str] = []
        self.rounds: list[RoundRecord] = []
        self.notes: list[str] = []
        # Seconds of the user's run of the tests (when this fix ran it) and of localizing.
        self.initial_tests_s = 0.0
        self.localize_s = 0.0
        if self.python.note:
            self.notes.append(self.python.note)

    # -- results ---------------------------------------------------------------------------

    def _result(
        self,
        status: FixStatus,
        initial: TestRunResult | None,
        final: TestRunResult | None,
        started: float,
        state: _State | None = None,
        error: str | None = None,
    ) -> FixResult:
        changes: list[FileChange] = []
        if status == "fixed" and state is not None:
            for rel, text in sorted(state.sources.items()):
                original = self.originals[rel]
                if text != original:
                    changes.append(
                        FileChange(
                            self.root / rel, original, text, unified_diff(rel, original, text)
                        )
                    )
        notes = list(self.notes)
        if self.left_out and isinstance(self.backend, WindowedBackend):
            notes.append(
                f"prompts narrowed to fit the model's {self.backend.n_ctx}-token window: "
                f"left out {'; '.join(self.left_out)}"
            )
        return FixResult(
            status,
            self.root,
            tuple(changes),
            "".join(c.diff for c in changes),
            tuple(self.rounds),
            initial,
            final,
            time.monotonic() - started,
            self.backend.name,
            error,
            tuple(notes),
            initial_tests_s=self.initial_tests_s,
            localize_s=self.localize_s,
        )

    def _status_when_stopped(self) -> FixStatus:
        return "cancelled" if self.deadline.cancelled_by_user else "not_fixed"

    # -- the loop --------------------------------------------------------------------------

    def run(self, initial: TestRunResult | None, started: float) -> FixResult:
        if initial is None:
            tests_started = time.monotonic()
            initial = self.verifier.run_tests(self.root, self.selection, scratch=False)
            self.initial_tests_s = time.monotonic() - tests_started
        # What the user's run says of itself (tests not run after hangs, a rerun) is theirs to see.
        self.notes.extend(n for n in initial.notes if n not in self.notes)
        if initial.cancelled:
            return self._result(self._status_when_stopped(), initial, None, started)
        err = blocking_collection_error(initial)
        if err is not None:
            where = f"{err.path}:{err.line}" if err.line else err.path
            return self._result(
                "error",
                initial,
                None,
                started,
                error=f"tests cannot be collected: {where}: {first_line(err.message)}",
            )
        if not initial.tests and not initial.collection_errors:
            return self._result(
                "error", initial, None, started, error=f"no tests found in {self.root}"
            )
        if initial.all_passed:
            return self._result("already_passing", initial, initial, started)
        passed_before = {t.nodeid for t in initial.passed}
        raised = self.verifier.fit_timeout_to(initial)
        if raised:
            self.notes.append(raised)
        with scratch_copy(self.root) as scratch:
            return self._refine(scratch, initial, passed_before, started)

    def _refine(
        self, scratch: Path, initial: TestRunResult, passed_before: set[str], started: float
    ) -> FixResult:
        state = _State(run=initial)
        latest: _Outcome | None = None
        targets: tuple[Target, ...] = ()
        # Rounds spent on each target without progress: after FOCUS_ROUNDS, the next suspect.
        fruitless: dict[tuple[str, str], int] = {}
        # The rounds asked for, then more while the budget lasts (refine.schedule).
        budget = RoundBudget(self.config)
        index = 0
        while budget.allows(index + 1):
            index += 1
            plan = round_plan(index, self.config)
            if self.deadline.event.is_set():
                self.notes.append(
                    "stopped: time budget spent" if self.deadline.expired else "cancelled"
                )
                break
            localizing = time.monotonic()
            chosen = self._next_focus(scratch, initial, state, fruitless, targets, latest)
            self.localize_s += time.monotonic() - localizing
            if chosen is None:
                break
            focus, prompt, latest = chosen
            assert state.run is not None
            targets = focus.targets
            for t in focus.targets:
                self._remember_original(scratch, t.path)
            base = "\n".join(t.source.rstrip() for t in focus.targets) + "\n"
            self._remember_answer(answer_prefix(base) + copy_continuation(base))
            temperature = plan.temperature
            self.emit(
                RoundStarted(
                    index,
                    max(index, self.config.rounds),
                    tuple(t.qualname for t in targets),
                    temperature,
                    extra=plan.extra,
                )
            )
            if plan.from_intent:
                prompt = dataclasses.replace(prompt, from_scratch=True)
            rnd = _Round(index, scratch, targets, state, passed_before)
            outcome, attempts = self._round_attempts(rnd, prompt, temperature)
            self.rounds.append(
                RoundRecord(index, tuple(t.qualname for t in targets), tuple(attempts))
            )
            budget.finished(plan, any(a.verdict in _TESTED for a in attempts))
            if outcome.attempt.verdict in _TESTED:
                self.pointed = outcome.attempt.points_at
            verdict = outcome.attempt.verdict
            if verdict == "passed":
                state.sources.update(outcome.files)
                state.run = outcome.run
                return self._result("fixed", initial, outcome.run, started, state)
            if (
                verdict == "tests_failed"
                and outcome.run is not None
                and _improves(outcome.run, state.run)
            ):
                # Progress without regressions: keep it (in the scratch copy too) and go on from there.
                more_pass = len(outcome.run.passed) > len(state.run.passed)
                state.sources.update(outcome.files)
                for rel, text in outcome.files.items():
                    write_atomic(scratch / rel, text)
                state.run = outcome.run
                latest = None
                if more_pass:
                    fruitless.clear()
                else:
                    # Only further inside a failing test: weak progress (`return x is not None`
                    # gets past `assert f(a)` to fail `assert not f(b)`), so the turn counts.
                    self._count_fruitless(fruitless, targets)
                continue
            self._count_fruitless(fruitless, targets)
            if verdict not in (*_RESAMPLED, "cancelled"):
                # CYCLE refines the latest attempt, unless it passes fewer tests than the code
                # it was meant to improve: then the next round starts from that code again.
                latest = None if _worse(outcome.run, state.run) else outcome
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
        return self._result(self._status_when_stopped(), initial, state.run, started)

    def _next_focus(
        self,
        scratch: Path,
        initial: TestRunResult,
        state: _State,
        fruitless: dict[tuple[str, str], int],
        targets: tuple[Target, ...],
        latest: _Outcome | None,
    ) -> tuple[Localization, RefinePrompt, _Outcome | None] | None:
        """The round's target, its prompt fitted to the model's window, and the latest attempt
        it shows: the failures localized (import-time errors included), the suspect whose turn
        it is chosen (refine.turns); a suspect whose prompt cannot fit is skipped for good. None,
        with a note, when no suspect is left."""
        while True:
            assert state.run is not None
            # Import-time errors in project code count as failures (refine.importtime).
            failures = failures_with_import_errors(state.run)
            project = ProjectIndex(scratch, dict(state.sources))
            loc = localize(
                project,
                failures,
                self.focus,
                spectrum=initial,  # the traced run: what the tests executed ranks suspects
            )
            loc = with_import_time_targets(loc, project, failures)
            self.notes.extend(n for n in loc.notes if n not in self.notes)
            if not loc.targets:
                self.notes.append("could not find the code the failing tests exercise")
                return None
            # The helpers the best suspect calls in other files get their turns too.
            reach = tuple(
                t
                for t in path_functions(project, loc.targets[0], failures)
                if t.path != loc.targets[0].path
            )
            pointed = pointed_target(project, self.pointed)
            focus = choose_focus(loc, fruitless, self.focus, self.unfit, pointed, reach)
            if focus is None:
                self.notes.append(
                    "stopped: no suspect's prompt fits the model's context window, even narrowed"
                )
                return None
            # New targets: show the current code, not an attempt at other code.
            fitted = self._fitted_prompt(
                scratch, focus, state, latest if focus.targets == targets else None
            )
            if fitted is not None:
                return fitted
            unfit = focus.targets[0]
            self.unfit.add((unfit.path, unfit.qualname))
            self.notes.append(
                f"`{unfit.qualname}` ({unfit.path}) skipped: its prompt does not fit the "
                "model's context window, even narrowed"
            )

    def _round_attempts(
        self, rnd: _Round, prompt: RefinePrompt, temperature: float
    ) -> tuple[_Outcome, list[Attempt]]:
        """A round's attempts under `prompt`, and the one that counts: the first answer, then
        resamples of answers that never reached the tests (leaving a copy where the model
        hesitated when the backend tells, else hotter), then a rewrite from the intent after a
        fork that failed."""
        scoring = time.monotonic()
        # Where a copy hesitated, in order: the same prompt continues from there.
        branches, forked = self._branches_off_copies(prompt, temperature, rnd.targets)
        outcome = self._attempt(
            rnd,
            prompt,
            temperature,
            branches.pop(0) if branches else "",
            forked=forked,
            score_s=time.monotonic() - scoring,
        )
        attempts = [outcome.attempt]
        # Resamples spent; a fork that comes back a copy (another spelling of the same
        # code) costs only the end of an answer and no test run, so it is not counted.
        spent = 0
        # An answer that never reached the tests is resampled: a copy from where it was
        # least sure when the backend tells, else hotter (a copy with a note).
        while (
            outcome.attempt.verdict in _RESAMPLED
            and spent < self.config.resamples
            and not self.deadline.event.is_set()
        ):
            copied = outcome.attempt.verdict in ("copy", "duplicate")
            if copied and not branches and not outcome.attempt.forked:
                # A sampled copy: where it hesitated, least sure first.
                branches, forked = list(outcome.branches), True
            if copied and branches:
                outcome = self._attempt(rnd, prompt, temperature, branches.pop(0), forked=forked)
                attempts.append(outcome.attempt)
                if outcome.attempt.verdict not in ("copy", "duplicate"):
                    spent += 1
                continue
            spent += 1
            retry = dataclasses.replace(
                prompt,
                note=COPY_NOTE if copied else retry_note(outcome.attempt, prompt.names),
                from_scratch=copied and len(attempts) >= 2,
            )
            outcome = self._resample(rnd, retry)
            attempts.append(outcome.attempt)
        if (
            outcome.attempt.forked
            and outcome.attempt.verdict in ("tests_failed", "regressed")
            and spent < self.config.resamples
            and not self.deadline.event.is_set()
        ):
            # The local edit did not pass: a new implementation from the intent is the
            # other way out of a copy (most fixes of a 0.5B model); the better one stays.
            rewrite = self._resample(
                rnd, dataclasses.replace(prompt, note=COPY_NOTE, from_scratch=True)
            )
            attempts.append(rewrite.attempt)
            if _better(rewrite, outcome):
                outcome = rewrite
        return outcome, attempts

    @staticmethod
    def _count_fruitless(
        fruitless: dict[tuple[str, str], int], targets: tuple[Target, ...]
    ) -> None:
        for t in targets:
            key = (t.path, t.qualname)
            fruitless[key] = fruitless.get(key, 0) + 1

    def _remember_answer(self, text: str) -> None:
        if text not in self.answers:
            self.answers.append(text)

    def _remember_original(self, scratch: Path, rel: str) -> None:
        # From the scratch copy, untouched until a file is remembered: the text the fix is
        # computed on, so a save made since is seen at apply (StaleFixError), never reverted.
        if rel not in self.originals:
            self.originals[rel] = read_source(scratch / rel)

    def _prompt(
        self, scratch: Path, loc: Localization, state: _State, latest: _Outcome | None
    ) -> RefinePrompt:
        targets = loc.targets
        primary = loc.primary
        faulty = "\n".join(t.source.rstrip() for t in targets) + "\n"
        feedback = feedback_text(primary) if primary else ""
        if latest is not None:
            # CYCLE: refine the latest attempt, with that attempt's own feedback.
            faulty = latest.attempt.code
            feedback = latest.attempt.feedback or feedback
            if latest.failing is not None:
                primary = latest.failing
        context = description = ""
        first = targets[0]
        related: tuple[Target, ...] = ()
        if first.qualname != "<module>":
            project = ProjectIndex(scratch, dict(state.sources))
            failures = failures_with_import_errors(state.run) if state.run else ()
            # The failing path in other files is shown on its own (refine.related); in this
            # file, the functions the failing tests ran through it are shown in full.
            related = tuple(
                t for t in path_functions(project, first, failures) if t.path != first.path
            )
            executed_here = {
                t.qualname
                for t in executed_neighbours(project, first, failures)
                if t.path == first.path
            }
            text = state.sources.get(first.path) or read_source(scratch / first.path)
            try:
                tree = ast.parse(text)
                names = {t.qualname for t in targets}
                whole = called_functions(tree, names) | (executed_here - names)
                context = module_context(text, tree, names, whole=whole)
                if not has_docstring(first.source):
                    description = module_description(tree)
            except SyntaxError:
                context = ""
        # What the shown functions did in the failing test (the traced run's probe; an
        # attempt's own feedback has none: its run is not traced, and the code has changed).
        feedback = with_probe(feedback, None if latest else primary, (*targets, *related))
        failing_ids = [t.nodeid for t in state.run.failures] if state.run else []
        return RefinePrompt(
            names=tuple(t.qualname for t in targets if t.qualname != "<module>") or (first.path,),
            faulty_code=faulty,
            feedback=feedback,
            test_source=(primary.test_source or primary.assert_source or "") if primary else "",
            description=description,
            context=context,
            path=first.path,
            other_failures=other_failure_names(failing_ids, primary.nodeid if primary else None),
            related=related,
        )

    def _fitted_prompt(
        self, scratch: Path, loc: Localization, state: _State, latest: _Outcome | None
    ) -> tuple[Localization, RefinePrompt, _Outcome | None] | None:
        """The round's prompt, narrowed to fit the model's context window (refine.fit), with
        the localization and latest attempt it shows; None when nothing narrower fits.

        A whole-module target over the window becomes the function the failing tests point
        at; a latest attempt too long to show gives way to the code under test. The first
        of these that fits whole is taken, else the first that fits narrowed."""
        choices = [(loc, latest)]
        first = loc.targets[0]
        if first.qualname == MODULE_QUALNAME:
            project = ProjectIndex(scratch, dict(state.sources))
            failures = failures_with_import_errors(state.run) if state.run else ()
            narrowed = function_instead_of_module(project, first, failures)
            if narrowed is not None:
                primary = loc.blamed.get((narrowed.path, narrowed.qualname), loc.primary)
                choices.append(
                    (dataclasses.replace(loc, targets=(narrowed,), primary=primary), None)
                )
        if latest is not None:
            choices.append((loc, None))
        fits: list[tuple[Localization, _Outcome | None, FittedPrompt]] = []
        for option, shown in choices:
            prompt = self._prompt(scratch, option, state, shown)
            fitted = fit_prompt(prompt, self.backend, self._max_tokens(prompt))
            if fitted is not None:
                fits.append((option, shown, fitted))
                if not fitted.left_out:
                    break
        whole = [f for f in fits if not f[2].left_out]
        for option, shown, fitted in whole[:1] or fits[:1]:
            left_out = list(fitted.left_out)
            if option is not loc:
                left_out.insert(
                    0, f"the rest of {first.path} (only `{option.targets[0].qualname}` shown)"
                )
            if shown is None and latest is not None:
                left_out.insert(0, "the latest attempt (the code under test shown instead)")
            self.left_out.extend(w for w in left_out if w not in self.left_out)
            return option, fitted.prompt, shown
        return None

    def _max_tokens(self, prompt: RefinePrompt) -> int:
        """Tokens an answer may take: enough to rewrite the code shown, within max_tokens."""
        return min(self.config.max_tokens, 200 + len(prompt.faulty_code) // 2)

    def _branches_off_copies(
        self, prompt: RefinePrompt, temperature: float, targets: tuple[Target, ...]
    ) -> tuple[list[str], bool]:
        """Where an attempt under `prompt` should leave a copy the model would likely write
        back, and whether one was likely (refine.copies)."""
        return self.copies.branches_off_copies(prompt, temperature, targets, self.generations)

    def _resample(self, rnd: _Round, prompt: RefinePrompt) -> _Outcome:
        """A hotter attempt with a note, leaving a copy the model would write back
        (`_branches_off_copies`), else sampled."""
        scoring = time.monotonic()
        temperature = self.config.copy_temperature
        branches, forked = self._branches_off_copies(prompt, temperature, rnd.targets)
        branch = branches[0] if branches else ""
        score_s = time.monotonic() - scoring
        return self._attempt(rnd, prompt, temperature, branch, forked=forked, score_s=score_s)

    def _attempt(
        self,
        rnd: _Round,
        prompt: RefinePrompt,
        temperature: float,
        branch: str = "",
        *,
        forked: bool = False,
        score_s: float = 0.0,
    ) -> _Outcome:
        """One candidate: generate (continuing `branch`, where it leaves a copy, when given),
        check it, and run the tests on it in the scratch copy. `forked`: it leaves a copy
        the model would likely have written. `score_s`: seconds just spent scoring copies
        for it (refine.copies), counted in its time."""
        t0 = time.monotonic() - score_s
        prefix = answer_prefix(prompt.faulty_code)
        options = GenerationOptions(
            temperature=temperature,
            top_p=self.config.top_p,
            max_tokens=self._max_tokens(prompt),
            seed=None if self.config.seed is None else self.config.seed + self.generations,
            stop=STOP_SEQUENCES,
            answer_prefix=branch or prefix,
            record_forks=not branch,
        )
        self.generations += 1
        gen = self.backend.generate(
            build_refine_messages(prompt),
            options,
            on_text=lambda text: self.emit(TextGenerated(text)),
            cancel=self.deadline.event,
        )
        if gen.finish_reason != "cancelled":
            self._remember_answer(gen.text)

        def done(
            verdict: Verdict,
            code: str,
            detail: str,
            feedback: str = "",
            run: TestRunResult | None = None,
            files: dict[str, str] | None = None,
            failing: TestCaseResult | None = None,
            points_at: str = "",
            tests_s: float = 0.0,
        ) -> _Outcome:
            passed = len(run.passed) if run else 0
            total = len(run.tests) if run else 0
            attempt = Attempt(
                rnd.index,
                code,
                verdict,
                feedback,
                detail,
                temperature,
                gen.prompt_tokens,
                gen.completion_tokens,
                time.monotonic() - t0,
                passed,
                total,
                forked=forked,
                points_at=points_at,
                score_s=score_s,
                prompt_eval_s=gen.prompt_seconds,
                prompt_tokens_cached=gen.prompt_tokens_cached,
                generate_s=gen.generate_seconds,
                tests_s=tests_s,
            )
            self.emit(AttemptFinished(attempt))
            branches = (
                branch_prefixes(gen.text, gen.forks, len(prefix), FORKS_PER_COPY, self.answers)
                if verdict == "copy"
                else ()
            )
            return _Outcome(attempt, files or {}, run, failing, branches)

        if gen.finish_reason == "cancelled":
            return done("cancelled", gen.text, "generation stopped")
        code = extract_code(gen.text)
        if code is None:
            return done("no_code", gen.text, "the answer holds no Python code")
        if normalized_code(code) == normalized_code(prompt.faulty_code):
            return done(
                "copy", code, "identical to the faulty code (whitespace and comments ignored)"
            )
        # The answer may rewrite any function the prompt showed in full, in any file.
        scratch, state = rnd.scratch, rnd.state
        editable = (*rnd.targets, *prompt.related)
        for t in editable:
            self._remember_original(scratch, t.path)
        base = {
            t.path: state.sources.get(t.path) or read_source(scratch / t.path) for t in editable
        }
        try:
            spliced = splice_candidate(base, editable, code)
        except SpliceError as exc:
            return done(exc.verdict, code, str(exc), feedback=str(exc))  # type: ignore[arg-type]
        if not spliced.files or all(
            normalized_code(spliced.files[p]) == normalized_code(base[p]) for p in spliced.files
        ):
            return done("copy", code, "changes nothing in the code under test")
        files = dict(spliced.files)
        key = "\0".join(f"{p}\0{normalized_code(t)}" for p, t in sorted(files.items()))
        if key in self.tried:
            return done("duplicate", code, "a candidate already tried")
        self.tried.add(key)
        for rel, text in list(files.items()):
            problems = new_undefined_names(base[rel], text, rel)
            imports = stdlib_imports_for(problems) if problems else None
            if imports:  # `deque` used, `from collections import deque` forgotten: add it
                files[rel] = with_imports(text, imports)
                problems = new_undefined_names(base[rel], files[rel], rel)
            if problems:
                return done(
                    "undefined_names", code, "; ".join(problems), feedback="; ".join(problems)
                )
        if self.deadline.event.is_set():
            return done("cancelled", code, "stopped before the tests ran")
        testing = time.monotonic()
        run = self.verifier.run_candidate(scratch, files, base, state.run)
        tests_s = time.monotonic() - testing
        if run.cancelled:
            return done("cancelled", code, "stopped while the tests ran", run=run, tests_s=tests_s)
        failing = run.failures[0] if run.failures else None
        if run.collection_errors:
            err = run.collection_errors[0]
            msg = (
                f"{err.path}:{err.line}: {first_line(err.message)}"
                if err.line
                else first_line(err.message)
            )
            # An import-time error in project code is fed back as a failing test's would be.
            raised = import_failure(err)
            return done(
                "tests_failed",
                code,
                msg,
                feedback=feedback_text(raised) if raised else f"Error: {msg}",
                run=run,
                files=files,
                failing=raised,
                tests_s=tests_s,
            )
        if run.all_passed:
            testing = time.monotonic()
            regression = self.verifier.regressions(scratch, files, base)
            tests_s += time.monotonic() - testing
            if regression:
                return done(
                    "regressed",
                    code,
                    regression,
                    feedback=regression,
                    run=run,
                    files=files,
                    tests_s=tests_s,
                )
            passed = f"all {len(run.tests)} tests pass"
            return done("passed", code, passed, run=run, files=files, tests_s=tests_s)
        feedback = feedback_text(failing) if failing else first_line(run.output_tail)
        # Where this failure now points, when not at a function the answer rewrote.
        written = {*spliced.replaced, *spliced.added}
        pointed = self._points_at(scratch, state, files, failing, written)
        if pointed is not None:
            feedback += f"\nThe failure now points at `{pointed.qualname}` ({pointed.path})."
        points_at = f"{pointed.path}::{pointed.qualname}" if pointed is not None else ""
        broke = sorted(t.nodeid for t in run.failures if t.nodeid in rnd.passed_before)
        if broke:
            detail = f"breaks {len(broke)} test(s) that passed before: {', '.join(broke[:3])}"
        else:
            detail = f"{len(run.failures)} of {len(run.tests)} tests still fail"
        return done(
            "regressed" if broke else "tests_failed",
            code,
            detail,
            feedback=feedback,
            run=run,
            files=files,
            failing=failing,
            points_at=points_at,
            tests_s=tests_s,
        )

    def _points_at(
        self,
        scratch: Path,
        state: _State,
        files: dict[str, str],
        failing: TestCaseResult | None,
        written: Set[str],
    ) -> Target | None:
        """The function a candidate's failing test raised in (its deepest frame in project
        code, the candidate's files in place), when the answer wrote none of it (`written`:
        qualnames it replaced or added). An assert that only got a wrong value points nowhere
        new: the test names the same callers either way."""
        frames = [f for f in failing.project_frames if not is_test_code(f.path)] if failing else []
        if not frames:
            return None
        project = ProjectIndex(scratch, {**state.sources, **files})
        raised = project.target_at(frames[-1].path, frames[-1].line)
        return None if raised is None or raised.qualname in written else raised


def _better(new: _Outcome, old: _Outcome) -> bool:
    """Of two tested candidates of one round: `new` passes, or fails without breaking what
    passed before where `old` breaks it, or gets further than `old`."""
    verdict = new.attempt.verdict
    if verdict == "passed":
        return True
    if verdict != "tests_failed" or new.run is None:
        return False
    return old.attempt.verdict == "regressed" or _improves(new.run, old.run)


def _worse(new: TestRunResult | None, old: TestRunResult | None) -> bool:
    """Fewer tests pass, or as many and a test that fails in both now stops at an earlier line."""
    if new is None or old is None or new.collection_errors:
        return False
    if len(new.passed) != len(old.passed):
        return len(new.passed) < len(old.passed)
    return assert_reach(new, old) < 0


def _improves(new: TestRunResult, old: TestRunResult | None) -> bool:
    """More tests pass and none stopped passing, or the same pass and one gets further."""
    if old is None:
        return False
    old_ok = {t.nodeid for t in old.passed}
    new_ok = {t.nodeid for t in new.passed}
    return old_ok < new_ok or (old_ok == new_ok and assert_reach(new, old) > 0)


def assert_reach(new: TestRunResult, old: TestRunResult) -> int:
    """-1 when a test failing in both runs stops at an earlier line of the same file in `new`,
    1 when none does and one gets further (without hanging), else 0.

    One test that checks many cases in turn (HumanEval's `check(candidate)`) fails either way
    until it passes; the line it stops at is the only sign that an attempt got closer.
    """
    old_stops = {t.nodeid: (t.path, t.line) for t in old.failures if t.path and t.line}
    further = False
    for test in new.failures:
        stop = old_stops.get(test.nodeid)
        if stop is None or test.path != stop[0] or test.line is None:
            continue
        if test.line < stop[1]:
            return -1
        further = further or (test.line > stop[1] and test.outcome != "timeout")
    return 1 if further else 0


def retry_note(attempt: Attempt, names: Sequence[str]) -> str:
    """What was wrong with an answer that never reached the tests, for the next sample."""
    wanted = ", ".join(f"`{n}`" for n in names)
    if attempt.verdict == "syntax_error":
        return f"Your previous answer was not valid Python ({attempt.detail}). Reply with complete, valid code."
    return f"Your previous answer did not define {wanted}. Reply with the complete function(s) {wanted}."


def first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def unified_diff(rel: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{rel}", f"b/{rel}"
    )
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


__all__ = ["SourceError", "fix", "unified_diff"]
