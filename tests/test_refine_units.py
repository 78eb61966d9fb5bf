"""Parsing answers, splicing functions, spotting copies, and localizing failures."""

from __future__ import annotations

import ast
import random
import textwrap
from pathlib import Path

import pytest

from cyclefix.models.backend import Choice, Fork, sampling_chances
from cyclefix.refine.fork import branch_prefixes, copy_probability, rejoins, sampled_branches
from cyclefix.refine.guard import new_undefined_names, stdlib_imports_for
from cyclefix.refine.localize import localize
from cyclefix.refine.parse import extract_code
from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.prompt import (
    RefinePrompt,
    answer_prefix,
    build_marker_prompt,
    build_refine_messages,
    copy_continuation,
)
from cyclefix.refine.round import assert_reach
from cyclefix.refine.source import (
    called_functions,
    function_spans,
    has_docstring,
    module_context,
    module_description,
    normalized_code,
    target_for_span,
)
from cyclefix.refine.splice import SpliceError, splice_candidate, with_imports
from cyclefix.refine.types import Target
from cyclefix.runner.results import Callee, Frame, TestCaseResult, TestRunResult

MODULE = textwrap.dedent(
    '''\
    """Stats."""
    import math


    def mean(xs):
        """Average."""
        return sum(xs) / len(xs)


    class Box:
        size: int = 0

        def grow(self, n):
            self.size -= n
            return self.size
    '''
)


def targets_for(source: str, *names: str, path: str = "stats.py") -> list[Target]:
    spans = {s.qualname: s for s in function_spans(ast.parse(source))}
    return [target_for_span(path, source, spans[n]) for n in names]


def test_extract_code_prefers_defining_fenced_block() -> None:
    answer = "Here is the fix:\n```python\ndef f(x):\n    return x + 1\n```\nUsage:\n```python\nf(2)\n```"
    assert extract_code(answer) == "def f(x):\n    return x + 1\n"


def test_extract_code_handles_unterminated_fence_and_bare_code() -> None:
    assert extract_code("```python\ndef f():\n    return 1") == "def f():\n    return 1\n"
    assert extract_code("def g():\n    return 2") == "def g():\n    return 2\n"
    assert extract_code("I am not sure what to do.") is None
    assert extract_code("```python\n\n```") is None


def test_normalized_code_ignores_layout_comments_and_docstrings() -> None:
    a = 'def f(x):\n    """Doc."""\n    # note\n    return x+1\n'
    b = "def f( x ):\n\n    return x + 1  # other\n"
    assert normalized_code(a) == normalized_code(b)
    assert normalized_code(a) != normalized_code("def f(x):\n    return x - 1\n")


def test_splice_replaces_function_and_method_keeping_indentation() -> None:
    targets = targets_for(MODULE, "mean", "Box.grow")
    answer = "def grow(self, n):\n    self.size += n\n    return self.size\n"
    spliced = splice_candidate({"stats.py": MODULE}, targets, answer)
    new = spliced.files["stats.py"]
    assert "        self.size += n\n" in new
    assert "self.size -= n" not in new
    assert spliced.replaced == ("Box.grow",)
    ast.parse(new)


def test_splice_accepts_class_wrapper_helpers_and_imports() -> None:
    targets = targets_for(MODULE, "mean")
    answer = textwrap.dedent(
        """\
        import statistics

        def _total(xs):
            return math.fsum(xs)

        def mean(xs):
            return _total(xs) / len(xs)

        print(mean([1, 2]))
        """
    )
    new = splice_candidate({"stats.py": MODULE}, targets, answer).files["stats.py"]
    assert "import statistics\n" in new
    assert new.index("def _total") < new.index("def mean")
    assert "print(" not in new
    ast.parse(new)


def test_splice_rejects_syntax_errors_and_unrelated_answers() -> None:
    targets = targets_for(MODULE, "mean")
    with pytest.raises(SpliceError) as err:
        splice_candidate({"stats.py": MODULE}, targets, "def mean(xs):\n    return (\n")
    assert err.value.verdict == "syntax_error"
    with pytest.raises(SpliceError) as err:
        splice_candidate({"stats.py": MODULE}, targets, "x = 1\n")
    assert err.value.verdict == "wrong_target"


