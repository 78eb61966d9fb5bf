"""What a failing test says: the failing statement, the compared values, the call's input.

failures.py calls `assert_details` or `crash_details` for the test's failing line; this module
reads the test's source (parsed once per file) and the frames' locals, and never runs project
code but the `repr` of values the test already computed. Like the plugin it runs in the user's
interpreter from the runner's private folder (as ``_cyclefix_assertions``), so it imports only
the standard library, pytest and its sibling copies, and runs on Python 3.9.
"""

from __future__ import annotations

import ast
import importlib.util
import reprlib
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cyclefix.runner import protocol

MESSAGE_LIMIT = 2000
VALUE_LIMIT = 1000
SOURCE_LIMIT = 4000
# Builtins that wrap the call under test in an assert (len(f(x)) == 3): look inside them.
WRAPPER_CALLS = frozenset(
    {
        "len", "sorted", "list", "tuple", "set", "frozenset", "dict", "str", "int", "float",
        "bool", "abs", "round", "sum", "min", "max", "repr", "type", "reversed", "any", "all",
        "isinstance", "next", "iter", "approx",
    }
)  # fmt: skip
# How an operator reads when the actual value stands on its right: `2 < f(x)` is `f(x) > 2`.
MIRRORED_OPS = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
# What pytest_assertrepr_compare saw of the failing comparison: (operator, left, right).
Compared = tuple[str, str, str]


class CyclefixTestTimeout(BaseException):
    """Raised inside a test that ran past its time budget (BaseException: `except Exception`
    in user code does not swallow it)."""


def bound(text: str, limit: int) -> str:
    """Keep the head and tail of `text`, with a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    marker_budget = 40
    keep = max(limit - marker_budget, 2)
    head = keep // 2
    tail = keep - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n... [{cut} characters cut] ...\n{text[len(text) - tail :]}"


def clean(text: str) -> str:
    """Make text safe to encode as UTF-8 (lone surrogates from undecodable bytes)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# How deep objects without a repr of their own are opened (a linked list shows two nodes).
FIELDS_DEPTH = 2


def safe_repr(value: object, limit: int = VALUE_LIMIT) -> str:
    """repr() of a value the test computed; huge containers are abbreviated, failures named."""
    try:
        size = len(value) if isinstance(value, (list, tuple, set, frozenset, dict)) else 0
        huge = size > 10_000  # abbreviated: the full repr could be megabytes
        if huge:
            text = f"{reprlib.Repr().repr(value)}  # {size} items"
        else:
            text = _fields_repr(value, FIELDS_DEPTH) or repr(value)
    except CyclefixTestTimeout:
        raise
    except Exception as exc:  # a broken __repr__ must not hide the failure
        text = f"<repr of {type(value).__name__} failed: {type(exc).__name__}>"
    return clean(bound(text, limit))


def _fields_repr(value: object, depth: int) -> str | None:
    """`Node(value=1, successor=None)` for an object whose class keeps object's repr (which
    shows only an address); None for anything else. Nested objects `depth` levels deep."""
    if depth <= 0 or type(value).__repr__ is not object.__repr__:
        return None
    fields = getattr(value, "__dict__", None)
    if not isinstance(fields, dict):
        return None
    shown = ", ".join(
        f"{name}={_fields_repr(field, depth - 1) or repr(field)}"
        for name, field in fields.items()
        if not name.startswith("_")
    )
    return f"{type(value).__name__}({shown})"


