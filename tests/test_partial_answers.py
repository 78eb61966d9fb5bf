"""refine.partial: a failed answer's change, one hunk at a time, as answers of their own."""

from __future__ import annotations

from pathlib import Path

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import fix
from cyclefix.refine.partial import MAX_HUNKS, partial_answers
from cyclefix.refine.types import RefineConfig

SCALE = (
    "def scale(values, factor):\n"
    "    out = []\n"
    "    for v in values:\n"
    "        out.append(v * factor + 1)\n"
    "    return out\n"
)
# The fix (`+ 1` gone) beside a change that breaks a passing test (a tuple, not a list).
ANSWER = SCALE.replace(" + 1)", ")").replace("return out", "return tuple(out)")
TESTS = (
    "from scale import scale\n\n\n"
    "def test_scales():\n    assert scale([1, 2], 3) == [3, 6]\n\n\n"
    "def test_gives_a_list():\n    assert isinstance(scale([1], 1), list)\n"
)


def test_each_hunk_of_the_change_becomes_an_answer_of_its_own() -> None:
    parts = partial_answers({"scale.py": SCALE}, {"scale.py": ANSWER})
    assert parts == [
        SCALE.replace(" + 1)", ")"),
        SCALE.replace("return out", "return tuple(out)"),
    ]


def test_a_fixed_line_beside_a_rewritten_one_are_two_parts() -> None:
    base = "def pick(items):\n    first = items[0 + 1]\n    return first\n"
    changed = (
        "def pick(items):\n    first = items[0]\n    for x in items:\n        pass\n    return x\n"
    )
    assert partial_answers({"m.py": base}, {"m.py": changed})[0] == (
        "def pick(items):\n    first = items[0]\n    return first\n"
    )


def test_a_change_of_one_hunk_has_no_parts() -> None:
    assert partial_answers({"scale.py": SCALE}, {"scale.py": SCALE.replace(" + 1", "")}) == []


def test_a_rewrite_of_many_hunks_has_no_parts() -> None:
    lines = [f"    x{i} = {i}\n" for i in range(2 * MAX_HUNKS + 2)]
    base = "def f():\n" + "".join(lines)
    changed = "def f():\n" + "".join(
        line.replace("= ", "= -") if i % 2 == 0 else line for i, line in enumerate(lines)
    )
    assert partial_answers({"m.py": base}, {"m.py": changed}) == []


def test_a_methods_part_is_the_method_alone() -> None:
    base = "class Box:\n    def size(self):\n        return 1\n\n    def area(self):\n        return 2\n"
    changed = base.replace("return 1", "return 10").replace("return 2", "return 20")
    assert partial_answers({"box.py": base}, {"box.py": changed}) == [
        "def size(self):\n    return 10\n",
        "def area(self):\n    return 20\n",
    ]


def test_imports_the_answer_added_go_with_every_part() -> None:
    changed = "import math\n" + ANSWER
    parts = partial_answers({"scale.py": SCALE}, {"scale.py": changed})
    assert len(parts) == 2 and all(p.startswith("import math\n") for p in parts)


def test_a_change_outside_any_function_is_not_offered_alone() -> None:
    base = "LIMIT = 1\n\n\n" + SCALE
    changed = "LIMIT = 2\n\n\n" + SCALE.replace(" + 1)", ")")
    assert partial_answers({"scale.py": base}, {"scale.py": changed}) == [
        SCALE.replace(" + 1)", ")")
    ]


def test_the_loop_verifies_the_fix_a_failed_answer_held_beside_a_breaking_change(
    tmp_path: Path,
) -> None:
    (tmp_path / "scale.py").write_text(SCALE)
    (tmp_path / "test_scale.py").write_text(TESTS)
    backend = ScriptedBackend([f"```python\n{ANSWER}```"])
    config = RefineConfig(rounds=1, extend_to_budget=False, resamples=0)
    result = fix(tmp_path, backend, config=config)
    assert result.status == "fixed"
    verdicts = [(a.verdict, a.partial) for a in result.attempts]
    assert verdicts == [("regressed", False), ("passed", True)]
    assert len(backend.calls) == 1  # the part needed no generation
    assert (tmp_path / "scale.py").read_text() == SCALE  # the user's file is untouched


def test_a_comment_changed_beside_the_code_is_no_part() -> None:
    changed = ANSWER.replace("    out = []\n", "    # collect\n    out = []\n").replace(
        "return tuple(out)", "return out"
    )
    assert partial_answers({"scale.py": SCALE}, {"scale.py": changed}) == []


def test_a_part_that_only_drops_annotations_or_the_docstring_is_no_part() -> None:
    base = 'def f(x: int) -> int:\n    """Twice x."""\n    return x + 1\n'
    changed = "def f(x):\n    return x * 2\n"
    assert partial_answers({"m.py": base}, {"m.py": changed}) == []


def test_a_functions_changes_but_one_follow_its_changes_alone() -> None:
    # The fix is two of the three changes: `total` added by one and used by another.
    base = (
        "def mean(values):\n"
        "    count = len(values)\n"
        "    if not values:\n"
        "        return 0\n"
        "    return sum(values) / (count + 1)\n"
    )
    fixed = base.replace("values)\n    if", "values)\n    total = sum(values)\n    if").replace(
        "sum(values) / (count + 1)", "total / count"
    )
    changed = fixed.replace("return 0", "return None")
    parts = partial_answers({"m.py": base}, {"m.py": changed})
    assert len(parts) == 3 + 2
    assert fixed not in parts[:3]
    assert fixed in parts[3:]
    assert len(set(parts)) == len(parts)


def test_two_changes_have_no_changes_but_one_beside_their_parts() -> None:
    assert len(partial_answers({"scale.py": SCALE}, {"scale.py": ANSWER})) == 2