def test_splice_keeps_crlf_line_endings() -> None:
    crlf = MODULE.replace("\n", "\r\n")
    targets = targets_for(crlf, "mean")
    new = splice_candidate({"stats.py": crlf}, targets, "def mean(xs):\n    return 0\n").files[
        "stats.py"
    ]
    assert "\r\n" in new and "\n" not in new.replace("\r\n", "")


def test_new_undefined_names_reports_only_the_candidates_mistakes() -> None:
    before = "import os\n\ndef f():\n    return missing_before\n"
    after = "import os\n\ndef f():\n    return missing_before + nope\n"
    problems = new_undefined_names(before, after, "m.py")
    assert problems == ["NameError: undefined name 'nope'"]


def test_module_context_elides_other_bodies() -> None:
    tree = ast.parse(MODULE)
    context = module_context(MODULE, tree, {"Box.grow"})
    assert "import math" in context
    assert "def mean(xs):" in context and "return sum" not in context
    assert "class Box:" in context and "size: int = 0" in context
    assert "self.size -= n" not in context


def test_refine_messages_hold_intent_code_and_feedback() -> None:
    msgs = build_refine_messages(
        RefinePrompt(
            ("mean",),
            "def mean(xs):\n    return 0\n",
            "Test Case Failed: assert mean([2]) == 2",
            test_source="def test_mean():\n    assert mean([2]) == 2\n",
            other_failures=("test_b",),
        )
    )
    user = msgs[-1].content
    assert msgs[0].role == "system" and "tests are correct" in msgs[0].content
    assert (
        user.index("def test_mean") < user.index("## Faulty code") < user.index("Test Case Failed")
    )
    assert "Also failing: test_b" in user


def test_marker_prompt_span_covers_code_and_feedback_only() -> None:
    mp = build_marker_prompt('"""Add one."""', "def f(x):\n    return x", "Test Case Failed: x")
    spans = [mp.text[start:end] for start, end in mp.past_generation_spans]
    assert spans == ["# def f(x):\n#     return x", "# Test Case Failed: x"]
    assert mp.text.endswith("### Good solution:\n")


def _write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(textwrap.dedent(text))


def test_localize_uses_frames_then_called_names(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "calc.py",
        """\
        def helper(x):
            return 1 / x

        def ratio(x):
            return helper(x)

        def double(x):
            return x * 3
        """,
    )
    _write(tmp_path, "tests/test_calc.py", "from calc import ratio, double\n")
    crash = TestCaseResult(
        "tests/test_calc.py::test_ratio",
        "failed",
        path="tests/test_calc.py",
        line=3,
        exc_type="ZeroDivisionError",
        project_frames=(Frame("calc.py", 5, "ratio"), Frame("calc.py", 2, "helper")),
        test_source="def test_ratio():\n    assert ratio(0) == 0\n",
    )
    wrong = TestCaseResult(
        "tests/test_calc.py::test_double",
        "failed",
        path="tests/test_calc.py",
        line=6,
        assert_source="assert double(2) == 4",
        test_source="def test_double():\n    assert double(2) == 4\n",
    )
    index = ProjectIndex(tmp_path)
    loc = localize(index, [crash])
    assert [t.qualname for t in loc.targets][:2] == ["helper", "ratio"]
    loc = localize(index, [wrong, crash])
    names = [t.qualname for t in loc.targets]
    assert "double" in names and "helper" in names
    assert loc.primary is not None


def test_answer_prefix_starts_the_function_after_its_docstring() -> None:
    code = '@cache\ndef mean(xs: list[float],\n         k: int) -> float:\n    """Mean."""\n    return sum(xs)\n'
    assert (
        answer_prefix(code)
        == '```python\n@cache\ndef mean(xs: list[float],\n         k: int) -> float:\n    """Mean."""\n'
    )
    # No docstring: the header only; a one-liner or no function: the fence only.
    assert answer_prefix("def f(x):\n    return x\n") == "```python\ndef f(x):\n"
    assert answer_prefix("def f(x): return x\n") == "```python\n"
    assert answer_prefix("x = (\n") == "```python\n"