def message_of(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<str() of {type(exc).__name__} failed>"


class ParsedFile:
    """A source file read and parsed once per process (failures in one file share it)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines()
        self.tree = ast.parse(text)
        self.functions: dict[int, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.statements: list[ast.stmt] = []
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[node.lineno] = node
                for decorator in node.decorator_list:
                    self.functions.setdefault(decorator.lineno, node)
            if isinstance(node, ast.stmt):
                self.statements.append(node)

    def function_at(self, first_line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        return self.functions.get(first_line)

    def block(self, node: ast.stmt) -> str:
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        end = node.end_lineno or node.lineno
        return textwrap.dedent("\n".join(self.lines[start - 1 : end]))

    def statement_at(self, line: int) -> str | None:
        """The innermost statement on `line`; for a compound one, only its header."""
        best: ast.stmt | None = None
        for node in self.statements:
            end = node.end_lineno or node.lineno
            if node.lineno <= line <= end and (best is None or node.lineno >= best.lineno):
                best = node
        if best is None:
            return None
        end = best.end_lineno or best.lineno
        body = getattr(best, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
            end = max(best.lineno, body[0].lineno - 1)
        return textwrap.dedent("\n".join(self.lines[best.lineno - 1 : end])).strip()


_PARSED: dict[str, ParsedFile | None] = {}


def parsed_file(filename: str) -> ParsedFile | None:
    if filename not in _PARSED:
        try:
            with open(filename, "rb") as handle:
                text = importlib.util.decode_source(handle.read())
            _PARSED[filename] = ParsedFile(text)
        except (OSError, SyntaxError, ValueError, UnicodeDecodeError, RecursionError):
            _PARSED[filename] = None
    return _PARSED[filename]


def assert_details(
    compared: Compared | None,
    details: protocol.Details,
    statement: str,
    exc: BaseException,
    function: FunctionSource,
    after_test: list[Any],
) -> None:
    """Fill assert_source, explanation, input, expected and actual for a failing assert."""
    message = message_of(exc)
    if statement.startswith("assert"):
        details["assert_source"] = clean(bound(statement, SOURCE_LIMIT))
        details["assert_explanation"] = clean(bound(message, MESSAGE_LIMIT))
    try:
        tree = ast.parse(textwrap.dedent(statement))
    except SyntaxError:
        return
    node = tree.body[0] if tree.body else None
    test_locals = function.locals
    if isinstance(node, ast.Assert):
        _compare_details(compared, details, node.test, statement, message, test_locals, function)
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        # self.assertEqual(CALL, EXPECTED) and friends: the values are unittest's locals.
        _unittest_details(details, node.value, statement, after_test, test_locals, function)


def crash_details(details: protocol.Details, statement: str, function: FunctionSource) -> None:
    """For a test line that raised: the input the call crashed on, and what the assert on that
    line wanted from it (`assert not search(a, b)` crashing says only where; that it should
    have returned a false value tells the model what the code must do instead)."""
    source = textwrap.dedent(statement)
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a compound statement's header (`with ...:`)
        return
    if not tree.body:
        return
    node = tree.body[0]
    details["input"] = _input_for(node, source, function)
    details["expected"] = _wanted_from_call(node, source, function.locals)


def _wanted_from_call(node: ast.stmt, source: str, test_locals: dict[str, Any]) -> str | None:
    if not isinstance(node, ast.Assert):
        return None
    test = node.test
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        op_text = _op_text(test.ops[0])
        other: ast.AST = test.comparators[0]
        if _call_under_test(other) is not None and _call_under_test(test.left) is None:
            other, op_text = test.left, MIRRORED_OPS.get(op_text, op_text)
        if op_text in ("in", "not in"):
            return None
        value = _local_repr(other, source, test_locals)
        if value is None:
            return None
        return value if op_text == "==" else f"{op_text} {value}"
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return "a false value"
    return "a true value" if _call_under_test(test) is not None else None


def _frame_locals(entry: Any) -> dict[str, Any]:
    try:
        return dict(entry.frame.f_locals)
    except Exception:
        return {}


class FunctionSource:
    """The failing test function's source and AST, to find how a compared local was computed."""

    def __init__(self, test_entry: Any) -> None:
        self.source = ""
        self.tree: ast.AST | None = None
        self.locals = _frame_locals(test_entry)
        # Where the test's names were bound when it failed: its locals, then its module.
        self.scopes: tuple[dict[str, Any], ...] = (self.locals,)
        self.inputs: dict[str, Any] = {}
        self.failing_line = test_entry.lineno + 1
        try:
            self.scopes = (self.locals, test_entry.frame.f_globals)
            code = test_entry.frame.code.raw
            parsed = parsed_file(code.co_filename)
            node = parsed.function_at(code.co_firstlineno) if parsed is not None else None
        except Exception:
            return
        if parsed is not None and node is not None:
            self.source = parsed.text
            self.tree = node
            # The test's parameters (parametrize, fixtures) are its inputs: show their values.
            names = [
                a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)
            ]
            self.inputs = {n: self.locals[n] for n in names if n != "self" and n in self.locals}

    def last_call_assigned_to(self, name: str) -> str | None:
        """Arguments of the call under test in the last `name = ...` before the failing line."""
        if self.tree is None:
            return None
        found: ast.Call | None = None
        for sub in ast.walk(self.tree):
            if not isinstance(sub, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                continue
            if sub.lineno >= self.failing_line:
                continue
            targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets) and sub.value:
                inner = _call_under_test(sub.value)
                if inner is not None and (found is None or sub.lineno >= found.lineno):
                    found = inner
        return None if found is None else _call_arguments(self.source, found, self.inputs)


def _segment(source: str, node: ast.AST) -> str:
    text = ast.get_source_segment(source, node)
    return text if text is not None else ast.unparse(node)


