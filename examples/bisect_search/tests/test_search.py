from search import contains, find_index


def test_finds_middle():
    assert find_index([1, 3, 5, 7, 9], 5) == 2


def test_finds_last():
    assert find_index([1, 3, 5, 7, 9], 9) == 4


def test_missing_value():
    assert find_index([1, 3, 5, 7, 9], 4) == -1


def test_contains():
    assert contains([2, 4, 6], 6)
    assert not contains([2, 4, 6], 7)