def test_from_scratch_prompt_hides_the_faulty_body() -> None:
    faulty = 'def mean(xs):\n    """Mean of xs."""\n    return sum(xs) / (len(xs) + 1)\n'
    user = build_refine_messages(
        RefinePrompt(("mean",), faulty, "Test Case Failed: x", from_scratch=True)
    )[-1].content
    assert '"""Mean of xs."""' in user and "len(xs) + 1" not in user
    assert "## Faulty code" not in user and "## Function to write" in user


def test_splice_ignores_stub_echoes_of_the_module_outline() -> None:
    source = "def helper(x):\n    return x * 2\n\n\ndef target(x):\n    return helper(x) + 1\n"
    tree = ast.parse(source)
    span = next(s for s in function_spans(tree) if s.name == "target")
    target = target_for_span("m.py", source, span)
    answer = "def helper(x):\n    ...\n\ndef target(x):\n    return helper(x)\n"
    spliced = splice_candidate({"m.py": source}, [target], answer)
    assert "return x * 2" in spliced.files["m.py"]
    assert spliced.replaced == ("target",)


def test_context_shows_the_called_functions_in_full() -> None:
    source = textwrap.dedent(
        """
        def div_sum(n):
            total = 1
            return total - n

        def unrelated(x):
            return x * 3

        class Box:
            def grow(self, n):
                return self.scale(n) + div_sum(n)

            def scale(self, n):
                return n * 2
        """
    )
    tree = ast.parse(source)
    assert called_functions(tree, {"Box.grow"}) == {"Box.scale", "div_sum"}
    context = module_context(source, tree, {"Box.grow"}, whole={"Box.scale", "div_sum"})
    assert "return total - n" in context and "return n * 2" in context
    assert "return x * 3" not in context and "def unrelated(x):" in context


def test_localize_adds_the_helpers_a_suspect_calls_after_it(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "sums.py",
        """\
        def div_sum(n):
            return sum(i for i in range(1, n))

        def equivalent(a, b):
            return div_sum(a) == div_sum(b)
        """,
    )
    _write(tmp_path, "tests/test_sums.py", "from sums import equivalent\n")
    wrong = TestCaseResult(
        "tests/test_sums.py::test_eq",
        "failed",
        path="tests/test_sums.py",
        line=3,
        assert_source="assert equivalent(2, 4) is False",
        test_source="def test_eq():\n    assert equivalent(2, 4) is False\n",
    )
    loc = localize(ProjectIndex(tmp_path), [wrong])
    assert [t.qualname for t in loc.targets] == ["equivalent", "div_sum"]


def test_localize_ranks_first_a_suspect_that_two_failing_tests_reach(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "search.py",
        """\
        def find_index(items, target):
            return -1

        def contains(items, target):
            return find_index(items, target) != -1
        """,
    )
    _write(tmp_path, "tests/test_search.py", "from search import contains, find_index\n")

    def failing(name: str, assertion: str) -> TestCaseResult:
        return TestCaseResult(
            f"tests/test_search.py::{name}",
            "failed",
            path="tests/test_search.py",
            line=3,
            assert_source=assertion,
            test_source=f"def {name}():\n    {assertion}\n",
        )

    # Each test names one function; `contains` fails through `find_index`.
    failures = [
        failing("test_contains", "assert contains([2, 4], 4)"),
        failing("test_last", "assert find_index([2, 4], 4) == 1"),
    ]
    loc = localize(ProjectIndex(tmp_path), failures)
    assert [t.qualname for t in loc.targets] == ["find_index", "contains"]
    # One failing test through `contains` alone still blames `contains` first.
    loc = localize(ProjectIndex(tmp_path), failures[:1])
    assert [t.qualname for t in loc.targets] == ["contains", "find_index"]


