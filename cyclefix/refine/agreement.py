"""A fix that passes a few examples is checked against other answers that pass them too.

Two docstring examples or one assert admit many programs: over the EvalPlus runs about half of
the verified fixes of tasks the model first failed passed the examples and not the task. When
the fix passes at most CONFIRM_MAX_TESTS tests, the model draws a few more answers; those that
pass as well are run, with the fix, on variant calls: the tests' own calls with one literal
argument changed (refine.variants writes them). Programs that agree on inputs nobody checked are
likelier right than one that stands alone (AlphaCode's clustering, CodeT's dual agreement), so
the fix is the first candidate of the largest group of candidates that behave alike. What a
candidate returned comes from the runner's record of each variant test, never from the model's
code; a call on which any candidate raised or hung is left out (its input may be outside the
task's domain, where right programs differ too).

Off by default (RefineConfig.agreement_answers = 0): on two HumanEval runs it overturned no
fix; where a right answer was drawn beside a wrong fix, the model's other answers sided with
the wrong one (its samples share its misreadings).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from cyclefix.refine.round import Outcome
from cyclefix.refine.source import normalized_code
from cyclefix.refine.types import Attempt

# Fixes passing more tests than this stand as they are: a real suite's verdict is evidence.
CONFIRM_MAX_TESTS = 3

# What one candidate did on each variant call, in the variant module's order: its output (repr), or
# None when it raised, hung, or the call did not run.
Behaviour = tuple[str | None, ...]


@dataclass(frozen=True)
class Vote:
    """Which candidate the agreement chose, and how many candidates behaved like it."""

    chosen: int  # index of the chosen candidate, 0 being the fix found first
    agreeing: int  # votes of its group, its own included
    candidates: int  # votes in all (a candidate drawn twice has two)
    calls_used: int  # variant calls every candidate returned from
    runner_up: int = 0  # votes of the next largest group


def candidate_key(files: dict[str, str]) -> str:
    """One text per candidate whatever its whitespace and comments: its files, normalized."""
    return "\0".join(f"{p}\0{normalized_code(t)}" for p, t in sorted(files.items()))


def confirmed(
    found: Outcome,
    *,
    draws: int,
    draw: Callable[[int], Outcome],
    behaviour_of: Callable[[Outcome], Behaviour],
    stop: Callable[[], bool],
) -> tuple[Outcome, list[Attempt], Vote | None]:
    """`found` (a passing outcome) or the answer the vote prefers, after up to `draws` more
    answers (`draw(i)`): the ones that pass join the vote, and one that repeats a passing
    candidate counts for it again; the draws end once the answers left could not change
    the vote. The drawn attempts, and the vote when there was one."""
    pool = [found]
    keys = {candidate_key(found.files): 0}
    voters = [0]  # per vote, the candidate of the pool it is for
    behaviours: list[Behaviour] = []
    attempts: list[Attempt] = []
    result: Vote | None = None
    for i in range(draws):
        if stop():
            return found, attempts, None
        fresh = draw(i)
        attempts.append(fresh.attempt)
        key = candidate_key(fresh.files) if fresh.files else None
        if fresh.attempt.verdict == "passed" and key is not None and key not in keys:
            keys[key] = len(pool)
            pool.append(fresh)
            voters.append(keys[key])
        elif fresh.attempt.verdict == "duplicate" and key in keys:
            voters.append(keys[key])
        else:
            continue
        behaviours.extend(behaviour_of(c) for c in pool[len(behaviours) :])
        result = vote([behaviours[v] for v in voters])
        if decided(result, draws - i - 1):
            break
    if result is None or stop():
        return found, attempts, None
    chosen = voters[result.chosen]
    return pool[chosen], attempts, replace(result, chosen=chosen)


def decided(result: Vote, left: int) -> bool:
    """Whether `left` more votes could not change `result`: no other group, not even a new
    one, could outnumber the leader, or equal it where the leader holds the first fix."""
    reach = result.runner_up + left  # the next group, or a new one, taking every vote left
    return reach < result.agreeing or (reach == result.agreeing and result.chosen == 0)


def vote(behaviours: Sequence[Behaviour]) -> Vote:
    """The first candidate of the largest group whose outputs agree on every variant call that all
    candidates returned from; the fix found first (index 0) on a tie."""
    count = len(behaviours)
    if count == 0:
        raise ValueError("no candidates to vote on")
    width = min(len(b) for b in behaviours)
    used = [i for i in range(width) if all(b[i] is not None for b in behaviours)]
    groups: dict[tuple[str | None, ...], list[int]] = {}
    for index, outputs in enumerate(behaviours):
        groups.setdefault(tuple(outputs[i] for i in used), []).append(index)
    # Largest group first; among equals, the one holding the earliest candidate.
    ranked = sorted(groups.values(), key=lambda members: (-len(members), members[0]))
    best = ranked[0]
    runner_up = len(ranked[1]) if len(ranked) > 1 else 0
    return Vote(best[0], len(best), count, len(used), runner_up)


def agreement_note(round_index: int, result: Vote) -> str:
    if result.chosen == 0:
        return (
            f"round {round_index}: the fix agrees with {result.agreeing - 1} of "
            f"{result.candidates - 1} other passing answer(s) on {result.calls_used} variant call(s)"
        )
    return (
        f"round {round_index}: {result.agreeing} of {result.candidates} passing answers agree on "
        f"{result.calls_used} variant call(s) where the first fix did not; one of them is the fix"
    )
