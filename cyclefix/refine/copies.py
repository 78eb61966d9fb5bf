"""The copy-avoidance planner: where an answer should leave code the model would write back.

CYCLE's failure mode is the copy: the model writes the faulty code back unchanged. A backend
that sees the logits reads the copy as if it were the answer and scores it (refine.fork); when
sampling would likely write it, the round starts from a fork where the model was least sure
instead of generating the copy. Backends without logits report no forks, and nothing is planned.

`plan_round` runs a round's attempts: the first answer, resamples of answers that never reached
the tests, and a rewrite from the intent after a fork that failed. It takes the attempt and the
copy scoring as functions, so the plan is tested without a model or a test run.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from cyclefix.models.backend import Backend, Fork
from cyclefix.refine.argument_swaps import argument_swaps
from cyclefix.refine.docstrings import with_cuts
from cyclefix.refine.fork import branch_prefixes, copy_probability, sampled_branches
from cyclefix.refine.operator_edits import operator_edits
from cyclefix.refine.prompt import (
    COPY_NOTE,
    RefinePrompt,
    answer_prefix,
    build_refine_messages,
    copy_continuation,
)
from cyclefix.refine.round import RESAMPLED, TESTED, Outcome, better
from cyclefix.refine.schedule import Stop
from cyclefix.refine.source import normalized_code
from cyclefix.refine.token_edits import (
    EDITS_PER_ROUND,
    MAX_EDITS_PER_ROUND,
    TokenEdit,
    scored_until,
    token_edits,
)
from cyclefix.refine.types import Attempt, RefineConfig, Target

# Token edits of a fix's targets kept as candidates for later rounds (likeliest first).
EDIT_BACKLOG = 48
# Code shown longer than this (about 450 tokens) takes long enough to write back that the
# round's token edits go before the answer, all of them.
LONG_ANSWER_CHARS = 1600
# Verdicts the guard gives an edit before any test runs: such an edit takes no place in a round.
TURNED_AWAY = (*RESAMPLED, "undefined_names", "rigged", "tampering")
# Forks of one copied answer a round may try (refine.fork); the round's resamples still cap
# the forks that reach the tests.
FORKS_PER_COPY = 4
# A round whose copy of the faulty code is at least this likely starts from the copy's forks,
# and a rewrite from the intent follows when that fails. Below one half: on HumanEval (1.5B),
# 6 of 7 first attempts scored 0.27 to 0.45 copied.
LIKELY_COPY = 0.25
# A rewrite from the intent whose copy is at least this likely is drawn as a branch that leaves
# the copy (refine.fork.sampled_branches): the model's own choice, less the copy.
COPY_RISK = 0.01

# A scored copy: the answer that copies the code, its forks, where its code starts.
ScoredCopy = tuple[str, Sequence[Fork], int]


class CopyPlanner:
    """Plans the answers of one fix that leave likely copies; `answers` are those written so
    far (and the code under test as one), shared with the loop: a fork never heads back there."""

    def __init__(
        self,
        backend: Backend,
        config: RefineConfig,
        answers: Sequence[str],
        cancel: threading.Event,
    ) -> None:
        self.backend = backend
        self.config = config
        self.answers = answers
        self.cancel = cancel
        # The scorings under the latest prompt scored (its messages): code -> what it gave.
        self._scored: tuple[str, dict[str, ScoredCopy]] = ("", {})
        self.edits_tried: list[str] = []  # token edits made so far (each tried once)
        # The token edits not taken yet, likeliest first, by the targets they edit.
        self._edit_backlog: dict[tuple[tuple[str, str], ...], list[TokenEdit]] = {}

    def branches_off_copies(
        self,
        prompt: RefinePrompt,
        temperature: float,
        targets: tuple[Target, ...],
        generation: int,
    ) -> tuple[list[str], bool]:
        """Where an attempt under `prompt` should leave the faulty code it shows, or the code
        under test (the same unless an attempt that was not kept is shown), when the model
        would write one back (backends that see logits score the copies instead of sampling
        them); and whether a copy was likely (LIKELY_COPY). `generation` counts the fix's
        generations so far: it seeds the draw.

        An edit of the code leaves a likely copy where the model was least sure of it. A
        rewrite from the intent is there to be a new implementation, and a fork is a local
        edit (on MBPP, forking it lost 3 fixes): once a copy is COPY_RISK likely, it is drawn
        as sampling would draw it, given that it writes no copy back."""
        risk = COPY_RISK if prompt.from_scratch else LIKELY_COPY
        under_test = code_under_test(prompt, targets)
        copies = [prompt.faulty_code]
        if normalized_code(under_test) != normalized_code(prompt.faulty_code):
            copies.append(under_test)  # bringing it back changes nothing either: a copy too
        # Each copy's scoring stops once it alone is unlikely; their chances add up.
        share = risk / len(copies)
        scored = [self.scored_copy(prompt, code, temperature, share) for code in copies]
        chance = sum(c for c, _ in scored)
        if chance < risk:
            return [], False
        if not prompt.from_scratch:
            _, (copy, forks, code_start) = max(scored, key=lambda item: item[0])
            branches = branch_prefixes(copy, forks, code_start, FORKS_PER_COPY, self.answers)
            return list(branches), bool(branches)
        rng = random.Random(None if self.config.seed is None else self.config.seed + generation)
        # The copy to leave, by its share of the chance; a branch back to the other is not drawn.
        copy, forks, code_start = rng.choices([s for _, s in scored], [c for c, _ in scored])[0]
        top_p = self.config.top_p
        # A sampler that can only copy leaves it where the model was least sure instead.
        branches = sampled_branches(
            copy, forks, code_start, temperature, top_p, FORKS_PER_COPY, rng, self.answers
        ) or branch_prefixes(copy, forks, code_start, FORKS_PER_COPY, self.answers)
        return list(branches), chance >= LIKELY_COPY and bool(branches)

    def scored_copy(
        self, prompt: RefinePrompt, code: str, temperature: float, unlikely: float
    ) -> tuple[float, ScoredCopy]:
        """The chance that sampling under `prompt` writes `code` back, with the answer that
        copies it, its forks and where its code starts; scoring stops below `unlikely`, once
        past the prompt's suspicious lines (their forks give the token edits)."""
        prefix = answer_prefix(code)
        copy = prefix + copy_continuation(code)
        lines = () if prompt.from_scratch else prompt.suspicious_lines
        needed = scored_until(copy, [line.text for line in lines])

        def chance(forks: Sequence[Fork]) -> float:
            return copy_probability(copy, forks, len(prefix), temperature, self.config.top_p)

        def enough(forks: Sequence[Fork]) -> bool:
            # The chance only falls as more of the copy is scored.
            return chance(forks) < unlikely and (not forks or forks[-1].offset >= needed)

        messages = build_refine_messages(prompt)
        forks = self.backend.forks_along(
            messages, prefix, copy.removeprefix(prefix), cancel=self.cancel, enough=enough
        )
        scored: ScoredCopy = (copy, forks or (), len(prefix))
        if self._scored[0] != repr(messages):
            self._scored = (repr(messages), {})
        self._scored[1][code] = scored
        return (chance(forks) if forks else 0.0), scored

    def token_edits(self, prompt: RefinePrompt, targets: Sequence[Target]) -> Iterator[str]:
        """Up to EDIT_BACKLOG codes not tried yet, likeliest first, each the code
        `prompt` shows, or the code under test, with one token of a suspicious line changed to
        one the model nearly chose there when reading it under `prompt` (refine.token_edits),
        two arguments of a call there swapped (refine.argument_swaps), or one operator or
        number there changed to a neighbour (refine.operator_edits).
        The code under test keeps its suspicious lines when the attempt shown has rewritten
        them; the edits of earlier rounds on the same targets not taken yet stay candidates
        (a round that starts from an attempt that got further has no traced lines to edit).
        A code counts as tried once it is taken."""
        if prompt.from_scratch:
            return
        key = tuple((t.path, t.qualname) for t in targets)
        edits = list(self._edit_backlog.get(key, ()))
        if prompt.suspicious_lines:
            scored_key, scorings = self._scored
            if scored_key != repr(build_refine_messages(prompt)):
                scorings = {}
            under_test = code_under_test(prompt, targets)
            for code in dict.fromkeys((prompt.faulty_code, under_test)):
                scored = scorings.get(code) or self.scored_copy(prompt, code, 1.0, 1.0)[1]
                copy, forks, _ = scored
                lines = prompt.suspicious_lines
                edits += token_edits(copy, forks, lines, self.edits_tried, EDIT_BACKLOG)
                edits += argument_swaps(copy, forks, lines, self.edits_tried)
                if forks:  # ranked by the model's scores: a backend without logits gets none
                    edits += operator_edits(copy, forks, lines, self.edits_tried)
        tried = set(self.edits_tried)
        ranked: dict[str, TokenEdit] = {}
        for edit in sorted(edits, key=lambda e: -e.gap):
            if edit.code not in tried:
                ranked.setdefault(edit.code, edit)
        self._edit_backlog[key] = list(ranked.values())[:EDIT_BACKLOG]
        for code in list(ranked)[:EDIT_BACKLOG]:
            self.edits_tried.append(code)
            yield code