def test_localize_blames_the_call_that_made_the_checked_value(tmp_path: Path) -> None:
    # The test builds its data with a constructor first; the assert checks `result`.
    _write(
        tmp_path,
        "linked.py",
        """\
        class Node:
            def __init__(self, value, successor=None):
                self.value = value
                self.successor = successor

        def reverse(node):
            return None
        """,
    )
    test_source = (
        "def test_reverse():\n"
        "    first = Node(1)\n"
        "    second = Node(2, first)\n"
        "    result = reverse(second)\n"
        "    assert result == first\n"
        "    result = result.successor\n"
    )
    _write(tmp_path, "tests/test_linked.py", "from linked import Node, reverse\n")
    wrong = TestCaseResult(
        "tests/test_linked.py::test_reverse",
        "failed",
        path="tests/test_linked.py",
        line=5,
        assert_source="assert result == first",
        test_source=test_source,
    )
    loc = localize(ProjectIndex(tmp_path), [wrong])
    assert [t.qualname for t in loc.targets] == ["reverse", "Node.__init__"]


def test_localize_puts_the_named_file_first_among_equal_suspects(tmp_path: Path) -> None:
    _write(tmp_path, "alpha.py", "def a(x):\n    return x\n")
    _write(tmp_path, "beta.py", "def b(x):\n    return x\n")
    _write(tmp_path, "tests/test_ab.py", "from alpha import a\nfrom beta import b\n")

    def failing(name: str) -> TestCaseResult:
        return TestCaseResult(
            f"tests/test_ab.py::test_{name}",
            "failed",
            path="tests/test_ab.py",
            line=4,
            assert_source=f"assert {name}(1) == 2",
            test_source=f"def test_{name}():\n    assert {name}(1) == 2\n",
        )

    failures = [failing("a"), failing("b")]
    index = ProjectIndex(tmp_path)
    assert [t.path for t in localize(index, failures).targets] == ["alpha.py", "beta.py"]
    assert [t.path for t in localize(index, failures, "beta.py").targets] == ["beta.py", "alpha.py"]


def test_localize_resolves_a_name_defined_twice_to_the_file_the_test_called(
    tmp_path: Path,
) -> None:
    _write(tmp_path, "correct/gcd.py", "def gcd(a, b):\n    return a if not b else gcd(b, a % b)\n")
    _write(tmp_path, "buggy/gcd.py", "def gcd(a, b):\n    return b\n")
    _write(
        tmp_path,
        "tests/test_gcd.py",
        "if FLAG:\n    from correct.gcd import gcd\nelse:\n    from buggy.gcd import gcd\n",
    )

    def failing(callees: tuple[Callee, ...]) -> TestCaseResult:
        return TestCaseResult(
            "tests/test_gcd.py::test_gcd",
            "failed",
            path="tests/test_gcd.py",
            line=6,
            assert_source="assert gcd(12, 8) == 4",
            test_source="def test_gcd():\n    assert gcd(12, 8) == 4\n",
            callees=callees,
        )

    index = ProjectIndex(tmp_path)
    # By the imports alone the first import wins, here the wrong copy.
    assert [t.path for t in localize(index, [failing(())]).targets] == ["correct/gcd.py"]
    # The file the user named comes before the imports; the test's own binding before both.
    assert [t.path for t in localize(index, [failing(())], "buggy/gcd.py").targets] == [
        "buggy/gcd.py"
    ]
    bound = failing((Callee("gcd", "buggy/gcd.py", "gcd"),))
    assert [t.path for t in localize(index, [bound], "correct/gcd.py").targets] == ["buggy/gcd.py"]


def test_forgotten_standard_library_imports_are_named_and_added_under_the_imports() -> None:
    problems = ["NameError: undefined name 'deque'", "NameError: undefined name 'List'"]
    assert stdlib_imports_for(problems) == [
        "from collections import deque",
        "from typing import List",
    ]
    assert stdlib_imports_for(["NameError: undefined name 'math'"]) == ["import math"]
    rounding = ["NameError: undefined name 'Decimal'", "NameError: undefined name 'ROUND_HALF_UP'"]
    assert stdlib_imports_for(rounding) == [
        "from decimal import Decimal",
        "from decimal import ROUND_HALF_UP",
    ]
    # One name nobody knows makes it a real mistake, refused as before.
    assert stdlib_imports_for([*problems, "NameError: undefined name 'helper'"]) is None
    assert (
        stdlib_imports_for(["local variable 'x' defined ... referenced before assignment"]) is None
    )
    source = '"""Doc."""\nimport os\n\n\ndef f():\n    return deque()\n'
    fixed = with_imports(source, ["from collections import deque"])
    assert fixed == (
        '"""Doc."""\nimport os\nfrom collections import deque\n\n\ndef f():\n    return deque()\n'
    )
    assert new_undefined_names(source, fixed, "m.py") == []
    assert with_imports("def f():\n    return inf\n", ["from math import inf"]).startswith(
        "from math import inf\ndef f():"
    )


