"""An invoice: lines of quantity times unit price, and a tax rate in percent."""

from __future__ import annotations

from dataclasses import dataclass, field

from invoicing.money import format_cents, percent_of


@dataclass(frozen=True)
class Line:
    description: str
    quantity: int
    unit_cents: int


@dataclass
class Invoice:
    tax_percent: int
    lines: list[Line] = field(default_factory=list)

    def add(self, description: str, quantity: int, unit_cents: int) -> None:
        self.lines.append(Line(description, quantity, unit_cents))

    def subtotal(self) -> int:
        """Sum of the lines, in cents."""
        return sum(line.quantity * line.unit_cents for line in self.lines)

    def tax(self) -> int:
        """The tax on the subtotal, in cents."""
        return percent_of(self.subtotal(), self.tax_percent)

    def total(self) -> int:
        return self.subtotal() + self.tax()

    def summary(self) -> str:
        """One line: subtotal, tax and total, e.g. "subtotal 10.00 + tax 2.00 = 12.00"."""
        return (
            f"subtotal {format_cents(self.subtotal())} + tax {format_cents(self.tax())}"
            f" = {format_cents(self.total())}"
        )
