"""What the code under test may not replace in a candidate's run: the machinery that runs and
reports the tests, and what the tests call.

A candidate's code runs inside the test process. Rebinding `_pytest.python.Function.runtest`
to a no-op, a collected test's function, or the name a test module imported the code under
test by, would make the tests after it pass without testing anything. The plugin takes a
`Baseline` when the session starts (pytest and its plugins loaded, no test module imported
yet) and the collected tests when collection ends; after each test, `changed` names what no
longer is what it was. Code inside the process could still defeat this (it can read and write
the process's memory); this stops the rebinding any code can do in one line.

Shipped next to the pytest plugin (as ``_cyclefix_integrity``), so it may import nothing but
the standard library and must run on Python 3.9.
"""

from __future__ import annotations

import builtins
import sys
import types
import unittest.case
from collections.abc import Iterable
from typing import Any

# The modules whose functions and classes run the tests and make their reports.
MACHINERY = (
    "_pytest.runner",
    "_pytest.python",
    "_pytest.reports",
    "_pytest.main",
    "_pytest.nodes",
    "_pytest.outcomes",
    "_pytest.skipping",
    "_pytest.fixtures",
    "_pytest.unittest",
    "_pytest.python_api",  # pytest.approx's comparisons
    "_pytest.raises",  # pytest.raises (pytest 8.4+; in python_api before)
    "pluggy._callers",
    "pluggy._hooks",
    "pluggy._manager",
    "pluggy._result",
)
# The modules whose classes' methods the tests call to judge (`self.assertEqual`): their code
# only, as test code may set their data (`unittest.TestCase.maxDiff = None`).
JUDGING = (unittest.case,)
# Names shown in one finding, at most.
MAX_NAMED = 3
_MISSING: Any = object()
# The builtins' names but the dunders every module has its own of (`__name__`, `__doc__`).
_BUILTIN_NAMES = frozenset(n for n in vars(builtins) if not n.startswith("__"))


def _is_code(value: Any) -> bool:
    return callable(value) or isinstance(
        value, (types.ModuleType, property, classmethod, staticmethod)
    )


class _Owner:
    """A module (its code-like names) or a class (every member, or its code-like ones) as it
    was."""

    def __init__(
        self, label: str, owner: Any, members: dict[str, Any], closed: bool, code_only: bool
    ) -> None:
        self.label = label
        self.owner = owner
        self.members = members
        self.closed = closed  # a class: a member added since shadows its bases
        self.code_only = code_only
        # A module's lookups of builtins it does not define: a name added since shadows the
        # builtin there (`test_calc.abs = ...`).
        shadowable = isinstance(owner, types.ModuleType) and owner is not builtins
        self.builtins_used = _BUILTIN_NAMES - set(vars(owner)) if shadowable else frozenset()

    def _now(self) -> dict[str, Any]:
        now = dict(vars(self.owner))
        return {k: v for k, v in now.items() if _is_code(v)} if self.code_only else now

    def changed(self) -> list[str]:
        now = self._now()
        found = [
            f"{self.label}.{name}"
            for name, value in self.members.items()
            if now.get(name, _MISSING) is not value
        ]
        if self.closed and len(now) != len(self.members):
            found.extend(f"{self.label}.{name}" for name in now if name not in self.members)
        # After every test: one set operation in C, over the smaller of the two.
        current = vars(self.owner)
        if self.builtins_used and not current.keys().isdisjoint(self.builtins_used):
            found.extend(
                f"{self.label}.{name}" for name in sorted(self.builtins_used & current.keys())
            )
        return found

    def admit_new_members(self) -> None:
        """Members added since join, as they are now (a rebound one keeps its old value)."""
        if self.closed:
            for name, value in self._now().items():
                self.members.setdefault(name, value)


def _owners(module: types.ModuleType, code_only: bool = False) -> list[_Owner]:
    """The module's code-like names, and each class it defines with all its members (its
    code-like ones where `code_only`)."""
    name = module.__name__
    code = {attr: value for attr, value in list(vars(module).items()) if _is_code(value)}
    owners = [_Owner(name, module, code, closed=False, code_only=False)]
    for value in code.values():
        if isinstance(value, type) and getattr(value, "__module__", None) == name:
            label = f"{name}.{value.__name__}"
            members = dict(vars(value))
            if code_only:
                members = {k: v for k, v in members.items() if _is_code(v)}
            owners.append(_Owner(label, value, members, closed=True, code_only=code_only))
    return owners


