"""Checks a candidate must pass before any test runs: it parses, its names resolve."""

from __future__ import annotations

import re

from pyflakes import messages as flake_messages
from pyflakes.api import check as flakes_check
from pyflakes.reporter import Reporter


class _Collect(Reporter):  # type: ignore[misc]
    def __init__(self) -> None:
        self.found: list[str] = []

    def unexpectedError(self, filename: str, msg: str) -> None:
        self.found.append(msg)

    def syntaxError(self, filename: str, msg: str, lineno: int, offset: int, text: str) -> None:
        self.found.append(f"SyntaxError: {msg} (line {lineno})")

    def flake(self, message: flake_messages.Message) -> None:
        if isinstance(message, flake_messages.UndefinedName | flake_messages.UndefinedLocal):
            self.found.append(f"NameError: {message.message % message.message_args}")


def undefined_names(source: str, filename: str = "<candidate>") -> list[str]:
    """pyflakes' undefined-name reports (and syntax errors) for one module's text."""
    collector = _Collect()
    flakes_check(source, filename, collector)
    return collector.found


def new_undefined_names(before: str, after: str, filename: str) -> list[str]:
    """Reports in `after` that `before` did not already have: the candidate's own mistakes."""
    old = set(undefined_names(before, filename))
    return [m for m in undefined_names(after, filename) if m not in old]


# Standard-library names small models use without importing them, and their modules.
_STDLIB_NAMES: dict[str, str] = {
    **dict.fromkeys(
        ["deque", "defaultdict", "Counter", "OrderedDict", "namedtuple"], "collections"
    ),
    **dict.fromkeys(["reduce", "lru_cache", "cache", "cmp_to_key", "partial"], "functools"),
    **dict.fromkeys(
        ["permutations", "combinations", "product", "accumulate", "chain", "groupby"],
        "itertools",
    ),
    **dict.fromkeys(["bisect_left", "bisect_right", "insort"], "bisect"),
    **dict.fromkeys(["heappush", "heappop", "heapify"], "heapq"),
    **dict.fromkeys(
        ["sqrt", "gcd", "floor", "ceil", "inf", "factorial", "comb", "isqrt", "prod"], "math"
    ),
    **dict.fromkeys(
        ["Decimal", "ROUND_HALF_UP", "ROUND_HALF_EVEN", "ROUND_HALF_DOWN", "ROUND_DOWN"],
        "decimal",
    ),
    "Fraction": "fractions",
    **dict.fromkeys(
        ["List", "Dict", "Tuple", "Set", "Optional", "Union", "Any", "Callable", "Iterable"],
        "typing",
    ),
}
_STDLIB_MODULES = frozenset(
    [
        "math",
        "heapq",
        "itertools",
        "functools",
        "collections",
        "re",
        "string",
        "bisect",
        "decimal",
        "fractions",
        "operator",
    ]
)
_UNDEFINED = re.compile(r"^NameError: undefined name '(\w+)'$")
# The names above that stand for a function, class or module once imported (not constants).
IMPORTED_CALLABLES = (
    frozenset(n for n in _STDLIB_NAMES if n != "inf" and not n.startswith("ROUND_"))
    | _STDLIB_MODULES
)


def stdlib_imports_for(problems: list[str]) -> list[str] | None:
    """Import lines that resolve every problem, when each is a well-known standard-library name
    the answer forgot to import (`deque`, `List`, `math`); else None: a real mistake."""
    lines: list[str] = []
    for problem in problems:
        match = _UNDEFINED.match(problem)
        name = match.group(1) if match else None
        if name in _STDLIB_MODULES:
            lines.append(f"import {name}")
        elif name in _STDLIB_NAMES:
            lines.append(f"from {_STDLIB_NAMES[name]} import {name}")
        else:
            return None
    return list(dict.fromkeys(lines))
