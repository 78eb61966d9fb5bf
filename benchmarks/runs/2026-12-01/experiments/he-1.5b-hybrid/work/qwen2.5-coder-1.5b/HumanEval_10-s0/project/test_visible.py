"""The examples of the task description: the only tests the model may learn from."""

from solution import *  # noqa: F403


def test_example_1():
    assert make_palindrome('') == ''


def test_example_2():
    assert make_palindrome('cat') == 'catac'


def test_example_3():
    assert make_palindrome('cata') == 'catac'
