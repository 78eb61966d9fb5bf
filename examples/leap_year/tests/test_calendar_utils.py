from calendar_utils import day_of_year, days_in_month, is_leap_year


def test_ordinary_leap_year():
    assert is_leap_year(2024)


def test_common_year():
    assert not is_leap_year(2023)


def test_century_is_not_leap():
    assert not is_leap_year(1900)


def test_fourth_century_is_leap():
    assert is_leap_year(2000)


def test_february_lengths():
    assert days_in_month(2024, 2) == 29
    assert days_in_month(2023, 2) == 28


def test_day_of_year():
    assert day_of_year(2023, 3, 1) == 60