def test_module_description_is_the_intent_of_a_function_without_a_docstring() -> None:
    # QuixBugs writes the program's description as a bare string after the code.
    quix = 'def kth(arr, k):\n    return arr[k]\n\n\n"""\nQuickSelect\n\n    Finds the kth-lowest.\n"""\n'
    assert module_description(ast.parse(quix)) == "QuickSelect\n\n    Finds the kth-lowest."
    assert module_description(ast.parse('"""Top."""\nx = 1\n')) == "Top."
    assert module_description(ast.parse("x = 1\n")) == ""
    long = module_description(ast.parse(repr("word " * 1000)), limit=100)
    assert len(long) <= 104 and long.endswith("\n...")
    assert not has_docstring("def kth(arr, k):\n    return arr[k]\n")
    assert has_docstring('    def kth(arr, k):\n        """Doc."""\n        return 1\n')
    messages = build_refine_messages(
        RefinePrompt(
            ("kth",),
            "def kth(arr, k):\n    return arr[k]\n",
            "Test Case Failed: ...",
            description="QuickSelect: finds the kth-lowest.",
        )
    )
    user = messages[-1].content
    assert "## What the code should do (from the module's docstring)\nQuickSelect" in user
    assert user.index("QuickSelect") < user.index("## Faulty code")


def test_localize_follows_a_helper_parameter_to_the_function_it_was_bound_to(
    tmp_path: Path,
) -> None:
    _write(
        tmp_path, "solution.py", "def helper(x):\n    return x\n\n\ndef add(a, b):\n    return a\n"
    )
    _write(tmp_path, "test_solution.py", "from solution import add\n")
    case = TestCaseResult(
        "test_solution.py::test_add",
        "failed",
        path="test_solution.py",
        line=5,
        assert_source="assert candidate(2, 3) == 5",
        test_source="def check(candidate):\n    assert candidate(2, 3) == 5\n",
        callees=(Callee("candidate", "solution.py", "add"),),
    )
    assert [t.qualname for t in localize(ProjectIndex(tmp_path), [case]).targets] == ["add"]


def _run(*tests: TestCaseResult) -> TestRunResult:
    return TestRunResult(root=Path("."), tests=tests, exit_code=1, duration=0.1)


def test_assert_reach_compares_where_a_test_failing_in_both_runs_stops() -> None:
    at = {
        line: TestCaseResult("t.py::test_f", "failed", path="t.py", line=line) for line in (6, 7, 8)
    }
    other = TestCaseResult("t.py::test_g", "failed", path="t.py", line=20)
    assert assert_reach(_run(at[6]), _run(at[7])) == -1  # stops earlier: worse
    assert assert_reach(_run(at[8]), _run(at[7])) == 1  # gets further
    assert assert_reach(_run(at[7]), _run(at[7])) == 0
    # Further in one test does not make up for earlier in another.
    g_earlier = TestCaseResult("t.py::test_g", "failed", path="t.py", line=19)
    assert assert_reach(_run(at[8], g_earlier), _run(at[7], other)) == -1
    # A hang further on is not progress; another file's line says nothing.
    hang = TestCaseResult("t.py::test_f", "timeout", path="t.py", line=8)
    assert assert_reach(_run(hang), _run(at[7])) == 0
    elsewhere = TestCaseResult("t.py::test_f", "failed", path="helpers.py", line=2)
    assert assert_reach(_run(elsewhere), _run(at[7])) == 0


COPIED_ANSWER = "```python\ndef f(x):\n    return x + 1\n```\nThat fixes it."


def _fork(text: str, at: str, alternative: str, margin: float) -> Fork:
    return Fork(text.index(at), alternative, margin)


