import pytest

from series import cumulative_sum, mean, moving_average


def test_mean():
    assert mean([1, 2, 3, 4]) == 2.5


def test_moving_average_pairs():
    assert moving_average([1, 2, 3, 4], 2) == [1.5, 2.5, 3.5]


def test_moving_average_whole_series():
    assert moving_average([2, 4, 6], 3) == [4.0]


def test_moving_average_rejects_bad_window():
    with pytest.raises(ValueError):
        moving_average([1, 2], 0)


def test_cumulative_sum():
    assert cumulative_sum([1, 2, 3]) == [1, 3, 6]
