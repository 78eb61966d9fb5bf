"""The module outline beside the rewritten function: bounded, but never at the cost of the
functions on the failing path."""

import ast

from cyclefix.refine.source import module_context

# A long __all__ first (as in more-itertools), then the helper the failing path runs through.
LONG_HEAD = "__all__ = [\n" + "".join(f"    'name{i}',\n" for i in range(60)) + "]\n"
MODULE = LONG_HEAD + (
    "\n"
    "def unrelated(x):\n"
    "    return x\n"
    "\n"
    "def helper(items):\n"
    "    total = 0\n"
    "    for item in items:\n"
    "        total += item\n"
    "    return total\n"
    "\n"
    "def target(items):\n"
    "    return helper(items) + 1\n"
)


def test_a_long_head_does_not_push_the_failing_path_out() -> None:
    context = module_context(MODULE, ast.parse(MODULE), {"target"}, whole={"helper"})
    assert "    for item in items:\n        total += item" in context


def test_the_outline_beyond_the_limit_is_one_marker() -> None:
    context = module_context(MODULE, ast.parse(MODULE), {"target"}, whole={"helper"})
    assert "    'name39'," not in context
    assert "def unrelated(x):" not in context
    assert context.count("# ...") == 1
    assert len(context.splitlines()) == 40 + 1 + 5


def test_a_short_module_is_shown_whole() -> None:
    context = module_context(MODULE, ast.parse(MODULE), {"target"}, limit=100, whole={"helper"})
    assert "# ..." not in context
    assert "def unrelated(x):" in context