def test_branches_leave_the_copy_where_it_was_least_sure_inside_the_code() -> None:
    body = COPIED_ANSWER.index("    return")
    forks = [
        _fork(COPIED_ANSWER, "def", "import", 0.1),  # before the body: the answer's given prefix
        _fork(COPIED_ANSWER, " + 1", " -", 1.5),
        _fork(COPIED_ANSWER, " 1\n", " 2", 0.7),
        _fork(COPIED_ANSWER, "That", "Done", 0.0),  # after the closing fence
    ]
    assert branch_prefixes(COPIED_ANSWER, forks, body, limit=5) == (
        "```python\ndef f(x):\n    return x + 2",
        "```python\ndef f(x):\n    return x -",
    )
    assert branch_prefixes(COPIED_ANSWER, forks, body, limit=1) == (
        "```python\ndef f(x):\n    return x + 2",
    )


@pytest.mark.parametrize("alternative", [" # fix", "    #", ' """', "\n```"])
def test_no_branch_into_a_comment_a_docstring_or_the_end_of_the_block(alternative: str) -> None:
    body = COPIED_ANSWER.index("    return")
    forks = [Fork(body, alternative, 0.0), _fork(COPIED_ANSWER, " x +", " -x", 0.5)]
    assert branch_prefixes(COPIED_ANSWER, forks, body, limit=3) == (
        "```python\ndef f(x):\n    return -x",
    )


def test_the_same_branch_is_offered_once() -> None:
    body = COPIED_ANSWER.index("    return")
    at = COPIED_ANSWER.index(" 1")
    forks = [Fork(at, " 2", 0.2), Fork(at, " 2", 0.4)]
    assert len(branch_prefixes(COPIED_ANSWER, forks, body, limit=3)) == 1


def test_the_same_text_in_other_tokens_is_no_branch() -> None:
    answer = "```python\ndef f(x):\n    y = g(x)\n\n    return y\n```\n"
    body = answer.index("    y")
    # `)\n` where the copy has the token `)\n\n`: the next token can be the `\n` again.
    forks = [Fork(answer.index(")\n\n"), ")\n", 0.1), Fork(answer.index(" y\n"), " x", 0.5)]
    assert branch_prefixes(answer, forks, body, limit=3) == (answer[: answer.index(" y\n")] + " x",)
    # A shorter token inside a line mostly goes on as the copy (` g` then `(x)`): on MBPP, most
    # branches that came back a copy began so.
    inside = Fork(answer.index(" g("), " g", 0.2)
    assert branch_prefixes(answer, [inside], body, limit=3) == ()


def test_a_branch_takes_the_best_choice_that_leaves_the_copy() -> None:
    body = COPIED_ANSWER.index("    return")
    plus = COPIED_ANSWER.index(" + 1")
    one = COPIED_ANSWER.index(" 1\n")
    # At " + 1" the runner-up is a comment (the same code); the next choice, 2.0 below the
    # chosen token, leaves. At " 1", " 2" is 1.0 below: the least sure departure comes first.
    forks = [
        Fork(plus, "  #", 0.5, (Choice("  #", -0.5), Choice(" -", -2.0), Choice("", -0.1))),
        Fork(one, " 2", 1.0, (Choice(" 2", -1.0),)),
    ]
    assert branch_prefixes(COPIED_ANSWER, forks, body, limit=3) == (
        COPIED_ANSWER[:one] + " 2",
        COPIED_ANSWER[:plus] + " -",
    )


def test_spacing_inside_a_line_is_no_branch_but_indentation_is() -> None:
    answer = "```python\ndef f(x):\n    if x:\n        return 1\n    return 0\n```\n"
    body = answer.index("    if")
    inner = answer.index(" 1")  # `return 1` -> `return  1`: the same code
    indent = answer.index("    return 0")  # 4 -> 8 spaces: `return 0` inside the `if`
    forks = [Fork(inner, "  ", 0.1), Fork(indent, "        ", 0.2)]
    assert branch_prefixes(answer, forks, body, limit=3) == (answer[:indent] + "        ",)