class Baseline:
    """The identities of everything a candidate may not rebind, and what differs later."""

    def __init__(self, extra_modules: Iterable[types.ModuleType] = ()) -> None:
        modules = [sys.modules[m] for m in MACHINERY if m in sys.modules]
        self.owners: list[_Owner] = []
        for module in [*modules, *extra_modules]:
            self.owners.extend(_owners(module))
        for module in JUDGING:
            self.owners.extend(_owners(module, code_only=True))
        # What tests look up by name to judge: pytest's names (`pytest.approx`) and the
        # builtins (`abs(x - y) < 1e-9`); the names only, for a builtin type takes no new member.
        for looked_up in (sys.modules.get("pytest"), builtins):
            if looked_up is not None:
                code = {a: v for a, v in list(vars(looked_up).items()) if _is_code(v)}
                self.owners.append(_Owner(looked_up.__name__, looked_up, code, False, False))
        self.plugins: list[Any] = []
        # Collected test functions by node id, with their code, and the test modules'
        # code-like names.
        self.test_functions: dict[str, Any] = {}
        self.test_codes: dict[str, Any] = {}
        self.test_modules: list[_Owner] = []

    def pin(self, label: str, owner: Any, names: Iterable[str]) -> None:
        """`owner`'s attributes `names` as they are now (an object the machinery holds, such
        as pytest's hook relay), and no method of it shadowed by one set on the object."""
        pinned = {name: vars(owner)[name] for name in names if name in vars(owner)}
        self.owners.append(_Owner(label, owner, pinned, closed=False, code_only=False))
        methods = {k: v for k, v in vars(owner).items() if _is_code(v)}
        self.owners.append(_Owner(label, owner, methods, closed=True, code_only=True))

    def take_plugins(self, plugins: Iterable[Any]) -> None:
        self.plugins = list(plugins)

    def settle(self) -> None:
        """Collection is over: members pytest added to its classes while collecting (a
        once-per-class flag) join the baseline; a member rebound meanwhile stays a finding."""
        for owner in self.owners:
            owner.admit_new_members()

    def take_tests(self, items: Iterable[Any]) -> None:
        """The collected tests' functions and the names their modules bound to code."""
        seen = set()
        for item in items:
            function = getattr(item, "obj", None)
            if function is not None:
                self.test_functions[item.nodeid] = function
                self.test_codes[item.nodeid] = _code(function)
            module = getattr(item, "module", None)
            if isinstance(module, types.ModuleType) and id(module) not in seen:
                seen.add(id(module))
                code = {a: v for a, v in list(vars(module).items()) if _is_code(v)}
                self.test_modules.append(
                    _Owner(module.__name__, module, code, closed=False, code_only=False)
                )

    def changed(self, plugins: Iterable[Any], item: Any = None) -> list[str]:
        """What differs from the baseline: rebound names of the machinery or of the test
        modules, plugins registered or removed, and `item`'s own function or methods."""
        found: list[str] = []
        for owner in (*self.owners, *self.test_modules):
            found.extend(owner.changed())
        # A module made an instance of another class answers lookups of its tests its way.
        found.extend(m.label for m in self.test_modules if type(m.owner) is not types.ModuleType)
        current = {id(p) for p in plugins}
        if self.plugins and current != {id(p) for p in self.plugins}:
            found.append("the registered pytest plugins")
        if item is not None:
            expected = self.test_functions.get(item.nodeid)
            function = getattr(item, "obj", None)
            if expected is not None and not (
                _same_function(function, expected)
                and _code(function) is self.test_codes[item.nodeid]
            ):
                found.append(f"{item.nodeid}'s test function")
            overridden = [a for a in ("runtest", "setup", "teardown") if a in vars(item)]
            found.extend(f"{item.nodeid}.{a}" for a in overridden)
        return found


def _same_function(a: Any, b: Any) -> bool:
    """The same function, a method bound to another instance of the test class included (a
    class's tests get a fresh instance; unittest's items rebind theirs at setup)."""
    return getattr(a, "__func__", a) is getattr(b, "__func__", b)


def _code(function: Any) -> Any:
    """The code a test function runs: swapping it (`__code__`) keeps the function's identity."""
    return getattr(getattr(function, "__func__", function), "__code__", None)


def describe(found: list[str]) -> str:
    """One line for the failing test: what was replaced."""
    named = ", ".join(f"`{name}`" for name in found[:MAX_NAMED])
    more = f" and {len(found) - MAX_NAMED} more" if len(found) > MAX_NAMED else ""
    return (
        f"the code under test replaced {named}{more}, which runs or reports the tests: "
        "the tests cannot judge it"
    )