def _call_under_test(node: ast.AST) -> ast.Call | None:
    """The call a value comes from, looking through len(...), sorted(...) and such."""
    fallback: ast.Call | None = None
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            name = _call_name(sub)
            if name not in WRAPPER_CALLS:
                return sub
            fallback = fallback or sub
    return fallback


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _call_arguments(source: str, call: ast.Call, inputs: dict[str, Any] | None = None) -> str:
    """The call's argument list; a test parameter (`x`, `*args`) shows its value, not its name."""
    values = inputs or {}

    def given(node: ast.expr) -> Any:
        return values[node.id] if isinstance(node, ast.Name) and node.id in values else _MISSING

    parts: list[str] = []
    for arg in call.args:
        value = given(arg.value if isinstance(arg, ast.Starred) else arg)
        if value is _MISSING:
            parts.append(_segment(source, arg))
        elif isinstance(arg, ast.Starred) and isinstance(value, (list, tuple)):
            parts += [safe_repr(v) for v in value]
        else:
            parts.append(("*" if isinstance(arg, ast.Starred) else "") + safe_repr(value))
    for kw in call.keywords:
        value = given(kw.value)
        if value is _MISSING:
            text = _segment(source, kw.value)
            parts.append(f"{kw.arg}={text}" if kw.arg else f"**{text}")
        elif kw.arg is None and isinstance(value, dict):
            parts += [f"{k}={safe_repr(v)}" for k, v in value.items()]
        else:
            parts.append(f"{kw.arg}={safe_repr(value)}" if kw.arg else f"**{safe_repr(value)}")
    return ", ".join(parts)


_MISSING = object()


def _input_for(side: ast.AST, source: str, function: FunctionSource) -> str | None:
    """The arguments of the call under test: in the assert itself, or where a local was set."""
    call = _call_under_test(side)
    if call is not None:
        return _call_arguments(source, call, function.inputs)
    if isinstance(side, ast.Name):
        return function.last_call_assigned_to(side.id)
    return None


def _local_repr(node: ast.AST, source: str, test_locals: dict[str, Any]) -> str | None:
    if isinstance(node, ast.Name) and node.id in test_locals:
        return safe_repr(test_locals[node.id])
    if isinstance(node, ast.Constant):
        return repr(node.value)
    try:
        return repr(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _compare_details(
    compared: Compared | None,
    details: protocol.Details,
    test: ast.expr,
    statement: str,
    message: str,
    test_locals: dict[str, Any],
    function: FunctionSource,
) -> None:
    source = textwrap.dedent(statement)
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right = test.left, test.comparators[0]
        op_text = _op_text(test.ops[0])
        if compared is not None and compared[0] == op_text:
            left_value: str | None = compared[1]
            right_value: str | None = compared[2]
        else:  # no rewritten assert: fall back to the test frame's locals
            left_value = _local_repr(left, source, test_locals)
            right_value = _local_repr(right, source, test_locals)
        left_is_call = _call_under_test(left) is not None
        right_is_call = _call_under_test(right) is not None
        if right_is_call and not left_is_call:
            actual_node, actual, expected = right, right_value, left_value
            if op_text == "in":
                expected = None if left_value is None else f"contains {left_value}"
            elif op_text == "not in":
                expected = None if left_value is None else f"does not contain {left_value}"
            elif op_text != "==" and expected is not None:
                expected = f"{MIRRORED_OPS.get(op_text, op_text)} {expected}"
        else:
            actual_node, actual, expected = left, left_value, right_value
            if op_text != "==" and expected is not None:
                expected = f"{op_text} {expected}"
        details["input"] = _input_for(actual_node, source, function)
        details["expected"] = expected
        details["actual"] = actual
        return
    negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
    subject = test.operand if isinstance(test, ast.UnaryOp) and negated else test
    details["input"] = _input_for(subject, source, function)
    details["expected"] = "a false value" if negated else "a true value"
    first = message.split("\n", 1)[0].strip()
    prefix = "assert not " if negated else "assert "
    if first.startswith(prefix):
        details["actual"] = clean(bound(first[len(prefix) :], VALUE_LIMIT))
    else:
        details["actual"] = _local_repr(subject, source, test_locals)


def _op_text(op: ast.cmpop) -> str:
    return {
        ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
        ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
    }[type(op)]  # fmt: skip


def _unittest_details(
    details: protocol.Details,
    call: ast.Call,
    statement: str,
    after_test: list[Any],
    test_locals: dict[str, Any],
    function: FunctionSource,
) -> None:
    name = _call_name(call)
    if not name.startswith("assert") or not call.args:
        return
    source = textwrap.dedent(statement)
    details["assert_source"] = clean(bound(statement, SOURCE_LIMIT))
    details["assert_explanation"] = details.get("exc_message")
    first_value: str | None = None
    second_value: str | None = None
    for entry in after_test:  # unittest's own frames hold both values as locals
        frame_locals = _frame_locals(entry)
        if "first" in frame_locals and "second" in frame_locals:
            first_value = safe_repr(frame_locals["first"])
            second_value = safe_repr(frame_locals["second"])
            break
    if first_value is None:
        first_value = _local_repr(call.args[0], source, test_locals)
        if len(call.args) > 1:
            second_value = _local_repr(call.args[1], source, test_locals)
    actual_node = call.args[0]
    actual, expected = first_value, second_value
    if len(call.args) > 1 and _call_under_test(call.args[1]) and not _call_under_test(call.args[0]):
        actual_node, actual, expected = call.args[1], second_value, first_value
    details["input"] = _input_for(actual_node, source, function)
    if name in ("assertTrue", "assertFalse"):
        expected = "a true value" if name == "assertTrue" else "a false value"
    details["actual"] = actual
    details["expected"] = expected