@pytest.mark.parametrize(
    ("branch", "heads_back"),
    [
        ("    return str(sum(", True),  # the copy's own text, cut outside a name
        ("    return str(su", True),  # inside a name: a shorter token, it goes on as `sum`
        ("    return (", True),  # brackets around the rest of the line, before its comment
        ("    return str((", True),  # brackets around the argument: the same call
        ("    return str(sum(int(d) for d in s))\n", True),  # the comment dropped
        ("    return str(sum(int(d) for d in s))\n\n", True),  # a blank line more
        ("    return str(sum(\n", False),  # the line broken before its code ends
        ("    return str(len(", False),
        ("    # count them\n    return str(sum(", True),  # another comment line
        ("    return str(sum(int(d) for d in s))\n    if", False),
        ("    return str(sum(int(d)for", True),  # other spacing inside the line
        ("    return str(sum(int(d)fo", False),  # inside a name: `for` or `found`
        ("    return str(sum(int(d) for d in s ) )", True),
    ],
)
def test_a_branch_rejoins_an_answer_it_can_only_continue_as_written(
    branch: str, heads_back: bool
) -> None:
    known = "    return str(sum(int(d) for d in s))  # odd digits\n    x = 1\n"
    assert rejoins(branch, known) is heads_back
    # A keyword is a whole word: `if` goes on as the copy's `if` line does.
    assert rejoins("    if", "    # check\n    if x:\n")
    # Another quote is the same string.
    assert rejoins('    return "', "    return 'a'\n")
    # Brackets around the rest of a line mean the same, unless they group other operands.
    assert rejoins("    return (", "    return a, b\n")
    assert rejoins("    y = a + (", "    y = a + b * c\n")
    assert not rejoins("    y = a * (", "    y = a * b + c\n")
    assert not rejoins("    y = f(", "    y = f\n")


def test_no_branch_inside_a_comment_or_back_to_an_answer_already_seen() -> None:
    answer = "```python\ndef f(x):\n    # add one\n    return x + 1\n```\n"
    body = answer.index("    #")
    word = Fork(answer.index(" one"), " two", 0.1)  # another comment: the same code
    minus = Fork(answer.index(" +"), " -", 0.2)
    times = Fork(answer.index(" +"), " *", 0.3)
    assert branch_prefixes(answer, [word, minus, times], body, limit=3) == (
        answer[: minus.offset] + " -",
        answer[: times.offset] + " *",
    )
    tried = answer.replace("x + 1", "x - 1")
    assert branch_prefixes(answer, [word, minus, times], body, limit=3, seen=[tried]) == (
        answer[: times.offset] + " *",
    )


def test_copy_probability_counts_the_forks_in_the_code_against_their_runner_up() -> None:
    body = COPIED_ANSWER.index("    return")
    forks = [
        _fork(COPIED_ANSWER, " + 1", " -", 1.5),
        _fork(COPIED_ANSWER, " 1\n", " 2", 0.7),
        Fork(body, "    #", -3.0),  # a comment leads back to the copy
        _fork(COPIED_ANSWER, "That", "Done", -3.0),  # after the closing fence
    ]
    # T=1: sigmoid(1.5) * sigmoid(0.7).
    assert copy_probability(COPIED_ANSWER, forks, body, 1.0, 1.0) == pytest.approx(
        0.8176 * 0.6682, abs=1e-3
    )
    # T=0.5: top-p comes before the temperature (as in llama.cpp), so both runners-up stay:
    # sigmoid(3.0) * sigmoid(1.4).
    assert copy_probability(COPIED_ANSWER, forks, body, 0.5, 0.95) == pytest.approx(
        0.9526 * 0.8022, abs=1e-3
    )
    # At top_p 0.8, sigmoid(1.5) = 0.8176 holds it alone: the runner-up there is never sampled.
    assert copy_probability(COPIED_ANSWER, forks, body, 0.5, 0.8) == pytest.approx(0.8022, abs=1e-3)
    # Greedy copies unless the model prefers another token somewhere.
    assert copy_probability(COPIED_ANSWER, forks, body, 0.0, 0.95) == 1.0
    departs = [*forks, _fork(COPIED_ANSWER, "x +", "-x", -0.1)]
    assert copy_probability(COPIED_ANSWER, departs, body, 0.0, 0.95) == 0.0


