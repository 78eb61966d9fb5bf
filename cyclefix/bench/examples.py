"""Visible tests from a docstring's examples, checked against a reference solution.

HumanEval prompts show examples as doctests (`>>> f(1)` then `2`), as lines like
`f(1) == 2`, `f(1) ➞ 2`, `f(1) => 2`, `f(1) -> 3 - 1 = 2`, or as `Input: a = 1, b = 2` /
`Output: 3` blocks. Only those examples may give the model feedback; the full `check` tests
stay hidden. Examples the reference solution contradicts (typos in the dataset,
output we cannot parse) are dropped, so a visible test never asks for something wrong.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from cyclefix.errors import CyclefixError

# Separators between a call and its expected value in prose examples, longest first.
_SEPARATORS = ("should return", "==>", "==", "=>", "➞", "->", "→", "returns", "return", "=")
# Prose examples sometimes write booleans the JSON way.
_PROSE_WORDS = {"true": "True", "false": "False", "null": "None", "none": "None"}


@dataclass(frozen=True)
class Example:
    call: str  # an expression calling the entry point, e.g. "add(2, 3)"
    expected: str  # a Python literal, e.g. "5"

    def assert_line(self) -> str:
        return f"assert {self.call} == {self.expected}"


def _calls_entry(expr: str, entry: str) -> bool:
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return False
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry
        for node in ast.walk(tree)
    )


def _literal(text: str, prose: bool = False) -> str | None:
    """`text` as a normalized literal, or None when it is not one."""
    text = text.strip().rstrip(".,;").strip()
    if prose:
        text = _PROSE_WORDS.get(text, text)
    if not text:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return repr(value)


def _expected_value(text: str) -> str | None:
    """The literal a prose example expects: `5`, `5  # why`, `5 (why)` or a worked `3 - 1 = 2`."""
    aside = re.sub(r"\s\(.*\)\s*\.?$", "", text)  # `'No' (the name must...)`
    for candidate in (text, text.split("#", 1)[0], text.rsplit("=", 1)[-1], aside):
        expected = _literal(candidate, prose=True)
        if expected is not None:
            return expected
    return None


def _doctest_examples(lines: Sequence[str], entry: str) -> list[Example]:
    found: list[Example] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line.startswith(">>>"):
            i += 1
            continue
        expr = line[3:].strip()
        i += 1
        while i < len(lines) and lines[i].strip().startswith("..."):
            expr += "\n" + lines[i].strip()[3:].strip()
            i += 1
        output: list[str] = []
        while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(">>>"):
            output.append(lines[i].strip())
            i += 1
        if not output:
            # `>>> f(1) == 2` with nothing printed: the comparison is the example.
            example = _comparison_example(expr, entry)
            if example is not None:
                found.append(example)
            continue
        expected = _literal(" ".join(output))
        if expected is not None and _calls_entry(expr, entry):
            found.append(Example(expr, expected))
    return found


def _comparison_example(expr: str, entry: str) -> Example | None:
    try:
        tree = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return None
    if not (
        isinstance(tree, ast.Compare) and len(tree.ops) == 1 and isinstance(tree.ops[0], ast.Eq)
    ):
        return None
    call = ast.get_source_segment(expr, tree.left)
    expected_src = ast.get_source_segment(expr, tree.comparators[0])
    if call is None or expected_src is None or not _calls_entry(call, entry):
        return None
    expected = _literal(expected_src)
    return Example(call, expected) if expected is not None else None


def _call_end(text: str, start: int) -> int | None:
    """Index just past the parenthesis that closes the one opened at text[start]."""
    depth = 0
    quote: str | None = None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _prose_examples(lines: Sequence[str], entry: str) -> list[Example]:
    found: list[Example] = []
    pattern = re.compile(rf"(?<![\w.]){re.escape(entry)}\s*\(")
    for raw in lines:
        line = raw.strip()
        if line.startswith(">>>"):
            continue
        match = pattern.search(line)
        if match is None:
            continue
        end = _call_end(line, match.end() - 1)
        if end is None:
            continue
        call = line[match.start() : end]
        rest = line[end:].strip().lstrip("#").strip()  # `f(1)  # => 2` too
        for sep in _SEPARATORS:
            if rest.startswith(sep):
                expected = _expected_value(rest[len(sep) :])
                if expected is not None and _calls_entry(call, entry):
                    found.append(Example(call, expected))
                break
    return found


_INPUT = re.compile(r"^input\s*:\s*(.*)$", re.IGNORECASE)
_OUTPUT = re.compile(r"^output\s*:\s*(.*)$", re.IGNORECASE)
# `For n = 5, the sum is 5 and the output should be "101".`
_FOR_SHOULD_BE = re.compile(r"^for\s+(.+?)\s*\bshould be\s+(.+)$", re.IGNORECASE)
# `grid : [[0, 1]]` on its own line names an argument as `grid = [[0, 1]]` does.
_NAMED_LINE = re.compile(r"^([A-Za-z_]\w*)\s*:\s*(.+)$")


def _call_from_arguments(text: str, entry: str, params: Sequence[str]) -> str | None:
    """`entry(...)` from `[1, 2], 3` or `arr = [1, 2], k = 3`, arguments in `params` order.

    Names that match no parameter are taken in order when their number matches.
    """
    try:
        call = ast.parse(f"_f({text})", mode="eval").body
        if not isinstance(call, ast.Call):  # `1) + (2` closes the call early
            return None
        values = [ast.literal_eval(arg) for arg in call.args]
        named = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    if (values and named) or len(named) != len(call.keywords):
        return None
    if named:
        order = [p for p in params if p in named]
        if len(order) == len(named):
            values = [named[p] for p in order]
        elif len(named) == len(params):
            values = list(named.values())
        else:
            return None
    if not values or len(values) > len(params):
        return None
    return f"{entry}({', '.join(repr(v) for v in values)})"


def _for_should_be_example(
    match: re.Match[str], entry: str, params: Sequence[str]
) -> Example | None:
    # The arguments end before some space (`n = 5, the sum...`, `n = 5 the output...`): the
    # longest prefix that parses.
    text = match.group(1)
    cuts = [len(text)] + [m.start() for m in reversed(list(re.finditer(r"\s+", text)))]
    prefixes = (text[:cut].rstrip(",") for cut in cuts)
    call = next(filter(None, (_call_from_arguments(p, entry, params) for p in prefixes)), None)
    expected = _expected_value(match.group(2))
    return Example(call, expected) if call and expected is not None else None


def _input_output_examples(
    lines: Sequence[str], entry: str, params: Sequence[str]
) -> list[Example]:
    found: list[Example] = []
    stripped = [line.strip() for line in lines]
    for i, line in enumerate(stripped):
        for_match = _FOR_SHOULD_BE.match(line)
        if for_match:
            example = _for_should_be_example(for_match, entry, params)
            found += [example] if example else []
            continue
        start = _INPUT.match(line)
        if start is None:
            continue
        arguments = [start.group(1)] if start.group(1) else []
        for j in range(i + 1, min(i + 12, len(stripped))):
            end = _OUTPUT.match(stripped[j])
            if end is None:
                if _INPUT.match(stripped[j]):
                    break
                if stripped[j]:
                    named = _NAMED_LINE.match(stripped[j])
                    arguments.append(f"{named[1]}={named[2]}" if named else stripped[j])
                continue
            output = end.group(1) or next((s for s in stripped[j + 1 :] if s), "")
            call = _call_from_arguments(", ".join(arguments), entry, params)
            expected = _expected_value(output)
            if call and expected is not None:
                found.append(Example(call, expected))
            break
    return found


def _first_string(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The docstring-like string of a body that starts with an import before it."""
    for statement in node.body:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            value = statement.value.value
            return inspect.cleandoc(value) if isinstance(value, str) else None
    return None


