"""The refinement loop end to end with a scripted model (no real model; see test_refine_model.py)."""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
import threading
from pathlib import Path

import pytest
from scripted_support import ForkingScriptedBackend

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, StaleFixError, apply_fix, check, fix
from cyclefix.refine import types as refine_types
from cyclefix.refine.prompt import answer_prefix
from cyclefix.refine.types import AttemptFinished, RefineEvent

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Rounds laid out without extra answers (tests of those: test_refine_planner.py).
CONFIG = RefineConfig(
    rounds=3, budget_seconds=120, extend_to_budget=False, per_test_timeout=2.0, extra_answers=0
)


def fence(code: str) -> str:
    return (
        "Here is the corrected function:\n```python\n" + textwrap.dedent(code).strip() + "\n```\n"
    )


def _one_module_project(root: Path, module: str, source: str, test_module: str, tests: str) -> None:
    """A project of one module and one test file, importable from the root."""
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (root / f"{module}.py").write_text(source)
    (root / f"{test_module}.py").write_text(tests)


@pytest.fixture
def leap(tmp_path: Path) -> Path:
    dest = tmp_path / "leap_year"
    shutil.copytree(EXAMPLES / "leap_year", dest)
    return dest


LEAP_FIX = fence(
    """
    def is_leap_year(year: int) -> bool:
        return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    """
)
LEAP_COPY = fence(
    """
    def is_leap_year(year: int) -> bool:
        # unchanged
        return year % 4 == 0 and year % 100 != 0 or year % 400 != 0
    """
)


def test_fixes_with_a_verified_candidate_and_leaves_files_alone(leap: Path) -> None:
    before = (leap / "calendar_utils.py").read_text()
    backend = ScriptedBackend([LEAP_FIX])
    result = fix(leap, backend, config=CONFIG)
    assert result.status == "fixed", result
    assert (leap / "calendar_utils.py").read_text() == before
    assert "+    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)" in result.diff
    assert result.final_run is not None and result.final_run.all_passed
    # The prompt carried intent, faulty code and CYCLE feedback.
    prompt = backend.calls[0][-1].content
    assert "def is_leap_year" in prompt and "Test Case Failed" in prompt and "def test_" in prompt
    apply_fix(result)
    assert check(leap, config=CONFIG).all_passed


def test_copy_is_refused_and_resampled_with_a_note(leap: Path) -> None:
    backend = ScriptedBackend([LEAP_COPY, LEAP_FIX])
    events: list[RefineEvent] = []
    result = fix(leap, backend, config=CONFIG, on_event=events.append)
    assert result.status == "fixed"
    verdicts = [a.verdict for a in result.attempts]
    assert verdicts == ["copy", "passed"]
    assert "identical to the faulty code" in backend.calls[1][-1].content
    assert backend.calls[1] != backend.calls[0]
    assert any(isinstance(e, AttemptFinished) and e.attempt.is_copy for e in events)


def test_not_fixed_after_rounds_and_next_round_refines_latest_attempt(leap: Path) -> None:
    wrong = fence("def is_leap_year(year):\n    return year % 4 == 0\n")
    broken = fence("def is_leap_year(year):\n    return (year %\n")
    backend = ScriptedBackend([wrong, broken, LEAP_COPY])
    before = (leap / "calendar_utils.py").read_text()
    result = fix(leap, backend, config=CONFIG)
    assert result.status == "not_fixed"
    assert result.diff == "" and result.changes == ()
    assert (leap / "calendar_utils.py").read_text() == before
    assert [a.verdict for a in result.attempts][:2] == ["tests_failed", "syntax_error"]
    # Round 2 shows round 1's attempt as the faulty code, with its own feedback.
    second = backend.calls[1][-1].content
    assert "return year % 4 == 0\n" in second and "1900" in second
    # Round 3 sees the syntax error as feedback.
    assert "SyntaxError" in backend.calls[2][-1].content


def test_an_attempt_passing_fewer_tests_is_not_refined_further(leap: Path) -> None:
    # Base: one test of six passes. An answer that passes none goes nowhere worth refining.
    worse = fence("def is_leap_year(year):\n    raise NotImplementedError\n")
    backend = ScriptedBackend([worse, LEAP_FIX])
    result = fix(leap, backend, config=CONFIG)
    assert result.status == "fixed", result
    second = backend.calls[1][-1].content.split("## Faulty code")[1]
    assert "year % 400 != 0" in second and "NotImplementedError" not in second


