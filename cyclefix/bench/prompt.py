"""Round 0, CYCLE's accelerate mode: description in, one complete function out, one shot."""

from __future__ import annotations

import ast
import re

from cyclefix.bench.evalplus_sanitize import sanitize
from cyclefix.bench.tasks import BenchTask
from cyclefix.models.backend import ChatMessage

# EvalPlus's chat prompt, the protocol behind the published one-shot figures (SEEDS.md): the
# request fenced after a fixed instruction, no system message (the chat template's default),
# and the answer opened for the model with a fixed sentence and a Python fence.
INSTRUCTION_PREFIX = (
    "Please provide a self-contained Python script that solves the following problem in a "
    "markdown code block:"
)
RESPONSE_PREFIX = (
    "Below is a Python script with a self-contained function that solves the problem and "
    "passes corresponding tests:"
)
ANSWER_PREFIX = f"{RESPONSE_PREFIX}\n```python\n"


def round_zero_answer(code: str) -> str:
    """`code` as a round-0 answer: what training teaches the model to write after the request."""
    return f"{ANSWER_PREFIX}{code.rstrip()}\n```"


# The answer ends at the closing fence, or where the demo code the model appends begins
# (top-level asserts, prints, a main guard, a "# Test cases" comment): that is thrown away.
STOP_SEQUENCES = ("\n```\n", "\nif __name__", "\nassert ", "\nprint(", "\n# Test", "\n# Example")

_FENCE = re.compile(r"```[ \t]*(?P<lang>[\w+-]*)[ \t]*\r?\n(?P<body>.*?)(?:\r?\n```|\Z)", re.DOTALL)
_DEFINES = re.compile(r"^\s*(async\s+def|def|class)\s", re.M)


def generation_messages(task: BenchTask) -> list[ChatMessage]:
    """Round 0's request; the answer starts with `ANSWER_PREFIX`."""
    return [ChatMessage("user", f"{INSTRUCTION_PREFIX}\n```\n{task.prompt.strip()}\n```\n")]


def answer_code(answer: str) -> str | None:
    """The code of a model's answer: its largest fenced Python block that defines something."""
    blocks = [
        m.group("body")
        for m in _FENCE.finditer(answer)
        if m.group("lang").lower() in ("", "python", "py", "python3") and m.group("body").strip()
    ]
    if blocks:
        defining = [b for b in blocks if _DEFINES.search(b)]
        return max(defining or blocks, key=len).rstrip() + "\n"
    text = answer.strip()
    if text and _DEFINES.search(text):
        return text + "\n"
    return None


def _docstring_literal(text: str, indent: str) -> str:
    body = text.replace("\\", "\\\\")
    quote = '"""' if '"""' not in body else "'''"
    body = body.replace(quote, "\\" + quote)
    lines = body.strip().splitlines()
    if len(lines) <= 1:
        return f"{indent}{quote}{body.strip()}{quote}\n"
    inner = "\n".join((indent + ln) if ln.strip() else "" for ln in lines)
    return f"{indent}{quote}\n{inner}\n{indent}{quote}\n"


def with_docstring(code: str, entry: str, description: str) -> str:
    """`code` with `description` as the entry function's docstring when it has none.

    Refinement rounds show the model its latest code; the docstring carries the intent there.
    """
    if not description.strip():
        return code
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    node = next(
        (
            n
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == entry
        ),
        None,
    )
    if node is None or ast.get_docstring(node) is not None or not node.body:
        return code
    first = node.body[0]
    if first.lineno == node.lineno:
        return code  # a one-line body after the colon has no place for a docstring
    lines = code.splitlines(keepends=True)
    indent = lines[first.lineno - 1][: first.col_offset]
    # Before the first statement (comments opening the body stay above it; still a docstring).
    at = first.lineno - 1
    doc = _docstring_literal(description, indent)
    return "".join(lines[:at]) + doc + "".join(lines[at:])


def _is_main_guard(node: ast.stmt) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def without_test_code(code: str) -> str:
    """The answer without the demo code it appends: top-level asserts, calls, prints, a
    `__main__` block. A failing demo assert would break the import of the whole module.
    Definitions, imports and assignments stay, as with EvalPlus's sanitizer.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    drop: list[tuple[int, int]] = []
    for i, node in enumerate(tree.body):
        is_docstring = (
            i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        )
        if (isinstance(node, ast.Assert | ast.Expr) and not is_docstring) or _is_main_guard(node):
            drop.append((node.lineno, node.end_lineno or node.lineno))
    if not drop:
        return code
    lines = code.splitlines(keepends=True)
    kept = [
        line for number, line in enumerate(lines, 1)
        if not any(start <= number <= end for start, end in drop)
    ]  # fmt: skip
    return "".join(kept).rstrip() + "\n"


def defines(code: str, entry: str) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    return any(
        isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == entry for n in tree.body
    )


def binds(code: str, name: str) -> bool:
    """Whether the module binds `name` at top level (def, class or `name = ...`): all EvalPlus
    asks of the entry point."""
    for node in ast.parse(code).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == name:
                return True
            continue
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
    return False


def fallback_solution(task: BenchTask) -> str:
    """What solution.py holds when the answer had no usable function: the signature, a stub.

    Refinement can still start from it (its feedback is the NotImplementedError).
    """
    signature = task.fallback_signature or f"def {task.entry_point}(*args):"
    doc = _docstring_literal(task.description, "    ") if task.description.strip() else ""
    stub = '    raise NotImplementedError("no usable function was generated")\n'
    return task.preamble + signature + "\n" + doc + stub


def evalplus_solution(task: BenchTask, answer: str) -> tuple[str, str]:
    """solution.py as EvalPlus would score the answer: its sanitizer's output, nothing added
    but the description as docstring (refinement reads the intent there; scoring ignores it)."""
    code = sanitize(answer.removeprefix(ANSWER_PREFIX), task.entry_point)
    try:
        ast.parse(code)
    except SyntaxError:
        return fallback_solution(task), "syntax_error"
    if not binds(code, task.entry_point):
        return fallback_solution(task), "no_code"
    return with_docstring(code.rstrip() + "\n", task.entry_point, task.description), "ok"


def assemble_solution(task: BenchTask, answer: str) -> tuple[str, str]:
    """solution.py for a round-0 answer, and what happened: "ok", "no_code" or "syntax_error"."""
    if task.protocol == "evalplus":
        return evalplus_solution(task, answer)
    code = answer_code(answer)
    if code is None:
        return fallback_solution(task), "no_code"
    source = task.preamble + code if task.preamble else code
    try:
        ast.parse(source)
    except SyntaxError:
        return fallback_solution(task), "syntax_error"
    source = without_test_code(source)
    if not defines(source, task.entry_point):
        return fallback_solution(task), "no_code"
    return with_docstring(source, task.entry_point, task.description), "ok"
