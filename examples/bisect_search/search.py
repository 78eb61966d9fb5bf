"""Searching in sorted sequences."""

from collections.abc import Sequence


def find_index(items: Sequence[int], target: int) -> int:
    """Index of `target` in the sorted `items`, or -1 when it is absent (binary search)."""
    lo, hi = 0, len(items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            lo = mid
        else:
            hi = mid - 1
    return -1


def contains(items: Sequence[int], target: int) -> bool:
    """True when `target` is in the sorted `items`."""
    return find_index(items, target) != -1