def test_undefined_names_are_refused_before_running(leap: Path) -> None:
    backend = ScriptedBackend(
        [fence("def is_leap_year(year):\n    return calendar.isleap(year)\n"), LEAP_FIX]
    )
    result = fix(leap, backend, config=CONFIG)
    assert [a.verdict for a in result.attempts] == ["undefined_names", "passed"]
    assert "calendar" in result.attempts[0].detail


def test_infinite_loop_becomes_feedback_and_gets_fixed(tmp_path: Path) -> None:
    project = tmp_path / "bisect_search"
    shutil.copytree(EXAMPLES / "bisect_search", project)
    initial = check(project, config=CONFIG)
    assert any(t.outcome == "timeout" for t in initial.failures)
    good = fence(
        """
        def find_index(items, target):
            lo, hi = 0, len(items) - 1
            while lo <= hi:
                mid = (lo + hi) // 2
                if items[mid] == target:
                    return mid
                if items[mid] < target:
                    lo = mid + 1
                else:
                    hi = mid - 1
            return -1
        """
    )
    backend = ScriptedBackend([good])
    result = fix(project, backend, config=CONFIG, initial_run=initial)
    assert result.status == "fixed"
    assert "timed out" in backend.calls[0][-1].content


def test_two_bugs_are_fixed_one_after_another(tmp_path: Path) -> None:
    _one_module_project(
        tmp_path,
        "ops",
        "def add(a, b):\n    return a - b\n\n\ndef neg(a):\n    return a\n",
        "test_ops",
        "from ops import add, neg\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
        "def test_neg():\n    assert neg(2) == -2\n",
    )
    backend = ScriptedBackend(
        [
            fence("def add(a, b):\n    return a + b\n"),
            fence("def neg(a):\n    return -a\n"),
        ]
    )
    result = fix(tmp_path, backend, config=CONFIG)
    assert result.status == "fixed", [a.detail for a in result.attempts]
    assert "return a + b" in result.diff and "return -a" in result.diff


