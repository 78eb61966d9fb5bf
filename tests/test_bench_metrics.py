"""Bench metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from cyclefix.bench import metrics


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (5, 2, 1, 2 / 5),
        # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (5, 2, 2, 0.7),
        # 1 - C(7,3)/C(10,3) = 1 - 35/120
        (10, 3, 3, 1 - 35 / 120),
        # fewer failures than k: some draw must pass
        (4, 2, 3, 1.0),
        (10, 0, 5, 0.0),
        (10, 10, 10, 1.0),
    ],
)
def test_pass_at_k_matches_the_binomial_formula(n: int, c: int, k: int, expected: float) -> None:
    assert metrics.pass_at_k(n, c, k) == pytest.approx(expected)
    if n - c >= k:
        assert metrics.pass_at_k(n, c, k) == pytest.approx(
            1 - math.comb(n - c, k) / math.comb(n, k)
        )


@pytest.mark.parametrize(("n", "c", "k"), [(0, 0, 1), (3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4)])
def test_pass_at_k_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        metrics.pass_at_k(n, c, k)


def test_mean_pass_at_k_averages_over_tasks() -> None:
    # Task A: 2 of 4 pass (pass@1 0.5, pass@2 1 - 1/6); task B: 0 of 4.
    assert metrics.mean_pass_at_k([(4, 2), (4, 0)], 1) == pytest.approx(0.25)
    assert metrics.mean_pass_at_k([(4, 2), (4, 0)], 2) == pytest.approx((1 - 1 / 6) / 2)
    assert metrics.mean_pass_at_k([], 1) == 0.0


def test_fix_rate_counts_only_runs_that_failed_at_round_zero() -> None:
    initially_failing = [True, True, False, True]
    passing_now = [True, False, True, True]
    assert metrics.fix_rate(initially_failing, passing_now) == pytest.approx(2 / 3)
    assert metrics.fix_rate([False, False], [True, True]) is None
    with pytest.raises(ValueError):
        metrics.fix_rate([True], [True, False])


def test_copy_detection_ignores_layout_comments_and_docstrings() -> None:
    faulty = "def f(x):\n    return x + 1\n"
    same = 'def f(x):\n    """Add one."""\n    # bump\n    return  x+1   # comment\n\n'
    assert metrics.is_copy(same, faulty)
    assert metrics.is_copy("    def f(x):\n        return x + 1\n", faulty)
    assert not metrics.is_copy("def f(x):\n    return x + 2\n", faulty)
    assert not metrics.is_copy("def g(x):\n    return x + 1\n", faulty)


def test_copy_rate_and_rounds_to_fix() -> None:
    assert metrics.copy_rate(1, 4) == 0.25
    assert metrics.copy_rate(0, 0) is None
    with pytest.raises(ValueError):
        metrics.copy_rate(3, 2)
    assert metrics.rounds_to_fix([1, 1, 3]) == pytest.approx((5 / 3, 1.0))
    assert metrics.rounds_to_fix([1, 2, 3, 4]) == (2.5, 2.5)
    assert metrics.rounds_to_fix([]) is None


def test_tokens_per_second() -> None:
    assert metrics.tokens_per_second(100, 4.0) == 25.0
    assert metrics.tokens_per_second(100, 0.0) is None
    assert metrics.median([3.0, 1.0, 2.0]) == 2.0
    assert metrics.median([]) is None