def test_sampling_chances_follow_llama_cpps_chain() -> None:
    # Logits 0 (chosen), -1, -2, -5: probabilities at T=1 are 0.662, 0.244, 0.090, 0.004.
    fork = Fork(0, "a", 1.0, (Choice("a", -1.0), Choice("b", -2.0), Choice("c", -5.0)))
    chosen, others = sampling_chances(fork, 1.0, 1.0)
    # min-p drops "c" (below 0.05 of the best) even with top-p 1.
    assert chosen == pytest.approx(0.6652, abs=1e-3)
    assert others == pytest.approx([0.2447, 0.0900, 0.0], abs=1e-3)
    # top-p 0.85 keeps "chosen" and "a" (0.8808 together); T=0.5 then sharpens what is kept.
    chosen, others = sampling_chances(fork, 0.5, 0.85)
    assert chosen == pytest.approx(0.8808, abs=1e-3)
    assert others == pytest.approx([0.1192, 0.0, 0.0], abs=1e-3)
    # Greedy takes the best token, here another one.
    worse = Fork(0, "z", -0.5, (Choice("z", 0.5),))
    assert sampling_chances(worse, 0.0, 0.95) == (0.0, [1.0])


def test_copy_probability_counts_choices_that_lead_back_as_the_copy() -> None:
    body = COPIED_ANSWER.index("    return")
    plus = COPIED_ANSWER.index(" + 1")
    # At " + 1": " -" leaves the copy; a comment and " +" (the same text) lead back to it.
    fork = Fork(plus, " -", 1.0, (Choice(" -", -1.0), Choice("  #", -1.0), Choice(" +", -1.0)))
    chosen, others = sampling_chances(fork, 1.0, 1.0)
    assert copy_probability(COPIED_ANSWER, [fork], body, 1.0, 1.0) == pytest.approx(
        chosen + others[1] + others[2]
    )


def test_sampled_branches_leave_the_copy_as_sampling_would() -> None:
    body = COPIED_ANSWER.index("    return")
    # " x" at `return x` never leaves (its choices lead back); " -" at " + 1" leaves half the
    # time, " 2" at " 1" the same: reached half the time, so drawn a third of the time.
    forks = [
        Fork(COPIED_ANSWER.index(" x +"), "  #", 0.0, (Choice("  #", 0.0),)),
        Fork(COPIED_ANSWER.index(" + 1"), " -", 0.0, (Choice(" -", 0.0),)),
        Fork(COPIED_ANSWER.index(" 1\n"), " 2", 0.0, (Choice(" 2", 0.0),)),
    ]
    minus = "```python\ndef f(x):\n    return x -"
    two = "```python\ndef f(x):\n    return x + 2"
    drawn = [
        sampled_branches(COPIED_ANSWER, forks, body, 1.0, 1.0, 1, random.Random(seed))[0]
        for seed in range(300)
    ]
    assert set(drawn) == {minus, two}
    assert drawn.count(two) / len(drawn) == pytest.approx(1 / 3, abs=0.06)
    # More than one: distinct, and none back to an answer already seen.
    assert set(sampled_branches(COPIED_ANSWER, forks, body, 1.0, 1.0, 3, random.Random(0))) == {
        minus,
        two,
    }
    seen = ["```python\ndef f(x):\n    return x - 1\n```"]
    assert sampled_branches(COPIED_ANSWER, forks, body, 1.0, 1.0, 3, random.Random(0), seen) == (
        two,
    )
    # The copy's own text in a shorter token mostly goes on as the copy: not drawn either.
    shorter = Fork(COPIED_ANSWER.index("return"), "ret", 0.0, (Choice("ret", 0.0),))
    assert sampled_branches(COPIED_ANSWER, [shorter], body, 1.0, 1.0, 3, random.Random(0)) == ()
    # Where every choice leads back to the copy, there is nothing to draw.
    assert sampled_branches(COPIED_ANSWER, forks[:1], body, 1.0, 1.0, 3, random.Random(0)) == ()


@pytest.mark.parametrize(
    "code",
    [
        'def f(x):\n    """Doc."""\n    y = x\n    return y\n',
        "    def m(self):\n        return 1\n\n",
        "def g(): return 2\n",
    ],
)
def test_copy_continuation_completes_the_answer_prefix_into_the_code(code: str) -> None:
    copy = answer_prefix(code) + copy_continuation(code)
    assert copy == "```python\n" + textwrap.dedent(code).rstrip() + "\n```"
