"""The loop beyond one function and four rounds, with a scripted model: repairs across functions
and files, prompts narrowed to the model's window, import-time errors as bugs, the whole budget.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from cyclefix.models.backend import (
    ChatMessage,
    GenerationOptions,
    GenerationResult,
    TextCallback,
    TextCheck,
)
from cyclefix.models.errors import ModelError
from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, check, fix
from cyclefix.runner.results import CollectionError, Frame, TestRunResult

CONFIG = RefineConfig(rounds=3, budget_seconds=120, per_test_timeout=2.0, extend_to_budget=False)


def fence(code: str) -> str:
    return "```python\n" + textwrap.dedent(code).strip() + "\n```\n"


def write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip())
    return root


# The bug is in a helper of another module; the failing asserts name only the caller.
SHOP = {
    "shop/__init__.py": "",
    "shop/money.py": '''
        def percent_of(amount: int, percent: int) -> int:
            """`percent` percent of `amount` cents, rounded half up to a whole cent."""
            return amount * percent // 100
    ''',
    "shop/invoice.py": """
        from shop.money import percent_of


        class Invoice:
            def __init__(self, lines: list[int], tax_percent: int) -> None:
                self.lines = lines
                self.tax_percent = tax_percent

            def subtotal(self) -> int:
                return sum(self.lines)

            def tax(self) -> int:
                return percent_of(self.subtotal(), self.tax_percent)
    """,
    "tests/test_invoice.py": """
        from shop.invoice import Invoice


        def test_subtotal():
            assert Invoice([100, 250], 20).subtotal() == 350


        def test_tax_rounds_half_up():
            assert Invoice([105], 10).tax() == 11


        def test_tax_of_whole_cents():
            assert Invoice([200], 10).tax() == 20
    """,
}
PERCENT_FIX = fence(
    """
    def percent_of(amount: int, percent: int) -> int:
        return (amount * percent + 50) // 100
    """
)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return write(tmp_path / "shop_project", SHOP)


def test_the_prompt_shows_the_caller_and_the_helper_another_module_holds(shop: Path) -> None:
    backend = ScriptedBackend([PERCENT_FIX])
    fix(shop, backend, config=CONFIG)
    prompt = backend.calls[0][-1].content
    # Whichever ranks first, the other is on its failing path, shown in full with its file.
    section = prompt.split("## Other functions on the failing path")[1]
    assert "# shop/money.py\ndef percent_of" in section or "# shop/invoice.py\n" in section
    assert "return amount * percent // 100" in prompt
    assert "return percent_of(self.subtotal(), self.tax_percent)" in prompt


def test_an_answer_rewriting_only_the_helper_is_verified_and_diffed_in_its_file(
    shop: Path,
) -> None:
    before = (shop / "shop" / "money.py").read_text()
    result = fix(shop, ScriptedBackend([PERCENT_FIX]), config=CONFIG)
    assert result.status == "fixed", result
    assert [c.path for c in result.changes] == [shop / "shop" / "money.py"]
    assert "+    return (amount * percent + 50) // 100" in result.diff
    assert "a/shop/money.py" in result.diff and "invoice.py" not in result.diff
    assert (shop / "shop" / "money.py").read_text() == before


def test_an_answer_rewriting_functions_in_two_files_changes_both(shop: Path) -> None:
    both = fence(
        """
        def percent_of(amount, percent, half_up=False):
            extra = 50 if half_up else 0
            return (amount * percent + extra) // 100

        class Invoice:
            def tax(self):
                return percent_of(self.subtotal(), self.tax_percent, half_up=True)
        """
    )
    result = fix(shop, ScriptedBackend([both]), config=CONFIG)
    assert result.status == "fixed", result
    assert sorted(c.path.name for c in result.changes) == ["invoice.py", "money.py"]
    assert "half_up=True" in result.diff and "extra = 50 if half_up else 0" in result.diff
    # An import the answer had none of is added nowhere.
    assert "+from" not in result.diff and "+import" not in result.diff


# Passing the subtotal as text makes the helper raise: the failure now points at it.
TAX_AS_TEXT = [
    fence(
        f"""
        class Invoice:
            def tax(self):
                return percent_of(str(self.subtotal()){suffix}, self.tax_percent)
        """
    )
    for suffix in ("", " + ''")
]


def test_the_feedback_names_the_function_the_failure_now_points_at(shop: Path) -> None:
    backend = ScriptedBackend([TAX_AS_TEXT[0], PERCENT_FIX])
    result = fix(shop, backend, config=CONFIG)
    first = result.attempts[0]
    assert first.points_at == "shop/money.py::percent_of"
    assert "The failure now points at `percent_of` (shop/money.py)." in first.feedback


class WindowedScripted(ScriptedBackend):
    """A scripted model with a context window, counted in words, that refuses longer prompts
    as llama.cpp does."""

    def __init__(self, replies: Sequence[str], n_ctx: int) -> None:
        super().__init__(replies)
        self.n_ctx = n_ctx

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return sum(len(m.content.split()) for m in messages)

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
        until: TextCheck | None = None,
    ) -> GenerationResult:
        used = self.count_tokens(messages) + len(options.answer_prefix.split())
        if used + options.max_tokens > self.n_ctx:
            raise ModelError(f"the prompt has {used} tokens, over the window of {self.n_ctx}")
        return super().generate(messages, options, on_text=on_text, cancel=cancel, until=until)


def _described_module(functions: int) -> str:
    """A module with a long description and many documented functions, one of them wrong."""
    story = " ".join(f"word{i}" for i in range(240))
    others = "".join(
        f'\ndef helper_{i}(value: int) -> int:\n    """Helper number {i} of many."""\n'
        f"    return value + {i}\n"
        for i in range(functions)
    )
    return f'"""{story}"""\n\n\ndef double(x):\n    return x + x + 1\n{others}'


DOUBLE_FIX = fence("def double(x):\n    return x + x\n")
DOUBLE_TEST = "from calc import double\n\n\ndef test_double():\n    assert double(2) == 4\n"


def double_project(root: Path, other_functions: int) -> Path:
    """`calc.double` with a bug under a long module description, and its test."""
    return write(
        root, {"calc.py": _described_module(other_functions), "tests/test_calc.py": DOUBLE_TEST}
    )


def test_a_prompt_over_the_window_narrows_instead_of_failing(tmp_path: Path) -> None:
    project = double_project(tmp_path / "p", 30)
    wide = WindowedScripted([DOUBLE_FIX], n_ctx=100_000)
    assert fix(project, wide, config=CONFIG).status == "fixed"
    full = wide.count_tokens(wide.calls[0])
    narrow = WindowedScripted([DOUBLE_FIX], n_ctx=full + 200)
    result = fix(project, narrow, config=CONFIG)
    assert result.status == "fixed", result
    assert narrow.count_tokens(narrow.calls[0]) < full
    assert any("narrowed to fit the model's" in n and "left out" in n for n in result.notes)


def test_a_whole_module_over_the_window_narrows_to_the_function_the_test_names(
    tmp_path: Path,
) -> None:
    # No call in the test resolves (`calc.__dict__[...]`): localization falls back to the module.
    project = write(
        tmp_path / "p",
        {
            "calc.py": _described_module(60),
            "tests/test_calc.py": "import calc\n\n\ndef test_double():\n"
            '    assert calc.__dict__["double"](2) == 4\n',
        },
    )
    backend = WindowedScripted([DOUBLE_FIX], n_ctx=1200)
    result = fix(project, backend, config=CONFIG)
    assert result.status == "fixed", result
    assert result.rounds[0].targets == ("double",)
    assert any("only `double` shown" in n for n in result.notes)


def test_a_function_whose_docstring_overflows_the_window_is_shown_cut_and_fixed_whole(
    tmp_path: Path,
) -> None:
    examples = "".join(f"    >>> double({i})\n    {2 * i}\n" for i in range(150))
    calc = f'def double(x):\n    """Twice x.\n\n{examples}    """\n    return x + x + 1\n'
    project = write(tmp_path / "p", {"calc.py": calc, "tests/test_calc.py": DOUBLE_TEST})
    cut = 'def double(x):\n    """Twice x.\n    (... 301 more lines of this docstring not shown ...)\n    """\n'
    backend = WindowedScripted([fence(cut + "    return x + x\n")], n_ctx=1500)
    result = fix(project, backend, config=CONFIG)
    assert result.status == "fixed", result
    assert any("the long docstring of the code shown" in n for n in result.notes)
    # The fix changes the one line; the docstring the model never saw whole stays whole.
    assert result.diff.count("\n-    ") == 1 and result.diff.count("\n+    ") == 1
    assert "+    return x + x\n" in result.diff


def test_no_prompt_that_fits_ends_not_fixed_with_a_note_not_an_error(tmp_path: Path) -> None:
    project = double_project(tmp_path / "p", 3)
    backend = WindowedScripted([DOUBLE_FIX], n_ctx=60)
    result = fix(project, backend, config=CONFIG)
    assert result.status == "not_fixed" and result.error is None
    assert backend.calls == []
    assert any("does not fit the model's context window" in n for n in result.notes)


# A module-level call of a function with a typo: importing the module raises NameError.
CONFIG_MODULE = {
    "pkg/__init__.py": "",
    "pkg/config.py": """
        def load_rate():
            return int(DEFAULT_RATE)


        RATE_DEFAULT = "20"
        RATE = load_rate()
    """,
    "tests/test_config.py": """
        from pkg.config import RATE


        def test_rate():
            assert RATE == 20
    """,
}


def _import_error_run(root: Path) -> TestRunResult:
    """The user's run as the runner reports an import-time error in project code."""
    error = CollectionError(
        path="pkg/config.py",
        message="tests/test_config.py:1: in <module>\nE   NameError: name 'DEFAULT_RATE' is not defined",
        line=2,
        nodeid="tests/test_config.py",
        exc_type="NameError",
        project_frames=(
            Frame("pkg/config.py", 6, "<module>", "RATE = load_rate()"),
            Frame("pkg/config.py", 2, "load_rate", "return int(DEFAULT_RATE)"),
        ),
    )
    return TestRunResult(root, (), 2, 0.1, ("tests",), (error,))


