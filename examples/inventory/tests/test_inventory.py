import pytest

from inventory import Inventory, OutOfStock


def test_add_and_total():
    inv = Inventory()
    inv.add("apple", 3)
    inv.add("pear", 2)
    assert inv.total() == 5


def test_remove_some():
    inv = Inventory({"apple": 3})
    inv.remove("apple", 2)
    assert inv.stock["apple"] == 1


def test_remove_too_many_raises():
    inv = Inventory({"apple": 3})
    with pytest.raises(OutOfStock):
        inv.remove("apple", 4)
    assert inv.stock["apple"] == 3