def test_already_passing_needs_no_model(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("")
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    result = fix(tmp_path, ScriptedBackend([]), config=CONFIG)
    assert result.status == "already_passing"


def test_syntax_error_in_a_test_file_is_a_one_line_error(tmp_path: Path) -> None:
    # (One in a project module is a bug to refine: tests/test_refine_import_errors.py.)
    (tmp_path / "conftest.py").write_text("")
    (tmp_path / "mod.py").write_text("def f():\n    pass\n")
    (tmp_path / "test_mod.py").write_text(
        "from mod import f\n\n\ndef test_f(:\n    assert f() is None\n"
    )
    result = fix(tmp_path, ScriptedBackend([]), config=CONFIG)
    assert result.status == "error"
    assert result.error is not None and "\n" not in result.error and "test_mod.py" in result.error


def test_cancel_stops_generation(leap: Path) -> None:
    cancel = threading.Event()
    backend = ScriptedBackend([LEAP_FIX * 50], token_delay=0.05)

    def stop_soon(event: RefineEvent) -> None:
        if isinstance(event, AttemptFinished) or type(event).__name__ == "TextGenerated":
            cancel.set()

    result = fix(leap, backend, config=CONFIG, on_event=stop_soon, cancel=cancel)
    assert result.status == "cancelled"


def test_apply_refuses_a_file_changed_since(leap: Path) -> None:
    result = fix(leap, ScriptedBackend([LEAP_FIX]), config=CONFIG)
    assert result.status == "fixed"
    (leap / "calendar_utils.py").write_text(
        (leap / "calendar_utils.py").read_text() + "\n# edited\n"
    )
    with pytest.raises(StaleFixError):
        apply_fix(result)
    assert "# edited" in (leap / "calendar_utils.py").read_text()


def test_one_target_per_round_and_the_next_suspect_after_two_fruitless_rounds(leap: Path) -> None:
    wrong = [fence(f"def is_leap_year(year):\n    return year % {n} == 0\n") for n in (5, 7)]
    backend = ScriptedBackend([*wrong, fence("def days_in_month(year, month):\n    return 30\n")])
    result = fix(
        leap,
        backend,
        config=RefineConfig(rounds=3, budget_seconds=120, extend_to_budget=False, extra_answers=0),
    )
    assert [r.targets for r in result.rounds][:2] == [("is_leap_year",), ("is_leap_year",)]
    assert len(result.rounds) == 3 and result.rounds[2].targets != ("is_leap_year",)


def test_copies_are_resampled_hotter_then_from_scratch(leap: Path) -> None:
    backend = ScriptedBackend([LEAP_COPY, LEAP_COPY, LEAP_FIX])
    result = fix(leap, backend, config=CONFIG)
    assert result.status == "fixed"
    assert [a.verdict for a in result.rounds[0].attempts] == ["copy", "copy", "passed"]
    assert [a.temperature for a in result.rounds[0].attempts][1:] == [0.9, 0.9]
    last_prompt = backend.calls[2][-1].content
    assert "## Function to write" in last_prompt and "year % 400 != 0" not in last_prompt


def _leap_copy_as_llama_gives_it(leap: Path) -> str:
    """A copy of `is_leap_year` as llama.cpp returns it: the requested start of the answer
    (fence, header and docstring), then the unchanged body."""
    source = (leap / "calendar_utils.py").read_text()
    function = source[source.index("def is_leap_year") : source.index("def days_in_month")]
    return answer_prefix(function) + function.splitlines(keepends=True)[-3] + "```\n"


def test_a_copy_is_continued_from_where_the_model_was_least_sure(leap: Path) -> None:
    copied = _leap_copy_as_llama_gives_it(leap)
    forks = [
        ("!= 0", "== 0", 0.3),
        ("return", "# a comment", 0.1),
        ("% 4 ==", "% 2", 2.0),
        ("% 100", "% 40", 1.0),
    ]
    backend = ForkingScriptedBackend([copied, copied, copied, LEAP_FIX], forks)
    result = fix(leap, backend, config=CONFIG)
    assert result.status == "fixed"
    attempts = result.rounds[0].attempts
    # Forks that come back as copies cost no test run: they do not use up the two resamples.
    assert [(a.verdict, a.forked) for a in attempts] == [
        ("copy", False),
        ("copy", True),
        ("copy", True),
        ("passed", True),
    ]
    # Least sure first (a comment leads back to the copy), each with the first prompt
    # unchanged, so llama.cpp reuses its cache, and at the round's temperature.
    assert [o.answer_prefix for o in backend.options[1:]] == [
        copied[: copied.rindex("!= 0")] + "== 0",
        copied[: copied.index("% 100")] + "% 40",
        copied[: copied.index("% 4 ==")] + "% 2",
    ]
    assert all(call == backend.calls[0] for call in backend.calls)
    assert [a.temperature for a in attempts] == [CONFIG.first_temperature] * 4


@pytest.mark.usefixtures("without_operator_edits")
def test_a_likely_copy_is_never_generated_the_round_starts_from_its_forks(leap: Path) -> None:
    copied = _leap_copy_as_llama_gives_it(leap).removesuffix("\n")
    # Sure everywhere but at the bug: at 0.2, sigmoid(0.3 / 0.2) = 0.82 that it copies.
    scores = [("!= 0", "== 0", 0.3), ("% 4 ==", "% 2", 9.0), ("% 100", "% 10", 8.0)]
    backend = ForkingScriptedBackend([LEAP_FIX], [], scores)
    result = fix(leap, backend, config=CONFIG)
    assert result.status == "fixed"
    assert backend.scored == [copied] and backend.stopped_early == [False]
    # Token edits of the suspicious line come first (refine.token_edits); no answer is a copy.
    answers = [a for a in result.rounds[0].attempts if not a.token_edit]
    assert [(a.verdict, a.forked) for a in answers] == [("passed", True)]
    assert backend.options[0].answer_prefix == copied[: copied.rindex("!= 0")] + "== 0"


@pytest.mark.usefixtures("without_operator_edits")
def test_a_resample_that_would_most_likely_copy_starts_from_a_fork_too(leap: Path) -> None:
    copied = _leap_copy_as_llama_gives_it(leap).removesuffix("\n")
    # Likely even at the resample's temperature: sigmoid(0.6 / 0.9) = 0.66.
    scores = [("!= 0", "== 0", 0.6)]
    backend = ForkingScriptedBackend([copied, LEAP_FIX], [], scores)
    result = fix(leap, backend, config=CONFIG)
    assert result.status == "fixed"
    attempts = result.rounds[0].attempts
    assert [(a.verdict, a.forked) for a in attempts] == [("copy", True), ("passed", True)]
    assert attempts[1].temperature == CONFIG.copy_temperature
    # Scored again under the resample's own prompt, the one its fork continues.
    assert (
        len(backend.scored) == 2 and "identical to the faulty code" in backend.calls[1][-1].content
    )


@pytest.mark.usefixtures("without_operator_edits")
def test_a_rewrite_from_the_intent_leaves_the_code_under_test_too(leap: Path) -> None:
    still_wrong = fence("def is_leap_year(year: int) -> bool:\n    return year % 4 == 0\n")
    copied = _leap_copy_as_llama_gives_it(leap).removesuffix("\n")
    # The sampler can only copy (sigmoid(5.0) = 0.993, above top-p): the round leaves the copy
    # where the model was least sure; the rewrite after that fails is scored under its own
    # prompt, and leaves it too.
    backend = ForkingScriptedBackend([still_wrong, LEAP_FIX], [], [("!= 0", "== 0", 5.0)])
    result = fix(leap, backend, config=CONFIG)
    assert result.status == "fixed"
    attempts = result.rounds[0].attempts
    assert [(a.verdict, a.forked) for a in attempts] == [("tests_failed", True), ("passed", True)]
    assert len(backend.scored) == 2 and "## Function to write" in backend.calls[1][-1].content
    assert backend.options[1].answer_prefix == copied[: copied.rindex("!= 0")] + "== 0"


def test_an_unlikely_copy_is_sampled_as_usual(leap: Path) -> None:
    # The model prefers another token than the faulty code's early on: it will not copy. The
    # copy is still scored to the end of its suspicious line (here its last): the token edits'.
    scores = [("% 4 ==", "% 2", -1.0), ("!= 0", "== 0", 9.0)]
    backend = ForkingScriptedBackend([LEAP_FIX], [], scores)
    result = fix(leap, backend, config=CONFIG)
    answers = [a for a in result.rounds[0].attempts if not a.token_edit]
    assert [(a.verdict, a.forked) for a in answers] == [("passed", False)]
    assert len(backend.scored) == 1 and backend.stopped_early == [False]
    assert backend.options[0].record_forks and backend.options[0].answer_prefix.endswith('"""\n')


CLAMP_NO_BETTER = fence("def clamp(x, lo, hi):\n    return max(lo, x) if x < 100 else hi\n")
CLAMP_FIX = fence("def clamp(x, lo, hi):\n    return min(max(lo, x), hi)\n")


def _clamp_project(root: Path) -> None:
    """`clamp` that forgets the upper bound: test_high fails."""
    _one_module_project(
        root,
        "bounds",
        "def clamp(x, lo, hi):\n    return max(lo, x)\n",
        "test_bounds",
        "from bounds import clamp\n\n\ndef test_low():\n    assert clamp(-5, 0, 10) == 0\n\n\n"
        "def test_high():\n    assert clamp(50, 0, 10) == 10\n",
    )


def test_a_fork_never_heads_back_to_the_code_under_test(tmp_path: Path) -> None:
    _clamp_project(tmp_path)
    # Round 2 shows the first attempt; its copy could end the line at `max(lo, x)`: that is
    # the code under test again, so the round takes the other fork.
    forks = [(") if x", ")\n", 0.1), ("100", "20", 0.5)]
    backend = ForkingScriptedBackend([CLAMP_NO_BETTER, CLAMP_NO_BETTER, CLAMP_FIX], forks)
    result = fix(tmp_path, backend, config=CONFIG)
    assert result.status == "fixed"
    # The model's answers (token edits of the one line the tests ran come besides them).
    answers = [a for r in result.rounds for a in r.attempts if not a.token_edit]
    assert [(a.verdict, a.forked) for a in answers] == [
        ("tests_failed", False),
        ("copy", False),
        ("passed", True),
    ]
    assert backend.options[2].answer_prefix.endswith("if x < 20")


def test_a_likely_copy_of_the_code_under_test_starts_from_its_fork(tmp_path: Path) -> None:
    _clamp_project(tmp_path)
    # Round 2 shows the first attempt, which was not kept: the model is unlikely to copy that,
    # but likely to write the code under test back (sigmoid(2.0 / 0.6) = 0.97).
    scores = [("max(lo, x)\n", "min(max(lo, x), hi)", 2.0)]
    backend = ForkingScriptedBackend([CLAMP_NO_BETTER, CLAMP_FIX], [], scores, unscored=1)
    result = fix(tmp_path, backend, config=CONFIG)
    assert result.status == "fixed"
    answers = [a for r in result.rounds for a in r.attempts if not a.token_edit]
    assert [(a.verdict, a.forked) for a in answers] == [
        ("tests_failed", False),
        ("passed", True),
    ]
    assert [text.count("if x < 100") for text in backend.scored[1:]] == [1, 0]
    assert backend.options[1].answer_prefix.endswith("return min(max(lo, x), hi)")


def test_a_fork_that_fails_its_tests_is_followed_by_a_rewrite_from_the_intent(
    leap: Path,
) -> None:
    copied = _leap_copy_as_llama_gives_it(leap)
    still_wrong = fence("def is_leap_year(year: int) -> bool:\n    return year % 4 == 0\n")
    backend = ForkingScriptedBackend([copied, still_wrong, LEAP_FIX], [("!= 0", "== 0", 0.3)])
    result = fix(leap, backend, config=CONFIG)
    assert result.status == "fixed"
    attempts = result.rounds[0].attempts
    assert [(a.verdict, a.forked) for a in attempts] == [
        ("copy", False),
        ("tests_failed", True),
        ("passed", False),
    ]
    rewrite_prompt = backend.calls[2][-1].content
    assert "## Function to write" in rewrite_prompt and "year % 400 != 0" not in rewrite_prompt
    assert attempts[2].temperature == CONFIG.copy_temperature


def test_a_rewrite_that_breaks_passing_tests_does_not_replace_the_fork(leap: Path) -> None:
    copied = _leap_copy_as_llama_gives_it(leap)
    closer = fence("def is_leap_year(year: int) -> bool:\n    return year % 4 == 0\n")
    worse = fence("def is_leap_year(year: int) -> bool:\n    return False\n")
    backend = ForkingScriptedBackend([copied, closer, worse, copied], [("!= 0", "== 0", 0.3)])
    config = dataclasses.replace(CONFIG, rounds=2)
    result = fix(leap, backend, config=config)
    verdicts = [a.verdict for a in result.rounds[0].attempts]
    assert verdicts[:3] == ["copy", "tests_failed", "regressed"]
    # Round 2 refines the fork's code, the better of the two.
    assert "year % 4 == 0\n" in backend.calls[3][-1].content
    assert "return False" not in backend.calls[3][-1].content


@pytest.mark.parametrize("project_sleep", [0.8, 0.0])
def test_candidates_get_more_time_when_the_project_has_slow_tests(
    tmp_path: Path, project_sleep: float
) -> None:
    _one_module_project(
        tmp_path,
        "calc",
        f"import time\n\n\ndef slow_double(x):\n    time.sleep({project_sleep})\n"
        "    return 2 * x\n\n\ndef total(xs):\n    return sum(xs) + 1\n",
        "test_calc",
        "from calc import slow_double, total\n\n\ndef test_slow_double():\n"
        "    assert slow_double(2) == 4\n\n\ndef test_total():\n    assert total([1, 2]) == 3\n",
    )
    # Correct, and slower than the configured 1 s: within 3x the project's slowest test (0.8 s).
    slow_fix = fence("def total(xs):\n    return time.sleep(1.5) or sum(xs)\n")
    config = RefineConfig(
        rounds=1, budget_seconds=120, extend_to_budget=False, per_test_timeout=1.0, resamples=0
    )
    result = fix(tmp_path, ScriptedBackend([slow_fix]), config=config)
    raised = [n for n in result.notes if "per-test timeout for candidates raised to" in n]
    if project_sleep:
        assert result.status == "fixed", result.attempts
        assert raised
    else:
        # Fast project: the configured timeout holds, and the slow candidate times out.
        assert result.status == "not_fixed" and not raised
        assert "timed out" in result.attempts[0].feedback


def test_runs_that_hang_stop_early_and_the_fix_is_verified_on_every_case(tmp_path: Path) -> None:
    _one_module_project(
        tmp_path,
        "bits",
        "def bitcount(n):\n    count = 0\n    while n:\n        n ^= n - 1\n        count += 1\n"
        "    return count\n",
        "test_bits",
        "import pytest\nfrom bits import bitcount\n\n\n"
        "@pytest.mark.parametrize('n, ones', [(127, 7), (128, 1), (13, 3), (14, 3), (27, 4)])\n"
        "def test_bitcount(n, ones):\n    assert bitcount(n) == ones\n",
    )
    still_hangs = fence(
        "def bitcount(n):\n    count = 0\n    while n:\n        n |= n - 1\n        count += 1\n"
        "    return count\n"
    )
    good = fence(
        "def bitcount(n):\n    count = 0\n    while n:\n        n &= n - 1\n        count += 1\n"
        "    return count\n"
    )
    config = RefineConfig(
        rounds=2,
        budget_seconds=120,
        extend_to_budget=False,
        per_test_timeout=0.5,
        resamples=0,
        extra_answers=0,
    )
    result = fix(tmp_path, ScriptedBackend([still_hangs, good]), config=config)
    assert result.status == "fixed"
    # The user's run stopped after three timeouts: two cases never ran, and it says so.
    initial = result.initial_run
    assert initial is not None and len(initial.tests) == 3
    assert all(t.outcome == "timeout" for t in initial.tests)
    assert "stopped at the timeout limit: 2 test(s) not run" in initial.notes
    # The same limit holds for the user's run on its own (`cyclefix fix` and a save in the editor).
    alone = check(tmp_path, config=config)
    assert len(alone.tests) == 3 and alone.notes == initial.notes
    assert "stopped at the timeout limit: 2 test(s) not run" in result.notes
    hung, passed = result.attempts
    # Two timeouts, then the candidate's run stopped: 3 cases never ran.
    assert (hung.verdict, hung.tests_total, hung.tests_passed) == ("tests_failed", 2, 0)
    assert (passed.verdict, passed.tests_total) == ("passed", 5)


def test_a_name_defined_in_a_buggy_and_a_correct_copy_is_fixed_where_the_test_called_it(
    tmp_path: Path,
) -> None:
    # QuixBugs layout: the test imports the buggy copy unless `--correct` is given; the correct
    # copy sorts first, so a lookup by name alone would rewrite it and never fix the test.
    files = {
        "conftest.py": (
            "import pytest\n\n\n"
            "def pytest_addoption(parser):\n"
            "    parser.addoption('--correct', action='store_true')\n\n\n"
            "def pytest_configure(config):\n"
            "    pytest.use_correct = config.getoption('correct')\n"
        ),
        "correct_programs/valid.py": CORRECT_VALID,
        "programs/valid.py": CORRECT_VALID.replace("return depth == 0", "return True")
        + '\n\n"""\nNested Parens\nWhether the parentheses are properly nested.\n"""\n',
        "tests/test_valid.py": (
            "import pytest\n\n"
            "if pytest.use_correct:\n"
            "    from correct_programs.valid import valid\n"
            "else:\n"
            "    from programs.valid import valid\n\n\n"
            "@pytest.mark.parametrize('text, want', [('(())', True), ('((', False)])\n"
            "def test_valid(text, want):\n"
            "    assert valid(text) == want\n"
        ),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    backend = ScriptedBackend([fence(CORRECT_VALID)])
    result = fix(tmp_path, backend, config=CONFIG)  # a folder: no file named, so no focus
    assert result.status == "fixed", result
    assert [c.path for c in result.changes] == [tmp_path / "programs" / "valid.py"]
    prompt = backend.calls[0][-1].content
    assert "return depth == 0" not in prompt.split("## Faulty code")[1]
    # The program's description (a module string after the code, QuixBugs style) is its intent.
    assert "Whether the parentheses are properly nested." in prompt.split("## Faulty code")[0]


CORRECT_VALID = """\
def valid(parens):
    depth = 0
    for paren in parens:
        depth += 1 if paren == "(" else -1
        if depth < 0:
            return False
    return depth == 0
"""


def test_a_forgotten_standard_library_import_is_added_not_refused(tmp_path: Path) -> None:
    (tmp_path / "window.py").write_text(
        "def last(items, n):\n    return list(items)[:n]\n"  # bug: the first n, not the last
    )
    (tmp_path / "test_window.py").write_text(
        "from window import last\n\n\ndef test_last():\n    assert last([1, 2, 3], 2) == [2, 3]\n"
    )
    answer = fence("def last(items, n):\n    return list(deque(items, maxlen=n))\n")
    result = fix(tmp_path / "window.py", ScriptedBackend([answer]), config=CONFIG)
    assert result.status == "fixed", result
    assert "+from collections import deque" in result.diff


def test_turns_stay_in_the_named_file_rather_than_the_classes_the_test_builds(
    tmp_path: Path,
) -> None:
    (tmp_path / "node.py").write_text(
        "class Node:\n"
        "    def __init__(self, value, successors=()):\n"
        "        self.value = value\n"
        "        self.successors = list(successors)\n"
    )
    buggy = (
        "def reachable(start, goal):\n"
        "    seen, todo = set(), [start]\n"
        "    while True:\n"
        "        node = todo.pop()\n"
        "        if node is goal:\n"
        "            return True\n"
        "        seen.add(node)\n"
        "        todo.extend(n for n in node.successors if n not in seen)\n"
    )
    (tmp_path / "search.py").write_text(buggy)
    (tmp_path / "test_search.py").write_text(
        "from node import Node\nfrom search import reachable\n\n\n"
        "def test_unreachable():\n"
        "    a, b = Node('a'), Node('b')\n"
        "    assert not reachable(a, b)\n"
    )
    wrong_1 = buggy.replace("todo.pop()", "todo.pop(0)")
    wrong_2 = buggy.replace("seen.add(node)", "seen.add(node.value)")
    right = buggy.replace("while True:", "while todo:") + "    return False\n"
    backend = ScriptedBackend([fence(wrong_1), fence(wrong_2), fence(right)])
    result = fix(tmp_path / "search.py", backend, config=CONFIG)
    # Two fruitless rounds on `reachable`; the third is still on it, not on `Node.__init__`.
    assert [r.targets for r in result.rounds] == [("reachable",)] * 3
    assert result.status == "fixed", result


def test_an_attempt_that_fails_an_earlier_check_is_dropped_for_the_code_it_set_out_to_fix(
    tmp_path: Path,
) -> None:
    # One test checks four cases in turn (HumanEvalFix style): it fails either way until it
    # passes, so only the line it stops at tells a worse attempt from the code it started from.
    _one_module_project(
        tmp_path,
        "double",
        "def double(x):\n    if x > 2:\n        return -1\n    return x * 2\n",
        "test_double",
        "from double import double\n\n\ndef check(candidate):\n"
        "    assert candidate(1) == 2\n    assert candidate(2) == 4\n"
        "    assert candidate(3) == 6\n    assert candidate(4) == 8\n\n\n"
        "def test_double():\n    check(double)\n",
    )
    # Now fails at candidate(2); one change, so no part of it is tried alone (refine.partial).
    worse = fence("def double(x):\n    if x > 2:\n        return -1\n    return x + 1\n")
    good = fence("def double(x):\n    return x * 2\n")
    backend = ScriptedBackend([worse, good])
    config = RefineConfig(
        rounds=2, budget_seconds=120, extend_to_budget=False, resamples=0, extra_answers=0
    )
    result = fix(tmp_path, backend, config=config)
    assert result.status == "fixed"
    assert [a.verdict for a in result.attempts] == ["tests_failed", "passed"]
    second_prompt = backend.calls[1][-1].content
    assert "if x > 2:" in second_prompt and "x + 1" not in second_prompt
    assert "assert candidate(3) == 6" in second_prompt  # the original code's own feedback


def _bug_in_the_helper(root: Path, test_f_body: str) -> None:
    """The bug is in the helper `g`; the test names `f`, the first suspect (a passing test runs
    `g` too, so the spectrum of the traced run does not put `g` first either)."""
    _one_module_project(
        root,
        "calc",
        "def g(x):\n    return x - 1\n\n\ndef f(x):\n    return g(x) * 2\n",
        "test_calc",
        "from calc import f, g\n\n\ndef test_f():\n"
        + test_f_body
        + "\n\ndef test_g_gives_a_number():\n    assert isinstance(g(0), int)\n",
    )


def test_getting_further_inside_a_test_keeps_the_code_but_uses_up_the_suspects_turns(
    tmp_path: Path,
) -> None:
    _bug_in_the_helper(tmp_path, "    assert f(1) == 4\n    assert f(2) == 6\n")
    further = fence("def f(x):\n    return g(x) * 2 + 4 if x == 1 else g(x) * 2\n")
    earlier = fence("def f(x):\n    return g(x) * 3\n")
    backend = ScriptedBackend([further, earlier, fence("def g(x):\n    return x + 1\n")])
    config = RefineConfig(
        rounds=3, budget_seconds=120, extend_to_budget=False, resamples=0, extra_answers=0
    )
    result = fix(tmp_path, backend, config=config)
    # Round 1 got past the first assert: kept (round 2 refines that code), yet `f` has had
    # its two turns after round 2, so round 3 moves on to `g`.
    assert "+ 4 if x == 1" in backend.calls[1][-1].content
    assert [r.targets for r in result.rounds] == [("f",), ("f",), ("g",)]


def test_a_round_past_its_share_of_the_time_ends_and_the_next_suspect_gets_a_turn(
    tmp_path: Path,
) -> None:
    _bug_in_the_helper(tmp_path, "    assert f(1) == 4\n")
    # Each answer takes about 2 s to write and none parses: a round may resample it 6 times.
    broken = fence("def f(x):\n    return g(x (\n")
    backend = ScriptedBackend([broken] * 20, token_delay=2.0 / len(broken.split()))
    config = RefineConfig(
        rounds=3, budget_seconds=12, extend_to_budget=False, resamples=6, extra_answers=0
    )
    result = fix(tmp_path, backend, config=config)
    # Round 1 had half the 12 s: it started no attempt past 6 s, and that used up `f`'s
    # turns (two rounds when they end on their own).
    assert len(result.rounds[0].attempts) <= 4 < 1 + config.resamples
    assert [r.targets for r in result.rounds][:2] == [("f",), ("g",)]


def test_a_candidate_that_gets_further_but_breaks_a_test_stops_at_that_test(
    tmp_path: Path,
) -> None:
    keep = "".join(
        f"\n\ndef test_keep_{i}():\n    time.sleep(0.2)\n    assert inc(0) > 0\n" for i in range(6)
    )
    _one_module_project(
        tmp_path,
        "calc",
        "def inc(x):\n    return x + 2\n",
        "test_calc",
        "import time\n\nfrom calc import inc\n\n\ndef test_inc_one():\n    assert inc(1) == 2\n"
        "\n\ndef test_inc_big():\n    assert inc(10**20) == 10**20 + 1\n"
        "\n\ndef test_inc_gives_an_int():\n    assert isinstance(inc(1), int)\n" + keep,
    )
    # The tests take over a second: the failing ones run alone first. This answer passes
    # one of them (progress) and breaks `test_inc_gives_an_int`.
    backend = ScriptedBackend([fence("def inc(x):\n    return float(x + 1)\n")])
    config = RefineConfig(
        rounds=1, budget_seconds=60, extend_to_budget=False, resamples=0, extra_answers=0
    )
    result = fix(tmp_path, backend, config=config)
    answer = result.attempts[0]
    assert answer.verdict == "regressed", answer
    # The failing tests once, then the others only up to the broken one: no `test_keep_*`.
    assert answer.tests_total == 3 and answer.tests_passed == 1


@pytest.mark.parametrize(("failing", "traced"), [(5, True), (45, False)])
def test_the_failing_tests_run_alone_are_traced_only_when_few(
    tmp_path: Path, failing: int, traced: bool
) -> None:
    _one_module_project(
        tmp_path,
        "calc",
        "def inc(x):\n    return x + 2\n",
        "test_calc",
        "import time\n\nimport pytest\n\nfrom calc import inc\n\n\n"
        f"@pytest.mark.parametrize('x', range({failing}))\n"
        "def test_inc(x):\n    time.sleep(1.2 / " + str(failing) + ")\n"
        "    assert inc(x) == x + 1\n\n\ndef test_inc_gives_an_int():\n"
        "    assert isinstance(inc(1), int)\n",
    )
    runs: list[refine_types.TestsFinished] = []

    def record(event: RefineEvent) -> None:
        if isinstance(event, refine_types.TestsFinished) and event.scratch:
            runs.append(event)

    backend = ScriptedBackend([fence("def inc(x):\n    return x + 3\n")])
    config = RefineConfig(
        rounds=1, budget_seconds=60, extend_to_budget=False, resamples=0, extra_answers=0
    )
    fix(tmp_path, backend, config=config, on_event=record)
    # The tests take over a second: the failing ones run on their own first.
    first = runs[0].run
    assert len(first.tests) == failing and first.traced is traced