def test_an_import_time_error_in_project_code_is_refined_with_it_as_feedback(
    tmp_path: Path,
) -> None:
    project = write(tmp_path / "p", CONFIG_MODULE)
    answer = fence("def load_rate():\n    return int(RATE_DEFAULT)\n")
    backend = ScriptedBackend([answer])
    result = fix(project, backend, config=CONFIG, initial_run=_import_error_run(project))
    assert result.status == "fixed", result
    assert "+    return int(RATE_DEFAULT)" in result.diff
    prompt = backend.calls[0][-1].content
    assert "Fix the bug in `load_rate`" in prompt
    assert "NameError: name 'DEFAULT_RATE' is not defined" in prompt


def test_a_collection_error_without_project_frames_stays_an_error(tmp_path: Path) -> None:
    project = write(tmp_path / "p", CONFIG_MODULE)
    run = _import_error_run(project)
    error = CollectionError("tests/test_config.py", "SyntaxError: invalid syntax", 3)
    result = fix(
        project,
        ScriptedBackend([]),
        config=CONFIG,
        initial_run=TestRunResult(project, (), 2, 0.1, run.selected, (error,)),
    )
    assert result.status == "error"
    assert result.error is not None and "tests cannot be collected" in result.error


LEAP = {
    "calendar_utils.py": """
        def is_leap_year(year: int) -> bool:
            return year % 4 == 0
    """,
    "tests/test_leap.py": """
        from calendar_utils import is_leap_year


        def test_century():
            assert not is_leap_year(1900)


        def test_four():
            assert is_leap_year(2024)
    """,
}
LEAP_FIX = fence(
    """
    def is_leap_year(year: int) -> bool:
        return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    """
)


