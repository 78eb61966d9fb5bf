"""The probe's values: a value a project function was given or gave back, rendered without
running any code of its classes.

No ``__repr__``, ``__eq__``, property or iteration hook of the project runs here: attributes are
read through the C slots of ``type`` and the builtin containers, so a hostile value cannot
raise, hang or print through it; every value is cut to a few characters. Shipped next to the
tracer (as ``_cyclefix_inert_repr``), so it imports only the standard library and runs on
Python 3.9.
"""

from __future__ import annotations

from types import FunctionType
from typing import Any

# Characters of one rendered value, and of a call's whole argument list.
VALUE_CHARS = 120
ARGUMENTS_CHARS = 300
_VARARGS, _VARKEYWORDS = 0x04, 0x08

# Attributes read through the C slots themselves, so no class of the project can intercept them.
_TYPE_QUALNAME = type.__dict__["__qualname__"]
_TYPE_MRO = type.__dict__["__mro__"]
_TYPE_DICT = type.__dict__["__dict__"]
_TYPE_MODULE = type.__dict__["__module__"]
_EXCEPTION_ARGS = BaseException.__dict__["args"]
# Exact types whose own repr is the standard library's: safe to call.
_PLAIN = (type(None), bool, float, complex)
# Items of a container shown before "...", and how deep containers are opened.
_ITEMS = 6
_DEPTH = 3


def _type_name(cls: Any) -> str:
    try:
        return str(_TYPE_QUALNAME.__get__(cls, type))
    except Exception:
        return "object"


def _instance_dict(value: Any) -> dict[str, Any] | None:
    """The instance's own attribute dict, when its class keeps the standard `__dict__` slot."""
    for klass in _TYPE_MRO.__get__(type(value), type):
        slot = _TYPE_DICT.__get__(klass, type).get("__dict__")
        if slot is not None:
            if type(slot).__name__ != "getset_descriptor":
                return None  # a property named __dict__ would run project code
            found = slot.__get__(value, type(value))
            return found if type(found) is dict else None
    return None


def _stdlib_value(value: Any) -> str | None:
    """The repr of the standard library's value types (Decimal, Fraction, dates), exact types
    only (a subclass may override __repr__); None for any other type."""
    cls = type(value)
    module = _TYPE_MODULE.__get__(cls, type)
    if type(module) is not str:
        return None
    if module in ("decimal", "_decimal", "_pydecimal") and _type_name(cls) == "Decimal":
        if len(value.as_tuple().digits) > 4 * VALUE_CHARS:
            return "Decimal(<many digits>)"
        return repr(value)
    if module == "fractions" and _type_name(cls) == "Fraction":
        return f"Fraction({_int(value.numerator)}, {_int(value.denominator)})"
    if module == "datetime" and _type_name(cls) in ("date", "datetime", "time", "timedelta"):
        return repr(value)
    return None


def _int(value: int) -> str:
    # Past ~4300 digits str() refuses (3.11+) and is quadratic before that: say the size only.
    if value.bit_length() > 4 * VALUE_CHARS:
        return f"<int of {value.bit_length()} bits>"
    return int.__repr__(value)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def _items(value: Any, depth: int) -> tuple[list[str], bool]:
    """Rendered items of a list, tuple, set or dict (or a subclass, read through the base)."""
    rendered: list[str] = []
    if issubclass(type(value), dict):
        pairs = dict.items(value)
        total = dict.__len__(value)
        for index, (key, item) in enumerate(pairs):
            if index == _ITEMS:
                break
            rendered.append(f"{_walk(key, depth + 1)}: {_walk(item, depth + 1)}")
        return rendered, total > _ITEMS
    if issubclass(type(value), (set, frozenset)):
        base: Any = set if issubclass(type(value), set) else frozenset
        total = base.__len__(value)
        for index, item in enumerate(base.__iter__(value)):
            if index == _ITEMS:
                break
            rendered.append(_walk(item, depth + 1))
        return rendered, total > _ITEMS
    base = list if issubclass(type(value), list) else tuple
    total = base.__len__(value)
    for item in base.__getitem__(value, slice(0, _ITEMS)):
        rendered.append(_walk(item, depth + 1))
    return rendered, total > _ITEMS


