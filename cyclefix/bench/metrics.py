"""Scoreboard arithmetic: pass@k, fix rate, copy rate, rounds to fix, speed. Pure functions."""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterable, Sequence

from cyclefix.refine.source import normalized_code


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k from n samples of which c pass (Chen et al. 2021).

    1 - C(n-c, k) / C(n, k), computed as a product so large n does not overflow.
    """
    if n < 1 or k < 1:
        raise ValueError(f"pass@k needs n >= 1 and k >= 1 (got n={n}, k={k})")
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n (got c={c}, n={n})")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task (got {n})")
    if n - c < k:
        return 1.0
    fail_all = 1.0
    for i in range(n - c + 1, n + 1):
        fail_all *= 1.0 - k / i
    return 1.0 - fail_all


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> float:
    """pass@k averaged over tasks, each given as (samples, passing samples)."""
    values = [pass_at_k(n, c, k) for n, c in counts]
    return sum(values) / len(values) if values else 0.0


def fix_rate(initially_failing: Sequence[bool], passing_now: Sequence[bool]) -> float | None:
    """Share of the runs that failed at round 0 and pass now; None when none failed.

    Both sequences are per run (task and sample), in the same order.
    """
    if len(initially_failing) != len(passing_now):
        raise ValueError("fix_rate needs one entry per run in both sequences")
    failing = [now for before, now in zip(initially_failing, passing_now, strict=True) if before]
    if not failing:
        return None
    return sum(failing) / len(failing)


def is_copy(candidate: str, faulty: str) -> bool:
    """A refinement that is the faulty code again, ignoring whitespace, comments and docstrings.

    Uses the refine loop's own normalizer so the bench and the product agree on what a copy is.
    """
    return normalized_code(candidate) == normalized_code(faulty)


def copy_rate(copies: int, attempts: int) -> float | None:
    """Share of refinement attempts that were copies; None when there were no attempts."""
    if attempts < 0 or not 0 <= copies <= attempts:
        raise ValueError(f"copy_rate needs 0 <= copies <= attempts (got {copies}/{attempts})")
    return copies / attempts if attempts else None


def rounds_to_fix(fixed_rounds: Sequence[int]) -> tuple[float, float] | None:
    """Mean and median of the round at which each fixed run was fixed; None when none was."""
    if not fixed_rounds:
        return None
    return statistics.fmean(fixed_rounds), float(statistics.median(fixed_rounds))


def tokens_per_second(completion_tokens: int, decode_seconds: float) -> float | None:
    """Generation speed: completion tokens over the seconds spent producing them."""
    if decode_seconds <= 0:
        return None
    return completion_tokens / decode_seconds


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


BOOTSTRAP_RESAMPLES = 2000


def bootstrap_interval(
    values: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of per-task values (e.g. pass@1 per task).

    Tasks are resampled with replacement; seeded, so a report is reproducible. None when empty.
    """
    if not values:
        return None
    if resamples < 1 or not 0 < level < 1:
        raise ValueError(
            f"bootstrap needs resamples >= 1 and 0 < level < 1 (got {resamples}, {level})"
        )
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    tail = (1 - level) / 2
    low = means[round(tail * (resamples - 1))]
    high = means[round((1 - tail) * (resamples - 1))]
    return low, high