def _wrong(n: int) -> str:
    return fence(f"def is_leap_year(year):\n    return year % {n} == 0 and year != 1900 + {n}\n")


def test_rounds_go_on_within_the_budget_hotter_and_from_the_intent(tmp_path: Path) -> None:
    project = write(tmp_path / "p", LEAP)
    backend = ScriptedBackend([_wrong(3), _wrong(5), _wrong(7), LEAP_FIX])
    config = RefineConfig(
        rounds=1, budget_seconds=120, per_test_timeout=2.0, resamples=0, extra_answers=0
    )
    result = fix(project, backend, config=config)
    assert result.status == "fixed", result
    assert [r.index for r in result.rounds] == [1, 2, 3, 4]
    assert [o.temperature for o in backend.options] == [0.2, 0.6, 0.9, 0.8]
    assert "## Function to write" in backend.calls[2][-1].content
    assert "## Function to write" not in backend.calls[1][-1].content


def test_without_extend_to_budget_the_rounds_asked_for_are_all(tmp_path: Path) -> None:
    project = write(tmp_path / "p", LEAP)
    backend = ScriptedBackend([_wrong(3), LEAP_FIX])
    config = RefineConfig(
        rounds=1,
        budget_seconds=120,
        per_test_timeout=2.0,
        resamples=0,
        extend_to_budget=False,
        extra_answers=0,
    )
    result = fix(project, backend, config=config)
    assert result.status == "not_fixed" and len(result.rounds) == 1


class EndlessWrong(ScriptedBackend):
    """A model that answers something new and wrong every time."""

    def __init__(self) -> None:
        super().__init__(["unused"])

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
        until: TextCheck | None = None,
    ) -> GenerationResult:
        # `year == n` for a new n each time: 2024 is never leap, so no answer passes.
        self.replies = (fence(f"def is_leap_year(year):\n    return year == {len(self.calls)}\n"),)
        return super().generate(messages, options, on_text=on_text, cancel=cancel, until=until)


def test_the_rounds_stop_at_the_budget(tmp_path: Path) -> None:
    project = write(tmp_path / "p", LEAP)
    config = RefineConfig(
        rounds=1, budget_seconds=4, per_test_timeout=2.0, resamples=0, extra_answers=0
    )
    initial = check(project, config=config)  # the budget is the rounds' alone
    result = fix(project, EndlessWrong(), config=config, initial_run=initial)
    assert result.status == "not_fixed"
    assert len(result.rounds) > 1
    assert result.seconds < 4 + 5
    assert "stopped: time budget spent" in result.notes


def test_extra_rounds_stop_when_the_model_offers_nothing_new(tmp_path: Path) -> None:
    project = write(tmp_path / "p", LEAP)
    config = RefineConfig(rounds=1, budget_seconds=120, per_test_timeout=2.0, resamples=0)
    result = fix(project, ScriptedBackend([_wrong(3)]), config=config)
    assert result.status == "not_fixed"
    assert len(result.rounds) == 1 + 3
    assert any("brought no new candidate" in n for n in result.notes)
