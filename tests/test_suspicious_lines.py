"""refine.suspicious_lines: the feedback quotes the lines the failing tests ran and the
passing tests did not, where the traced run tells them apart."""

from __future__ import annotations

from pathlib import Path

from cyclefix.refine.localize import Localization, localize
from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.spectrum import FunctionScore
from cyclefix.refine.suspicious_lines import HEADING, suspicious_line_texts, with_suspicious_lines
from cyclefix.refine.types import Target
from cyclefix.runner import SandboxLimits, run_tests

SOURCE = (
    "def percent_of(cents, percent):\n"
    "    if percent == 0:\n"
    "        return 0\n"
    "    return cents * percent // 100\n"
)
PERCENT_OF = Target("shop/money.py", "percent_of", 10, 13, SOURCE)
KEY = ("shop/money.py", "percent_of")
CLAMP = (
    "def clamp(x, lo, hi):\n"
    "    if x < lo:\n"
    "        return lo\n"
    "    if x > hi:\n"
    "        return lo\n"
    "    return x\n"
)
CLAMP_TESTS = (
    "from clamp import clamp\n\n\n"
    "def test_low():\n    assert clamp(-5, 0, 10) == 0\n\n\n"
    "def test_middle():\n    assert clamp(5, 0, 10) == 5\n\n\n"
    "def test_high():\n    assert clamp(50, 0, 10) == 10\n"
)
FEEDBACK = 'Test Case Failed: assert tax() == 13, Expected output: "13", Actual output: "12"'


def located(lines: tuple[int, ...], tied: bool = False) -> Localization:
    score = FunctionScore(KEY, 1.0, 1, 0, lines, tied)
    return Localization((PERCENT_OF,), None, scores={KEY: score}, lines={KEY: lines})


def test_the_line_only_failing_tests_ran_follows_the_feedback() -> None:
    assert with_suspicious_lines(FEEDBACK, located((13,)), [PERCENT_OF], SOURCE) == (
        f"{FEEDBACK}\n{HEADING}\n    return cents * percent // 100"
    )


def test_without_suspicious_lines_the_feedback_is_unchanged() -> None:
    assert with_suspicious_lines(FEEDBACK, located(()), [PERCENT_OF], SOURCE) == FEEDBACK


def test_lines_the_shown_code_no_longer_holds_are_not_quoted() -> None:
    attempt = SOURCE.replace("cents * percent // 100", "round(cents * percent / 100)")
    assert suspicious_line_texts(located((13,)), [PERCENT_OF], attempt) == []


def test_too_many_equally_suspicious_lines_point_nowhere() -> None:
    assert suspicious_line_texts(located((10, 11, 12, 13)), [PERCENT_OF], SOURCE) == []


def test_lines_that_tie_with_every_line_the_failing_tests_ran_are_not_quoted() -> None:
    assert suspicious_line_texts(located((13,), tied=True), [PERCENT_OF], SOURCE) == []


def test_functions_the_prompt_does_not_show_are_not_quoted() -> None:
    other = Target("shop/invoice.py", "Invoice.tax", 1, 2, "def tax(self):\n    return 1\n")
    assert suspicious_line_texts(located((13,)), [other], SOURCE) == []


def test_the_branch_only_the_failing_test_takes_is_quoted_from_a_traced_run(
    tmp_path: Path,
) -> None:
    (tmp_path / "clamp.py").write_text(CLAMP)
    (tmp_path / "test_clamp.py").write_text(CLAMP_TESTS)
    limits = SandboxLimits(per_test_timeout=5.0, run_timeout=60.0)
    run = run_tests(tmp_path, limits=limits, autoload_plugins=False, trace=True)
    loc = localize(ProjectIndex(tmp_path), run.failures, spectrum=run)
    suspect = loc.targets[0]
    assert suspicious_line_texts(loc, [suspect], suspect.source) == [
        "return lo   (the one after `if x > hi:`)"
    ]