def docstring_examples(prompt: str, entry: str) -> list[Example]:
    """Examples in the docstring of `entry` in `prompt`, in order, without duplicates."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return []
    doc = None
    params: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == entry:
            doc = ast.get_docstring(node) or _first_string(node)
            params = [a.arg for a in node.args.posonlyargs + node.args.args]
            break
    if not doc:
        return []
    lines = doc.splitlines()
    examples = (
        _doctest_examples(lines, entry)
        + _prose_examples(lines, entry)
        + _input_output_examples(lines, entry, params)
    )
    unique: list[Example] = []
    for ex in examples:
        if ex not in unique:
            unique.append(ex)
    return unique


# Runs in a child process: trusted reference code only, a time limit per task.
_CHECK_SCRIPT = r"""
import json, signal, sys
def on_alarm(signum, frame):
    raise TimeoutError
signal.signal(signal.SIGALRM, on_alarm)
jobs = json.load(sys.stdin)
out = {}
for key, job in jobs.items():
    good = []
    try:
        signal.alarm(20)
        ns = {"__name__": "reference"}
        exec("import math", ns)
        exec(job["code"], ns)
        for i, statement in enumerate(job["asserts"]):
            try:
                exec(statement, ns)
                good.append(i)
            except Exception:
                pass
    except BaseException:
        pass
    finally:
        signal.alarm(0)
    out[key] = good
json.dump(out, sys.stdout)
"""


def confirmed_asserts(
    jobs: dict[str, tuple[str, Sequence[str]]], timeout: float = 600.0
) -> dict[str, list[int]]:
    """Indexes of the assert statements that hold for the reference code, per task key.

    jobs: task key -> (reference code, assert statements). Runs in one child process.
    """
    payload = {
        key: {"code": code, "asserts": list(asserts)}
        for key, (code, asserts) in jobs.items()
        if asserts
    }
    if not payload:
        return {key: [] for key in jobs}
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _CHECK_SCRIPT],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        good: dict[str, list[int]] = json.loads(proc.stdout)
    except (subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        raise CyclefixError(
            f"could not check the visible tests against the reference: {exc}"
        ) from exc
    return {key: [i for i in good.get(key, []) if i < len(jobs[key][1])] for key in jobs}


def confirmed_examples(jobs: dict[str, tuple[str, Sequence[Example]]]) -> dict[str, list[Example]]:
    """Keep the examples that the reference code (task key -> (code, examples)) satisfies."""
    good = confirmed_asserts(
        {key: (code, [e.assert_line() for e in examples]) for key, (code, examples) in jobs.items()}
    )
    return {key: [examples[i] for i in good[key]] for key, (_code, examples) in jobs.items()}


def visible_test_module(examples: Sequence[Example], header: str = "") -> str:
    """test_visible.py: one test per example, in the `assert CALL == EXPECTED` form."""
    parts = [
        '"""The examples of the task description: the only tests the model may learn from."""',
        "",
        "from solution import *  # noqa: F403",
    ]
    if header.strip():
        parts += ["", header.rstrip()]
    for i, ex in enumerate(examples, 1):
        body = ex.assert_line().replace("\n", "\n    ")
        parts += ["", "", f"def test_example_{i}():", f"    {body}"]
    return "\n".join(parts) + "\n"
