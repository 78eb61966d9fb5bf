"""Suite loading: docstring examples, HumanEval/MBPP/MBPP+ tasks, round-0 answer handling."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from cyclefix.bench import mbpp_oracle
from cyclefix.bench.examples import (
    Example,
    confirmed_asserts,
    confirmed_examples,
    docstring_examples,
    visible_test_module,
)
from cyclefix.bench.folder import load_folder
from cyclefix.bench.harness import select_tasks
from cyclefix.bench.humaneval import load_humaneval
from cyclefix.bench.mbpp import INPUTS_FILE, load_mbpp, load_mbpp_plus
from cyclefix.bench.prompt import answer_code, assemble_solution, with_docstring
from cyclefix.bench.tasks import HIDDEN_TEST_FILE, BenchTask
from cyclefix.errors import CyclefixError

FIXTURES = Path(__file__).parent / "fixtures" / "bench"

DOCTEST_PROMPT = '''
def add(a: int, b: int) -> int:
    """Add two numbers.
    >>> add(2, 3)
    5
    >>> add(-1,
    ...     1)
    0
    >>> x = 3
    >>> add(1, 1) == 2
    >>> print("not an example")
    not an example
    """
'''

PROSE_PROMPT = '''
def flies(q, w):
    """Will it fly?
    Example:
    flies([3, 2, 3], 9) ➞ True
    flies([1, 2], 5) => false
    flies([3], 5) == True.
    flies("a", 1) -> 19 - 5 = 8
    flies("b", 2)   # => 'No' (too heavy)
    """
'''


def test_doctest_examples_are_parsed_with_continuations_and_comparisons() -> None:
    examples = docstring_examples(DOCTEST_PROMPT, "add")
    assert examples == [
        Example("add(2, 3)", "5"),
        Example("add(-1,\n1)", "0"),
        Example("add(1, 1)", "2"),
    ]


def test_prose_examples_accept_arrows_worked_sums_and_lowercase_booleans() -> None:
    examples = docstring_examples(PROSE_PROMPT, "flies")
    assert examples == [
        Example("flies([3, 2, 3], 9)", "True"),
        Example("flies([1, 2], 5)", "False"),
        Example("flies([3], 5)", "True"),
        Example('flies("a", 1)', "8"),
        Example('flies("b", 2)', "'No'"),
    ]


INPUT_OUTPUT_PROMPT = '''
def top(arr, k):
    import heapq
    """The k largest.

    Example 1:
        Input: arr = [3, 1, 2], k = 2
        Output: [3, 2]  # the two largest

    Example 2:
        Input:
            numbers : [5]
            count : 1
        Output: [5]

    Input: [1, 2]
    Output: not a literal
    For arr = [4], k = 1, the answer should be [4].
    For arr = [1, 2], k = 2 the output should be [2, 1]
    """
'''


def test_input_output_blocks_become_calls_in_parameter_order() -> None:
    # Named arguments go by parameter name, or in order when the names are not the
    # parameters'; a docstring after an import still counts; unparsable output is skipped.
    assert docstring_examples(INPUT_OUTPUT_PROMPT, "top") == [
        Example("top([3, 1, 2], 2)", "[3, 2]"),
        Example("top([5], 1)", "[5]"),
        Example("top([4], 1)", "[4]"),
        Example("top([1, 2], 2)", "[2, 1]"),
    ]


def test_examples_the_reference_contradicts_are_dropped() -> None:
    reference = "def add(a, b):\n    return a + b\n"
    wrong = [Example("add(2, 3)", "5"), Example("add(2, 2)", "5"), Example("add(1,", "2")]
    kept = confirmed_examples({"t": (reference, wrong)})
    assert kept == {"t": [Example("add(2, 3)", "5")]}
    # Reference code that does not even run confirms nothing.
    assert confirmed_asserts(
        {"t": ("raise ValueError", ["assert 1"]), "u": ("x = 1", ["assert x == 1"])}
    ) == {"t": [], "u": [0]}


def test_visible_module_is_one_test_per_example() -> None:
    text = visible_test_module([Example("add(2, 3)", "5"), Example("add(0, 0)", "0")])
    tree = ast.parse(text)
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert names == ["test_example_1", "test_example_2"]
    assert "assert add(2, 3) == 5" in text


def test_humaneval_has_every_problem_and_examples_for_most() -> None:
    tasks = load_humaneval()
    assert len(tasks) == 164
    with_visible = [t for t in tasks if t.visible_tests]
    assert 120 <= len(with_visible) < 164
    first = tasks[0]
    assert first.task_id == "HumanEval/0" and first.entry_point == "has_close_elements"
    assert first.preamble.startswith("from typing import List")
    assert "check(has_close_elements)" in first.hidden_files[HIDDEN_TEST_FILE]
    # The hidden tests never leak into what the model sees.
    assert "def check" not in first.prompt and "def check" not in first.visible_tests


def test_mbpp_takes_the_test_split_with_the_first_assert_visible() -> None:
    tasks = load_mbpp(FIXTURES / "mbpp")
    assert [t.task_id for t in tasks] == ["MBPP/11", "MBPP/12", "MBPP/14", "MBPP/17", "MBPP/18"]
    task = tasks[0]
    assert task.entry_point == "remove_Occ"
    assert task.visible_tests.count("def test_visible") == 1
    assert task.hidden_files[HIDDEN_TEST_FILE].count("def test_assert") == 3
    assert 'assert remove_Occ("hello","l") == "heo"' in task.prompt


def test_mbpp_plus_scores_reference_outputs_on_the_extra_inputs() -> None:
    tasks = load_mbpp_plus(FIXTURES / "mbpp")
    assert [t.task_id for t in tasks] == ["MBPP+/11", "MBPP+/12", "MBPP+/14"]
    data = json.loads(tasks[0].hidden_files[INPUTS_FILE])
    assert data["task"] == 11 and len(data["plus"]) == 10 and data["entry"] == "remove_Occ"


def test_missing_mbpp_data_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(CyclefixError, match="--data"):
        load_mbpp(tmp_path)


def test_oracle_restores_tuples_and_compares_like_evalplus() -> None:
    assert mbpp_oracle.deserialize(2, [[[1, 2], [3]]]) == [[(1, 2), (3,)]]
    assert mbpp_oracle.deserialize(580, [[[1, [2, 3]]]]) == [[(1, (2, 3))]]
    assert mbpp_oracle.deserialize(999, [[1, 2]]) == [[1, 2]]
    assert mbpp_oracle.matches("f", 0.30000000000000004, 0.3, 0, [])
    assert not mbpp_oracle.matches("f", 0.31, 0.3, 0, [])
    assert mbpp_oracle.matches("similar_elements", (5, 4), (4, 5), 0, [])
    assert not mbpp_oracle.matches("f", (5, 4), (4, 5), 0, [])
    assert mbpp_oracle.matches("check_str", object(), True, 0, [])
    assert mbpp_oracle.matches("f", [1.0, 2.0000001], [1.0, 2.0], 1e-3, [])

    def reference(x: int) -> int:
        return x * 2

    def wrong(x: int) -> int:
        return x * 2 if x < 3 else 0

    assert mbpp_oracle.check_inputs(999, "f", reference, reference, [[1], [5]], 0) == 2
    with pytest.raises(AssertionError, match="Input: 5"):
        mbpp_oracle.check_inputs(999, "f", wrong, reference, [[1], [5]], 0)


def test_folder_suite_finds_task_projects_and_their_hidden_tests() -> None:
    tasks = load_folder(FIXTURES / "folder")
    assert [t.task_id for t in tasks] == ["already_ok", "off_by_one", "overfit"]
    assert list(tasks[1].hidden_files) == ["hidden_tests/test_total_more.py"]
    with pytest.raises(CyclefixError):
        load_folder(FIXTURES / "mbpp")


def test_select_tasks_by_id_limit_and_seeded_subset() -> None:
    tasks = [BenchTask(task_id=f"t{i}", kind="generate") for i in range(10)]
    assert [t.task_id for t in select_tasks(tasks, limit=3)] == ["t0", "t1", "t2"]
    assert [t.task_id for t in select_tasks(tasks, ids=["t5", "t1"])] == ["t5", "t1"]
    subset = select_tasks(tasks, limit=4, task_seed=7)
    assert subset == select_tasks(tasks, limit=4, task_seed=7)
    assert [t.task_id for t in subset] != ["t0", "t1", "t2", "t3"]
    with pytest.raises(CyclefixError):
        select_tasks(tasks, ids=["nope"])


def test_answer_code_prefers_the_defining_block() -> None:
    answer = "Here:\n```python\nprint(f(1))\n```\nand\n```python\ndef f(x):\n    return x\n```\n"
    assert answer_code(answer) == "def f(x):\n    return x\n"
    assert answer_code("```python\ndef f(x):\n    return x") == "def f(x):\n    return x\n"
    assert answer_code("I cannot help with that.") is None


def _task() -> BenchTask:
    return BenchTask(
        task_id="t",
        kind="generate",
        entry_point="inc",
        preamble="import math\n\n\n",
        description="Add one to x.",
        fallback_signature="def inc(x: int) -> int:",
    )


def test_assemble_keeps_the_preamble_and_restores_the_docstring() -> None:
    solution, note = assemble_solution(_task(), "```python\ndef inc(x):\n    return x + 1\n```")
    assert note == "ok"
    assert solution.startswith("import math\n")
    namespace: dict[str, object] = {}
    exec(solution, namespace)
    fn = namespace["inc"]
    assert callable(fn) and fn(1) == 2
    assert fn.__doc__ == "Add one to x."


@pytest.mark.parametrize(
    ("answer", "note"),
    [
        ("no code here", "no_code"),
        ("```python\ndef inc(x:\n```", "syntax_error"),
        ("```python\ndef other(x):\n    return x\n```", "no_code"),
    ],
)
def test_unusable_answers_become_a_stub_to_refine(answer: str, note: str) -> None:
    solution, got = assemble_solution(_task(), answer)
    assert got == note
    assert "def inc(x: int) -> int:" in solution and "raise NotImplementedError" in solution
    ast.parse(solution)


def test_with_docstring_leaves_existing_docstrings_and_one_liners() -> None:
    has_doc = 'def f():\n    """Mine."""\n    return 1\n'
    assert with_docstring(has_doc, "f", "Other") == has_doc
    one_line = "def f(): return 1\n"
    assert with_docstring(one_line, "f", "Doc") == one_line
    tricky = with_docstring("def f():\n    return 1\n", "f", 'Quotes """ and \\ here\nline two')
    namespace: dict[str, object] = {}
    exec(tricky, namespace)
    doc = namespace["f"].__doc__
    assert doc is not None and 'Quotes """ and \\ here' in doc


def test_demo_code_after_the_answer_is_dropped() -> None:
    answer = fence_answer(
        '"""Module doc."""\n'
        "LIMIT = 3\n\n"
        "def inc(x):\n"
        "    # add one\n"
        "    return x + 1\n\n"
        "# Test the function\n"
        "assert inc(1) == 5\n"
        "print(inc(2))\n"
        'if __name__ == "__main__":\n'
        "    inc(3)\n"
    )
    solution, note = assemble_solution(_task(), answer)
    assert note == "ok"
    assert "assert" not in solution and "print" not in solution and "__main__" not in solution
    assert "LIMIT = 3" in solution
    body = solution.split("def inc(x):\n", 1)[1].splitlines()
    assert body[:2] == ["    # add one", '    """Add one to x."""']
    namespace: dict[str, object] = {}
    exec(solution, namespace)  # the failing demo assert no longer breaks the import


def fence_answer(code: str) -> str:
    return f"```python\n{code}```\n"