def _container(value: Any, depth: int) -> str:
    if depth >= _DEPTH:
        return "[...]" if issubclass(type(value), list) else "(...)"
    rendered, more = _items(value, depth)
    if more:
        rendered.append("...")
    inner = ", ".join(rendered)
    cls = type(value)
    if issubclass(type(value), dict):
        text = "{" + inner + "}"
    elif issubclass(type(value), list):
        text = "[" + inner + "]"
    elif issubclass(type(value), (set, frozenset)):
        text = "{" + inner + "}" if rendered else "set()"
    else:
        text = "(" + inner + ("," if len(rendered) == 1 else "") + ")"
    if cls in (dict, list, set, tuple):
        return text
    return f"{_type_name(cls)}{text if text[0] == '(' else '(' + text + ')'}"


def _instance(value: Any, depth: int) -> str:
    cls = type(value)
    name = _type_name(cls)
    if issubclass(type(value), BaseException):
        args = _EXCEPTION_ARGS.__get__(value, type(value))
        return name + _container(tuple.__getitem__(args, slice(0, _ITEMS)), depth)
    if issubclass(type(value), type):
        return f"<class {_type_name(value)}>"
    found = _instance_dict(value)
    # Only text keys (a key of another type could run its own __eq__ in a lookup).
    fields = {k: v for k, v in dict.items(found or {}) if type(k) is str}
    if not fields:
        return f"<{name} object>"
    if "_name_" in fields and "_value_" in fields:  # an Enum member
        return f"{name}.{fields['_name_']}" if type(fields["_name_"]) is str else name
    if depth >= _DEPTH:
        return f"{name}(...)"
    shown = [f"{key}={_walk(item, depth + 1)}" for key, item in list(fields.items())[:_ITEMS]]
    if len(fields) > _ITEMS:
        shown.append("...")
    return f"{name}({', '.join(shown)})"


def _walk(value: Any, depth: int = 0) -> str:
    cls = type(value)
    if cls in _PLAIN:
        return repr(value)
    if cls is int:
        return _int(value)
    if cls in (str, bytes, bytearray):
        shown = repr(value[:VALUE_CHARS])
        return shown + "..." if len(value) > VALUE_CHARS else shown
    if issubclass(cls, (list, tuple, dict, set, frozenset)):
        return _container(value, depth)
    text = _stdlib_value(value)
    if text is not None:
        return text
    if cls is FunctionType:
        return f"<function {value.__qualname__}>"
    return _instance(value, depth)


def inert_repr(value: Any, limit: int = VALUE_CHARS) -> str:
    """`value` rendered without running any code of its classes, at most `limit` characters."""
    try:
        return _cut(_walk(value), limit)
    except Exception as exc:  # a value of a shape not foreseen: say what it is, carry on
        return f"<{_type_name(type(value))} object (not shown: {type(exc).__name__})>"


def call_text(code: Any, frame_locals: dict[str, Any]) -> str:
    """`qualname(arg, ..., name=value)` from a frame's locals at its start."""
    names = code.co_varnames
    positional = code.co_argcount
    keyword_only = code.co_kwonlyargcount
    parts = [inert_repr(frame_locals.get(name)) for name in names[:positional]]
    at = positional + keyword_only
    if code.co_flags & _VARARGS:
        extra = frame_locals.get(names[at])
        if type(extra) is tuple:
            parts.extend(inert_repr(item) for item in extra[:_ITEMS])
        at += 1
    parts.extend(
        f"{name}={inert_repr(frame_locals.get(name))}"
        for name in names[positional : positional + keyword_only]
    )
    if code.co_flags & _VARKEYWORDS:
        extra = frame_locals.get(names[at])
        if type(extra) is dict:
            parts.extend(f"{key}={inert_repr(item)}" for key, item in list(extra.items())[:_ITEMS])
    qualname = getattr(code, "co_qualname", code.co_name)
    return f"{qualname}({_cut(', '.join(parts), ARGUMENTS_CHARS)})"
