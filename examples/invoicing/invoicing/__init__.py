"""A tiny invoicing package: amounts are integer cents, taxes are rounded half up."""

from invoicing.invoice import Invoice, Line
from invoicing.money import format_cents, percent_of

__all__ = ["Invoice", "Line", "format_cents", "percent_of"]