def code_under_test(prompt: RefinePrompt, targets: Sequence[Target]) -> str:
    """The code of the round's targets as `prompt` would show it unchanged (its long
    docstrings cut as the prompt's are, refine.docstrings)."""
    whole = "\n".join(t.source.rstrip() for t in targets) + "\n"
    return with_cuts(whole, prompt.cut_docstrings)


def copied_answers(prompt: RefinePrompt, targets: Sequence[Target]) -> list[str]:
    """The answers that copy the code the prompt shows, or the code under test: what the
    round's forks branch off, with the answers written so far."""
    return [
        answer_prefix(c) + copy_continuation(c)
        for c in (prompt.faulty_code, code_under_test(prompt, targets))
    ]


class AttemptFn(Protocol):
    """One attempt of the round under `prompt` (refine.candidate.Candidates.attempt)."""

    def __call__(
        self,
        prompt: RefinePrompt,
        temperature: float,
        branch: str = "",
        *,
        forked: bool = False,
        score_s: float = 0.0,
        partial: str = "",
        token_edit: bool = False,
    ) -> Outcome: ...


# Where an attempt under a prompt, at a temperature, should leave a likely copy, and whether
# one was likely (CopyPlanner.branches_off_copies for the round's targets).
BranchesFn = Callable[[RefinePrompt, float], tuple[list[str], bool]]
# The parts of a tested answer worth trying alone (refine.partial.partial_answers).
PartsFn = Callable[[Outcome], Sequence[str]]
# The token edits of the code a prompt shows, to try before the answer (CopyPlanner.token_edits).
EditsFn = Callable[[RefinePrompt], Iterable[str]]


