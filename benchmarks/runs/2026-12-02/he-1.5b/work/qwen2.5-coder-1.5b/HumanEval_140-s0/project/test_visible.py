"""The examples of the task description: the only tests the model may learn from."""

from solution import *  # noqa: F403


def test_example_1():
    assert fix_spaces("Example") == 'Example'


def test_example_2():
    assert fix_spaces("Example 1") == 'Example_1'


def test_example_3():
    assert fix_spaces(" Example 2") == '_Example_2'


def test_example_4():
    assert fix_spaces(" Example   3") == '_Example-3'
