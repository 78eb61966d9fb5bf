"""Small helpers for numeric time series."""


def mean(values: list[float]) -> float:
    """Arithmetic mean of a non-empty list."""
    if not values:
        raise ValueError("mean of an empty series")
    return sum(values) / len(values)


def moving_average(values: list[float], window: int) -> list[float]:
    """Return the mean of every run of `window` consecutive values.

    >>> moving_average([1, 2, 3, 4], 2)
    [1.5, 2.5, 3.5]
    """
    if window <= 0:
        raise ValueError("window must be positive")
    return [mean(values[i : i + window]) for i in range(len(values) - window)]


def cumulative_sum(values: list[float]) -> list[float]:
    """Running totals: [1, 2, 3] -> [1, 3, 6]."""
    total = 0.0
    out = []
    for v in values:
        total += v
        out.append(total)
    return out
