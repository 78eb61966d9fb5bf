"""The copy-avoidance planner: where an answer should leave code the model would write back.

CYCLE's failure mode is the copy: the model writes the faulty code back unchanged. A backend
that sees the logits reads the copy as if it were the answer and scores it (refine.fork); when
sampling would likely write it, the round starts from a fork where the model was least sure
instead of generating the copy. Backends without logits report no forks, and nothing is planned.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence

from cyclefix.models.backend import Backend, Fork
from cyclefix.refine.fork import branch_prefixes, copy_probability, sampled_branches
from cyclefix.refine.prompt import (
    RefinePrompt,
    answer_prefix,
    build_refine_messages,
    copy_continuation,
)
from cyclefix.refine.source import normalized_code
from cyclefix.refine.types import RefineConfig, Target

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
        under_test = "\n".join(t.source.rstrip() for t in targets) + "\n"
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
        copies it, its forks and where its code starts; scoring stops below `unlikely`."""
        prefix = answer_prefix(code)
        copy = prefix + copy_continuation(code)

        def chance(forks: Sequence[Fork]) -> float:
            return copy_probability(copy, forks, len(prefix), temperature, self.config.top_p)

        # The chance only falls as more of the copy is scored.
        forks = self.backend.forks_along(
            build_refine_messages(prompt),
            prefix,
            copy.removeprefix(prefix),
            cancel=self.cancel,
            enough=lambda so_far: chance(so_far) < unlikely,
        )
        if not forks:
            return 0.0, (copy, (), len(prefix))
        return chance(forks), (copy, forks, len(prefix))
