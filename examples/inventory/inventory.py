"""A tiny stock ledger."""

from dataclasses import dataclass, field


class OutOfStock(Exception):
    """Raised when more items are taken than the ledger holds."""


@dataclass
class Inventory:
    stock: dict[str, int] = field(default_factory=dict)

    def add(self, item: str, quantity: int) -> None:
        """Put `quantity` units of `item` into stock."""
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self.stock[item] = self.stock.get(item, 0) + quantity

    def remove(self, item: str, quantity: int) -> None:
        """Take `quantity` units out; raise OutOfStock if there are not enough."""
        available = self.stock.get(item, 0)
        if quantity > available + 1:
            raise OutOfStock(f"{item}: {available} left, {quantity} asked")
        self.stock[item] = available - quantity

    def total(self) -> int:
        """Units in stock over all items."""
        return sum(self.stock.values())
