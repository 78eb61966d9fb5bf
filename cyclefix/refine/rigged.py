"""Answers that would make the tests' comparisons meaningless, turned away before any test runs.

A value whose `__eq__` answers without looking at what it is compared with, or
`unittest.mock.ANY`, makes `assert f(x) == expected` pass whatever `f` computes: a faked
pass, not a fix. Only what the answer adds counts; the user's own code may have either.
"""

from __future__ import annotations

import ast
from collections import Counter

from cyclefix.refine.tampering import static_text

# Comparison methods an always-equal (or always-ordered) value overrides, and the arithmetic
# a float check goes through (`abs(f(x) - expected) < 1e-9`).
COMPARISONS = frozenset(
    {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__sub__", "__rsub__", "__abs__"}
)
# Those whose answer an `assert` reads as true or false: anything but a bool passes or fails it
# whatever the values are (`str(x == y)` is always true).
ORDERINGS = frozenset({"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"})
# Builtin value types: a subclass the answer adds that redefines how its values compare,
# convert or print (VALUE_METHODS) passes for the right value without being it.
VALUE_TYPES = frozenset(
    {"int", "float", "complex", "bool", "str", "bytes", "bytearray", "tuple", "list", "dict",
     "set", "frozenset", "Decimal", "Fraction"}
)  # fmt: skip
VALUE_METHODS = COMPARISONS | frozenset(
    {"__format__", "__str__", "__repr__", "__bool__", "__float__", "__int__", "__index__",
     "__round__", "__hash__", "__add__", "__radd__", "__mul__", "__rmul__", "__truediv__",
     "__rtruediv__", "__neg__", "__pos__", "__len__", "__contains__", "__iter__", "__getitem__"}
)  # fmt: skip
# typing's names of builtin value types: `class N(typing.List[int])` subclasses `list`
# (read as such when imported from `typing` or written `typing.List`: `Set` is sympy's too).
_TYPING_NAMES = {
    "List": "list", "Dict": "dict", "Set": "set", "FrozenSet": "frozenset", "Tuple": "tuple",
    "Text": "str",
}  # fmt: skip
# Calls that compare (a helper of the class: `self._compare(other)`, `operator.eq`).
_COMPARING_CALLS = ORDERINGS | frozenset({"eq", "ne", "lt", "le", "gt", "ge", "isclose"})
_COMPARING_WORDS = ("cmp", "compar", "equal")
# What `_rigged_methods` names for a class whose members' names are computed.
_COMPUTED = "computed"
# Decorators that leave a method as written.
_KEEPING = frozenset({"abstractmethod", "override", "final"})
# Calls whose result is never a bool.
_NOT_BOOL_CALLS = frozenset(
    {"str", "repr", "format", "bytes", "list", "tuple", "dict", "set", "frozenset", "int",
     "float", "ascii", "hex", "oct", "bin"}
)  # fmt: skip


def rigged_comparisons(before: str, after: str) -> list[str]:
    """What `after` adds over `before` that compares equal (or unequal) to anything."""
    old, new = _findings(before), _findings(after)
    return list((new - old).elements())


def _findings(source: str) -> Counter[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return Counter()
    found: Counter[str] = Counter()
    aliases = _aliases(tree)
    for node in ast.walk(tree):
        for name in _rigged_methods(node):
            if name == _COMPUTED:
                found["a class built with member names known only at run time"] += 1
            else:
                found[f"`{name}` answers without comparing the two values"] += 1
        if _is_mock_any(node):
            found["`unittest.mock.ANY` equals anything"] += 1
        lying = _value_type_redefined(node, aliases)
        if lying:
            found[lying] += 1
        if _claims_a_class(node):
            found["a class that says it is another (`__class__` defined)"] += 1
    return found


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Names bound to a builtin value type (`Text = str`, `from typing import List`): a base
    written through them."""
    aliases = {
        target.id: node.value.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Name)
        and node.value.id in VALUE_TYPES
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    aliases.update(
        (alias.asname or alias.name, _TYPING_NAMES[alias.name])
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "typing"
        for alias in node.names
        if alias.name in _TYPING_NAMES
    )
    return aliases


def _claims_a_class(node: ast.AST) -> bool:
    """A class body that defines `__class__` (a property, a method, a value): `isinstance`
    then reads what the answer says."""
    return isinstance(node, ast.ClassDef) and "__class__" in _members(node)


def _members(node: ast.ClassDef) -> set[str]:
    """The names a class body defines: its methods and what it assigns."""
    defined: set[str] = set()
    for statement in node.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            defined.add(statement.name)
        elif isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            defined |= _bound_names(list(targets))
    return defined


def _value_type_redefined(node: ast.AST, aliases: dict[str, str]) -> str:
    """A subclass of a builtin value type (or an alias of one) that redefines how its values
    compare, convert or print: it passes for the right `int` or `str` whatever it holds
    (red-team pass 7)."""
    if not isinstance(node, ast.ClassDef):
        return ""
    redefined = sorted(_members(node) & VALUE_METHODS)
    if not redefined:
        return ""
    bases = [_base_type(base, aliases) for base in node.bases]
    value_type = next((b for b in bases if b in VALUE_TYPES), None)
    if value_type is not None:
        return f"`{node.name}` subclasses `{value_type}` and redefines `{redefined[0]}`"
    if None in bases:
        return f"`{node.name}` subclasses a base that cannot be read and redefines `{redefined[0]}`"
    return ""


def _base_type(base: ast.expr, aliases: dict[str, str]) -> str | None:
    """The name a class base reads as (`Generic[T]` as `Generic`, `typing.List[int]` as `list`,
    `type(0)` and `"".__class__` as the builtin type), or None when it cannot be read: a call,
    `*bases`, `bool.__base__`, `[int][0]` (red-team pass 9)."""
    if isinstance(base, ast.Subscript):
        base = base.value
    if (
        isinstance(base, ast.Call)
        and isinstance(base.func, ast.Name)
        and base.func.id == "type"
        and len(base.args) == 1
    ):
        base = ast.Attribute(value=base.args[0], attr="__class__", ctx=ast.Load())
    if isinstance(base, ast.Attribute) and base.attr == "__class__":
        return _literal_type(base.value)
    if isinstance(base, ast.Name):
        return aliases.get(base.id, base.id)
    if isinstance(base, ast.Attribute) and _dotted(base) and not base.attr.startswith("__"):
        typing = isinstance(base.value, ast.Name) and base.value.id == "typing"
        return _TYPING_NAMES.get(base.attr, base.attr) if typing else base.attr
    return None


def _dotted(node: ast.expr) -> bool:
    """`a.b.c`: names only."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def _literal_type(node: ast.expr) -> str | None:
    """The builtin type of a literal (`0`: int, `""`: str, `[]`: list), or None."""
    if isinstance(node, ast.Constant):
        return type(node.value).__name__
    literals: dict[type[ast.expr], str] = {
        ast.List: "list", ast.ListComp: "list", ast.Tuple: "tuple", ast.Dict: "dict",
        ast.DictComp: "dict", ast.Set: "set", ast.SetComp: "set", ast.JoinedStr: "str",
    }  # fmt: skip
    return literals.get(type(node))


def _rigged_methods(node: ast.AST) -> list[str]:
    """The comparison methods `node` defines that compare nothing: `def`, `name = lambda`
    (annotated or not), or one set through a mapping (`type(...)`'s) or `setattr`, which a
    fix of a function never needs."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in COMPARISONS:
        if any(_decorator_name(d) not in _KEEPING for d in node.decorator_list):
            return [node.name]  # the decorator's result is the method, whatever the body says
        rigged = _compares_nothing(node.body, node.args) or (
            node.name in ORDERINGS
            and (
                _answers_not_a_bool(node.body)
                or not _compares_anything(node.body)
                or _alternative_compares_nothing(node.body, node.args)
            )
        )
        return [node.name] if rigged else []
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = sorted(_bound_names(list(targets)) & COMPARISONS)
        value = node.value
        if names and isinstance(value, ast.Lambda):
            body: list[ast.stmt] = [ast.Return(value.body)]
            ordering = bool(set(names) & ORDERINGS)
            rigged = _compares_nothing(body, value.args) or (
                ordering
                and (
                    not _compares_anything(body) or _alternative_compares_nothing(body, value.args)
                )
            )
            return names[:1] if rigged else []
        # Only the same method of another class (`__eq__ = tuple.__eq__`) compares as it says;
        # `float.__ne__`, `operator.is_not` or a partialmethod answer something else.
        borrowed = value.attr if isinstance(value, ast.Attribute) else None
        single = len(targets) == 1 and isinstance(targets[0], ast.Name | ast.Attribute)
        return names[:1] if names and not (single and borrowed in names) else []
    if isinstance(node, ast.For | ast.AsyncFor | ast.comprehension | ast.NamedExpr):
        return sorted(_bound_names([node.target]) & COMPARISONS)[:1]
    # Bound by a `with ... as`, a `match` capture, an `import ... as` or an `except ... as`:
    # never how a comparison that compares is written.
    if isinstance(node, ast.withitem) and node.optional_vars is not None:
        return sorted(_bound_names([node.optional_vars]) & COMPARISONS)[:1]
    if isinstance(node, ast.MatchAs | ast.MatchStar | ast.ExceptHandler):
        return [node.name] if node.name in COMPARISONS else []
    if isinstance(node, ast.alias):
        bound = node.asname or node.name
        return [bound] if bound in COMPARISONS else []
    if isinstance(node, ast.Dict):
        keys = [static_text(key) if key is not None else None for key in node.keys]
        return [key for key in keys if key is not None and key in COMPARISONS]
    if isinstance(node, ast.Call) and any(k.arg in COMPARISONS for k in node.keywords):
        return [k.arg for k in node.keywords if k.arg is not None and k.arg in COMPARISONS]
    if _class_with_computed_members(node):
        return [_COMPUTED]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) > 1:
        named = static_text(node.args[1])
        if node.func.id == "setattr" and named is not None:
            return [named] if named in COMPARISONS else []
    return []


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else ""


def _bound_names(targets: list[ast.expr]) -> set[str]:
    """The names an assignment binds, unpacking included; `Cls.__eq__ = ...` binds `__eq__`."""
    names: set[str] = set()
    for target in targets:
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Attribute):
            names.add(target.attr)
        elif isinstance(target, ast.Subscript):  # locals()["__eq__"], a mapping for type()
            key = static_text(target.slice)
            if key is not None:
                names.add(key)
        elif isinstance(target, ast.Starred):
            names |= _bound_names([target.value])
        elif isinstance(target, ast.Tuple | ast.List):
            names |= _bound_names(list(target.elts))
    return names


def _class_with_computed_members(node: ast.AST) -> bool:
    """`type(name, bases, {...})` with a member name only known at run time."""
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "type"
        and len(node.args) == 3
    ):
        return False
    members = node.args[2]
    if not isinstance(members, ast.Dict):
        return True  # a mapping built elsewhere: its names cannot be read here
    return any(key is None or static_text(key) is None for key in members.keys)


def _answers_not_a_bool(body: list[ast.stmt]) -> bool:
    """Whether a comparison returns a value that is never a bool (`str(...)`, a list, a
    tuple): `assert` reads it as true or false whatever was compared."""
    returned = [n.value for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.Return)]
    return any(value is not None and _never_a_bool(value) for value in returned)


def _never_a_bool(value: ast.expr) -> bool:
    if isinstance(value, ast.Constant):
        return not isinstance(value.value, bool) and value.value is not None
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
        return value.func.id in _NOT_BOOL_CALLS
    return isinstance(
        value,
        ast.List | ast.Tuple | ast.Set | ast.Dict | ast.ListComp | ast.SetComp | ast.DictComp
        | ast.GeneratorExp | ast.JoinedStr | ast.Lambda,
    )  # fmt: skip


def _operands(args: ast.arguments) -> tuple[str | None, str | None]:
    """The names of the value a method belongs to and of what it is compared with."""
    params = [*args.posonlyargs, *args.args]
    own = params[0].arg if params else None
    operand = params[1].arg if len(params) > 1 else (args.vararg.arg if args.vararg else None)
    return own, operand


def _compares_nothing(body: list[ast.stmt], args: ast.arguments) -> bool:
    """Whether the method only ever returns one constant, returns constants without reading
    its operand, or computes its answer without reading both the value it belongs to and its
    operand (`return other == other`, `return self is self`, `return self * 0 == other * 0`)."""
    own, operand = _operands(args)
    returned = [n.value for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.Return)]
    if not returned:
        return False
    read = set().union(*map(_read_names, body))
    constants = [v.value for v in returned if isinstance(v, ast.Constant)]
    if len(constants) == len(returned):
        return len(set(constants)) == 1 or operand is None or operand not in read
    if any(v is not None and _whatever_compared(v) for v in returned):
        return True
    # super() compares the value it belongs to; NotImplemented leaves it to identity.
    if "super" in read or all(
        isinstance(v, ast.Name) and v.id == "NotImplemented" for v in returned
    ):
        return False
    return own is None or own not in read or (operand is not None and operand not in read)


def _read_names(node: ast.AST) -> set[str]:
    """The names `node` reads whose values reach its result: not those multiplied by zero,
    raised to the power 0 or taken from themselves (`x * 0`, `x ** 0`, `x - x`)."""
    if isinstance(node, ast.BinOp) and _annihilated(node):
        return set()
    if isinstance(node, ast.Name):
        return {node.id}
    return set().union(*map(_read_names, ast.iter_child_nodes(node)))


def _annihilated(node: ast.BinOp) -> bool:
    if isinstance(node.op, ast.Mult | ast.BitAnd):
        return _zero(node.left) or _zero(node.right)
    if isinstance(node.op, ast.Pow):
        return _zero(node.right)
    if isinstance(node.op, ast.Sub | ast.BitXor):
        return ast.dump(node.left) == ast.dump(node.right)
    return False


def _zero(node: ast.expr) -> bool:
    value = node.value if isinstance(node, ast.Constant) else None
    return isinstance(value, int | float | complex) and value == 0


def _alternative_compares_nothing(body: list[ast.stmt], args: ast.arguments) -> bool:
    """Whether an answer is an `or` (`|`, `any`) one of whose sides does not read both values:
    `x == o or isinstance(o, object)`, `x == o or len(repr(o)) >= 0` hold whatever `x` is.
    A falsy constant or NotImplemented leaves the answer to the other side."""
    own, operand = _operands(args)
    if own is None or operand is None:
        return False
    returned = [n.value for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.Return)]
    for value in returned:
        for node in ast.walk(value) if value is not None else []:
            alternatives = _alternatives(node)
            if alternatives is None or not alternatives[0]:
                continue
            for side in alternatives[1]:
                if _truth(side) is False or (
                    isinstance(side, ast.Name) and side.id == "NotImplemented"
                ):
                    continue
                read = _read_names(side)
                if "super" in read:
                    read.add(own)  # super() compares the value it belongs to
                if own not in read or operand not in read:
                    return True
    return False


def _compares_anything(body: list[ast.stmt]) -> bool:
    """Whether every value the method returns is a comparison: holds a `==`-like operator or
    a call that compares (`super().__eq__(other)`, `self._compare(other) < 0`), or is
    NotImplemented. `bool(str(self) or other)` reads both values and compares neither."""
    returned = [n.value for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.Return)]
    return all(value is None or _a_comparison(value) for value in returned)


def _a_comparison(value: ast.expr) -> bool:
    if isinstance(value, ast.Name) and value.id == "NotImplemented":
        return True
    if isinstance(value, ast.Constant) and isinstance(value.value, bool):
        return True  # a constant answer is judged by _compares_nothing
    for node in ast.walk(value):
        if isinstance(node, ast.Compare):
            return True
        if isinstance(node, ast.Call):
            name = _decorator_name(node)
            if name in _COMPARING_CALLS or name == "super":
                return True
            if any(word in name.lower() for word in _COMPARING_WORDS):
                return True
    return False


def _whatever_compared(value: ast.expr) -> bool:
    """An answer that holds whatever the values are: identity (`self is not other`: equal to
    all but itself; `(self, other) is not None`), `... or True`, `x == o | x != o`,
    `x == o and False`, or `x == o if ... else x != o`."""
    for node in ast.walk(value):
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Is | ast.IsNot) for op in node.ops
        ):
            return True
        if _alternatives(node) is not None and _truth(node) is not None:
            return True
        if isinstance(node, ast.IfExp) and (
            _either_way([node.body, node.orelse]) or _truth(node) is not None
        ):
            return True
    return False


def _alternatives(node: ast.AST) -> tuple[bool, list[ast.expr]] | None:
    """An `or` (True) or an `and` (False) and its sides: `or`/`and`, `|`/`&` over comparisons
    (not a bit mask), `any`/`all` of a list, tuple or set written out."""
    if isinstance(node, ast.BoolOp):
        return isinstance(node.op, ast.Or), list(node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr | ast.BitAnd):
        sides = _chained(node, type(node.op))
        if any(isinstance(side, ast.Compare | ast.BoolOp) for side in sides):
            return isinstance(node.op, ast.BitOr), sides
        return None
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("any", "all")
        and len(node.args) == 1
        and isinstance(node.args[0], ast.List | ast.Tuple | ast.Set)
    ):
        return node.func.id == "any", list(node.args[0].elts)
    return None


def _chained(node: ast.expr, op: type[ast.operator]) -> list[ast.expr]:
    """The sides of `a | b | c` (for `|`): a, b, c."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, op):
        return _chained(node.left, op) + _chained(node.right, op)
    return [node]


# Each comparison with its negation: `x == y or x != y` holds whatever x and y are.
_NEGATIONS = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE,
    ast.LtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In,
}  # fmt: skip


def _either_way(sides: list[ast.expr]) -> bool:
    """A comparison and its negation over the same operands among `sides`: true one way or the
    other (their `or`), never both (their `and`)."""
    seen: set[tuple[type, str]] = set()
    for value in sides:
        if isinstance(value, ast.Compare) and len(value.ops) == 1:
            operands = ast.unparse(value.left) + " | " + ast.unparse(value.comparators[0])
            op = type(value.ops[0])
            if (_NEGATIONS.get(op), operands) in seen:
                return True
            seen.add((op, operands))
    return False


def _truth(value: ast.AST) -> bool | None:
    """Whether `value` is true (or false) whatever the values are, or None when it depends on
    them: a constant, `not` of one, a literal container, `isinstance(o, object)`; an `or`
    with a true side or a comparison and its negation; an `and` with a false side or both."""
    if isinstance(value, ast.Constant):
        return bool(value.value)
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Not):
        inner = _truth(value.operand)
        return None if inner is None else not inner
    if isinstance(value, ast.List | ast.Tuple | ast.Set):
        return bool(value.elts)
    if isinstance(value, ast.Dict):
        return bool(value.keys)
    if isinstance(value, ast.Lambda):
        return True
    if isinstance(value, ast.IfExp):
        body = _truth(value.body)
        return body if body is not None and body == _truth(value.orelse) else None
    if isinstance(value, ast.Call) and _decorator_name(value) == "isinstance":
        kinds = value.args[1] if len(value.args) == 2 else None
        return True if isinstance(kinds, ast.Name) and kinds.id == "object" else None
    alternatives = _alternatives(value)
    if alternatives is None:
        return None
    either, sides = alternatives
    truths = [_truth(side) for side in sides]
    if either in truths or _either_way(sides):
        return either  # `... or True`, `x == o or x != o`; `... and False`, `x < o and x >= o`
    return (not either) if all(t is (not either) for t in truths) else None


def _is_mock_any(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom) and node.module in ("unittest.mock", "mock"):
        return any(alias.name == "ANY" for alias in node.names)
    if isinstance(node, ast.Attribute) and node.attr == "ANY":
        base = node.value
        return (isinstance(base, ast.Name) and base.id == "mock") or (
            isinstance(base, ast.Attribute) and base.attr == "mock"
        )
    return False
