"""Which rounds a fix runs and how each samples: CYCLE's rounds, then more within the budget.

The rounds asked for (`RefineConfig.rounds`) run as CYCLE has them (0.2, then 0.6). When they
end without a fix and `extend_to_budget` is on, more rounds follow while time remains: with the
tests as the judge, more diverse candidates are the cheapest lever there is. Extra rounds
alternate a refinement of the code at rising temperatures with a rewrite from the intent
(signature, docstring and test alone); the loop's suspect turns move them across functions.

No round starts a new attempt once it has used half the time left (`round_share`):
where one candidate's test run takes twenty seconds, a round on the wrong suspect used to spend
the whole budget (its answer, a dozen edits, resamples) and the suspect after it never had a
turn. A round its share cut short uses up its suspect's turns (refine.turns).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

from cyclefix.refine.types import RefineConfig

# Temperatures of the extra rounds that refine the code, in turn.
EXTRA_TEMPERATURES = (0.6, 0.8, 1.0)
# Extra rounds in a row with no new candidate for the tests (every answer a copy, a repeat or
# broken) before the loop gives up early: the model has nothing different left to offer.
STALE_EXTRA_ROUNDS = 3
# A round may start attempts in 1/SHARE_DIVISOR of the time left: the best suspect's round
# the most, each next one half as much (a round that ends sooner leaves its time to the rest).
SHARE_DIVISOR = 2


@dataclass(frozen=True)
class RoundPlan:
    index: int  # 1-based
    temperature: float
    # Show only the signature and docstring: a new implementation from the intent.
    from_intent: bool
    # Past the rounds asked for, within the budget.
    extra: bool


def round_plan(index: int, config: RefineConfig) -> RoundPlan:
    """How round `index` samples."""
    if index <= config.rounds:
        temperature = config.first_temperature if index == 1 else config.later_temperature
        return RoundPlan(index, temperature, from_intent=False, extra=False)
    extra = index - config.rounds - 1  # 0-based among the extra rounds
    if extra % 2 == 1:
        return RoundPlan(index, config.copy_temperature, from_intent=True, extra=True)
    temperature = EXTRA_TEMPERATURES[(extra // 2) % len(EXTRA_TEMPERATURES)]
    return RoundPlan(index, temperature, from_intent=False, extra=True)


class RoundBudget:
    """Whether another round may start: within `rounds`, or past them while the budget lasts
    and the model still offers new candidates."""

    def __init__(self, config: RefineConfig) -> None:
        self.config = config
        self.stale = 0  # extra rounds in a row that sent nothing new to the tests

    def allows(self, index: int) -> bool:
        if index <= self.config.rounds:
            return True
        return self.config.extend_to_budget and self.stale < STALE_EXTRA_ROUNDS

    def finished(self, plan: RoundPlan, tested: bool) -> None:
        """Record a finished round; `tested`: one of its candidates reached the tests."""
        if plan.extra:
            self.stale = 0 if tested else self.stale + 1

    @property
    def gave_up(self) -> bool:
        return self.stale >= STALE_EXTRA_ROUNDS


def round_share(index: int, config: RefineConfig, seconds_left: float) -> float:
    """The seconds round `index` may start attempts in: half the time left, all of it in the
    last round when no extra round may follow."""
    if index >= config.rounds and not config.extend_to_budget:
        return seconds_left
    return seconds_left / SHARE_DIVISOR


class Stop(Protocol):
    """What says a round may start no more attempts (a threading.Event is one)."""

    def is_set(self) -> bool: ...


class RoundStop:
    """Set once the fix must stop (`event`: the budget, or the user's cancel) or the round's
    share of the time has passed; an attempt under way still finishes. `cut`: the share ended
    the round while it had more attempts to start."""

    def __init__(self, event: threading.Event, seconds: float) -> None:
        self.event = event
        self.ends = time.monotonic() + seconds
        self.cut = False

    def is_set(self) -> bool:
        if self.event.is_set():
            return True
        self.cut = self.cut or time.monotonic() >= self.ends
        return self.cut
