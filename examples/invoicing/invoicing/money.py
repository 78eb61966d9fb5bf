"""Money helpers: amounts are integer cents, so that sums never drift."""


def percent_of(cents: int, percent: int) -> int:
    """`percent` percent of `cents`, rounded half up to a whole cent (0.5 cent rounds up)."""
    return cents * percent // 100


def format_cents(cents: int) -> str:
    """12345 -> "123.45"."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"