def plan_round(
    prompt: RefinePrompt,
    temperature: float,
    *,
    attempt: AttemptFn,
    branches_for: BranchesFn,
    config: RefineConfig,
    stop: Stop,
    parts_for: PartsFn = lambda outcome: (),
    edits_for: EditsFn = lambda prompt: (),
    edit_seconds: float = 0.0,
    progressed: Callable[[Outcome], bool] = lambda outcome: False,
) -> tuple[Outcome, list[Attempt]]:
    """A round's attempts under `prompt`, and the one that counts: token edits of the code it
    shows and the first answer (four edits first when the round starts from a fork), then
    resamples of answers that never reached the tests (leaving a copy where the model
    hesitated when the backend tells, else hotter), then a rewrite from the intent after a
    fork that failed; right after an answer the tests failed, its change's parts, each alone;
    then, unless the counted outcome `progressed` (more tests pass: the next round builds on
    it), extra answers."""

    def scored(prompt: RefinePrompt, temperature: float) -> tuple[list[str], bool, float]:
        started = time.monotonic()
        branches, forked = branches_for(prompt, temperature)
        return branches, forked, time.monotonic() - started

    def resample(prompt: RefinePrompt) -> Outcome:
        """A hotter attempt with a note, leaving a copy the model would write back, else sampled."""
        hot = config.copy_temperature
        branches, forked, score_s = scored(prompt, hot)
        return attempt(prompt, hot, branches[0] if branches else "", forked=forked, score_s=score_s)

    def with_parts(answer: Outcome, counted: Outcome) -> Outcome:
        """The counted outcome after `answer`'s parts, each alone, until one passes."""
        if answer.attempt.verdict not in ("tests_failed", "regressed"):
            return counted
        for part in parts_for(answer):
            if stop.is_set() or counted.attempt.verdict == "passed":
                break
            tried = attempt(prompt, temperature, partial=part)
            attempts.append(tried.attempt)
            if better(tried, counted):
                counted = tried
        return counted

    # Where a copy hesitated, in order: the same prompt continues from there.
    branches, forked, score_s = scored(prompt, temperature)
    attempts: list[Attempt] = []

    codes, taken, edit_time, hung = iter(edits_for(prompt)), 0, 0.0, False

    def edits(more: bool) -> Outcome | None:
        """The round's next token edits in turn, up to four, with `more` then on while they
        have taken under `edit_seconds` and none ran into a test's timeout (an edit of a loop
        that never ends: the next ones likely wait as long), at most MAX_EDITS_PER_ROUND; the
        one that passes, if any. Edits the guard turns away before any test runs (an undefined
        name) cost milliseconds and take no place among them. An edit counts only when it
        passes: one that gets further by chance (four more tests pass when a wrong index
        raises elsewhere) is no base for the rounds after it."""
        nonlocal score_s, taken, edit_time, hung
        while taken < EDITS_PER_ROUND or (
            more and not hung and edit_time < edit_seconds and taken < MAX_EDITS_PER_ROUND
        ):
            # A round's first attempt starts even when scoring its copy used up its share.
            code = None if stop.is_set() and attempts else next(codes, None)
            if code is None:
                return None
            began = time.monotonic()
            # The round's first attempt carries the scoring's seconds, an edit or an answer.
            tried = attempt(prompt, temperature, partial=code, token_edit=True, score_s=score_s)
            score_s, edit_time = 0.0, edit_time + time.monotonic() - began
            if tried.attempt.verdict not in TURNED_AWAY:
                taken += 1
            attempts.append(tried.attempt)
            if tried.attempt.verdict == "passed":
                return tried
            hung = hung or (tried.run is not None and tried.run.hung)
        return None

    # Four edits before the answer where the model would write the code back (the round
    # starts from a fork), the answer first otherwise (unlike the code, it is often the fix);
    # more edits after it: one passing a few weak tests by chance must not preempt it. All of
    # them first where the answer would take long to write: a long function's whole rewrite
    # costs a minute or more on a laptop's CPU, an edit a test run.
    long_answer = len(prompt.faulty_code) > LONG_ANSWER_CHARS
    if (forked or long_answer) and (edited := edits(more=long_answer)) is not None:
        return edited, attempts
    if attempts and stop.is_set():
        # The round's time went on its edits: the answer waits for the suspect's next turn.
        return unanswered(attempts[-1]), attempts
    first = branches.pop(0) if branches else ""
    outcome = attempt(prompt, temperature, first, forked=forked, score_s=score_s)
    score_s = 0.0
    attempts.append(outcome.attempt)
    if outcome.attempt.verdict != "passed" and (edited := edits(more=True)) is not None:
        return edited, attempts
    # Resamples spent; a fork that comes back a copy (another spelling of the same code)
    # costs only the end of an answer and no test run, so it is not counted.
    spent = 0
    while outcome.attempt.verdict in RESAMPLED and spent < config.resamples and not stop.is_set():
        copied = outcome.attempt.verdict in ("copy", "duplicate")
        if copied and not branches and not outcome.attempt.forked:
            # A sampled copy: where it hesitated, least sure first.
            branches, forked = list(outcome.branches), True
        if copied and branches:
            outcome = attempt(prompt, temperature, branches.pop(0), forked=forked)
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
        outcome = resample(retry)
        attempts.append(outcome.attempt)
    # The answer may hold the fix beside a change that breaks it: its parts alone, first.
    answer, outcome = outcome, with_parts(outcome, outcome)
    if (
        outcome.attempt.verdict != "passed"
        and answer.attempt.forked
        and answer.attempt.verdict in ("tests_failed", "regressed")
        and spent < config.resamples
        and not stop.is_set()
    ):
        # The local edit did not pass: a new implementation from the intent is the other way
        # out of a copy (most fixes of a 0.5B model); the better one stays.
        rewrite = resample(dataclasses.replace(prompt, note=COPY_NOTE, from_scratch=True))
        attempts.append(rewrite.attempt)
        if better(rewrite, outcome):
            outcome = rewrite
        outcome = with_parts(rewrite, outcome)
    # More answers while the round's share of the time lasts: one sample a round is a draw
    # (a sampling seed alone moved HumanEval after 4 rounds by 5 points). A hot refinement
    # and a rewrite from the intent in turn; none where one takes a minute to write.
    drawn, extra = 0, 0 if long_answer else config.extra_answers
    while (
        outcome.attempt.verdict != "passed"
        and not progressed(outcome)
        and not stop.is_set()
        and drawn < extra
    ):
        drawn += 1
        fresh = resample(
            dataclasses.replace(prompt, note="", from_scratch=prompt.from_scratch or drawn % 2 == 0)
        )
        attempts.append(fresh.attempt)
        untested = outcome.attempt.verdict not in TESTED
        if better(fresh, outcome) or (untested and fresh.attempt.verdict in TESTED):
            outcome = fresh
        outcome = with_parts(fresh, outcome)
    return outcome, attempts


def unanswered(last: Attempt) -> Outcome:
    """The outcome of a round stopped before its answer: nothing to refine or keep (`last`,
    its latest attempt, marked cancelled)."""
    return Outcome(dataclasses.replace(last, verdict="cancelled"), {}, None, None)


def retry_note(attempt: Attempt, names: Sequence[str]) -> str:
    """What was wrong with an answer that never reached the tests, for the next sample."""
    wanted = ", ".join(f"`{n}`" for n in names)
    if attempt.verdict == "syntax_error":
        return f"Your previous answer was not valid Python ({attempt.detail}). Reply with complete, valid code."
    return f"Your previous answer did not define {wanted}. Reply with the complete function(s) {wanted}."
