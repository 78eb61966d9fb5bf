"""MBPP+ scoring oracle: compare a candidate with the reference solution on EvalPlus inputs.

This module is copied next to the hidden tests of each MBPP+ task and imported there, so it
uses only the standard library. It follows EvalPlus (Liu et al. 2023): JSON inputs get their
tuples, sets and complex numbers back per task; floats compare with a tolerance; a few tasks
compare as sets or only check that a value came back. Each input has EvalPlus's time limit:
four times the reference's time on it, at least one second.
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

# Tasks whose output order is not specified: compare as sets.
SET_EQUAL_TASKS = frozenset(
    {
        "similar_elements",
        "find_char_long",
        "common_in_nested_lists",
        "extract_singly",
        "larg_nnum",
        "intersection_array",
        "find_dissimilar",
        "Diff",
    }
)
# Tasks whose output is not comparable (e.g. a regex match object): only "not None" counts.
NOT_NONE_TASKS = frozenset({"check_str", "text_match_three", "text_starta_endb"})

# Which arguments JSON turned from tuples into lists, by MBPP task number.
_EACH_ARG_TUPLE = {
    2,
    116,
    132,
    143,
    222,
    261,
    273,
    394,
    399,
    421,
    424,
    429,
    470,
    560,
    579,
    596,
    616,
    630,
    726,
    740,
    744,
    809,
}
_EACH_ARG_TUPLES = {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}
_FIRST_ARG_TUPLES = {75, 413, 444, 753}
_SECOND_ARG_TUPLE = {106, 750}
_FIRST_ARG_TUPLE = {250, 405, 446, 617, 720, 763, 808}
_NESTED_TUPLES = {259, 401, 445}
_ALL_TUPLES = {580, 615, 791}

DEFAULT_FLOAT_ATOL = 1e-6
RTOL = 1e-7
# EvalPlus's DEFAULT_GT_TIME_LIMIT_FACTOR and DEFAULT_MIN_TIME_LIMIT (evalplus/config.py).
TIME_LIMIT_FACTOR = 4.0
MIN_TIME_LIMIT = 1.0


class InputTimeout(AssertionError):
    """The candidate ran past an input's time limit."""


def time_limit_for(reference_seconds: float) -> float:
    return max(MIN_TIME_LIMIT, TIME_LIMIT_FACTOR * reference_seconds)


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after `seconds` (SIGALRM, as EvalPlus does). The test runner's own
    alarm (its per-test timeout) is kept: when it comes first it is left alone, else it is
    armed again for its remaining time afterwards. A no-op off the main thread."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return
    outer, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer and outer <= seconds:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise InputTimeout(f"timed out after {seconds:.2f} s")

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
        if outer:
            left = outer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), outer_interval)


def _all_tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_all_tuples(item) for item in value)
    return value


def deserialize(task: int, inputs: Sequence[Any]) -> list[Any]:
    """Each input's argument list with the Python types JSON could not keep."""
    out: list[Any] = []
    for inp in inputs:
        args: list[Any]
        if task in _EACH_ARG_TUPLE:
            args = [tuple(arg) for arg in inp]
        elif task in _EACH_ARG_TUPLES:
            args = [[tuple(item) for item in arg] for arg in inp]
        elif task in _FIRST_ARG_TUPLES:
            args = [[tuple(item) for item in inp[0]], inp[1]]
        elif task in _SECOND_ARG_TUPLE:
            args = [inp[0], tuple(inp[1])]
        elif task == 115:
            args = [[set(item) if isinstance(item, list) and item else {} for item in inp[0]]]
        elif task == 124:
            args = [float(inp[0]), complex(inp[1])]
        elif task in _FIRST_ARG_TUPLE:
            args = [tuple(inp[0]), *inp[1:]]
        elif task in _NESTED_TUPLES:
            args = [tuple(tuple(item) for item in arg) for arg in inp]
        elif task == 278:
            args = [tuple(tuple(i) if isinstance(i, list) else i for i in inp[0])]
        elif task == 307:
            args = [tuple(inp[0]), inp[1], inp[2]]
        elif task == 722:
            args = [{key: tuple(value) for key, value in inp[0].items()}, *inp[1:]]
        elif task == 252:
            args = [complex(inp[0])]
        elif task in _ALL_TUPLES:
            args = list(_all_tuples(inp))
        else:
            args = list(inp)
        out.append(args)
    return out


def is_floats(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, list | tuple) and value:
        return all(isinstance(item, float) for item in value)
    return False


def _close(actual: Any, expected: Any, atol: float) -> bool:
    if isinstance(expected, list | tuple):
        if not isinstance(actual, list | tuple) or len(actual) != len(expected):
            return False
        return all(_close(a, e, atol) for a, e in zip(actual, expected, strict=True))
    try:
        diff = abs(actual - expected)
        return bool(diff <= atol + RTOL * abs(expected)) or (
            isinstance(actual, float)
            and isinstance(expected, float)
            and math.isnan(actual)
            and math.isnan(expected)
        )
    except TypeError:
        return False


def _surface_area(base_edge: float, height: float) -> int:
    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant) / 2)


def _digit_distance(a: int, b: int) -> int:
    sa, sb = str(a), str(b)
    width = max(len(sa), len(sb))
    return sum(abs(int(x) - int(y)) for x, y in zip(sa.zfill(width), sb.zfill(width), strict=True))


def matches(entry: str, actual: Any, expected: Any, atol: float, args: Sequence[Any]) -> bool:
    """EvalPlus's verdict for one input: exact, with its special cases, else within tolerance."""
    exact = bool(actual == expected)
    if entry == "are_equivalent":
        exact = True  # the reference itself is disputed; any answer counts
    elif entry == "sum_div":
        exact = exact or actual == 0
    elif entry == "surface_Area":
        try:
            exact = exact or abs(actual - _surface_area(*args)) <= atol
        except TypeError:
            exact = False
    elif entry == "digit_distance_nums":
        exact = exact or actual == _digit_distance(*args)
    elif entry in SET_EQUAL_TASKS:
        try:
            exact = set(actual) == set(expected)
        except TypeError:
            exact = False
    elif entry in NOT_NONE_TASKS:
        exact = actual == expected if isinstance(actual, bool) else expected == (actual is not None)
    if exact:
        return True
    if atol == 0 and is_floats(expected):
        atol = DEFAULT_FLOAT_ATOL
    if atol == 0:
        return False
    return type(actual) is type(expected) and _close(actual, expected, atol)


def _shown(args: Sequence[Any]) -> str:
    shown = ", ".join(repr(a) for a in args)
    return shown[:300] + "..." if len(shown) > 300 else shown


def check_inputs(
    task: int,
    entry: str,
    candidate: Callable[..., Any],
    reference: Callable[..., Any],
    inputs: Sequence[Any],
    atol: float,
) -> int:
    """Run both on every input; raise AssertionError at the first difference; return the count."""
    for args in deserialize(task, inputs):
        reference_args = copy.deepcopy(args)
        started = time.perf_counter()
        expected = reference(*reference_args)
        limit = time_limit_for(time.perf_counter() - started)
        if entry in NOT_NONE_TASKS:
            expected = expected is not None
        candidate_args = copy.deepcopy(args)
        try:
            with time_limit(limit):
                actual = candidate(*candidate_args)
        except InputTimeout as exc:
            raise InputTimeout(f"Input: {_shown(args)}; {exc}") from None
        if not matches(entry, actual, expected, atol, args):
            raise AssertionError(
                f"Input: {_shown(args)}; Expected output: {expected!r:.300}; "
                f"Actual output: {actual!r:.300}"
            )
    return len(inputs)
