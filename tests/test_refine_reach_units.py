"""Units of the loop's reach: the round plan, suspect turns, prompt fitting, the failing path
across files, import-time errors, multi-file splices."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path

from cyclefix.bench.generation_log import GenerationLog
from cyclefix.models.backend import ChatMessage, Fork
from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine.cli import register
from cyclefix.refine.copies import CopyPlanner
from cyclefix.refine.fit import NOTE_ROOM, WindowedBackend, answer_room, fit_prompt
from cyclefix.refine.importtime import (
    blocking_collection_error,
    exception_message,
    import_failure,
)
from cyclefix.refine.localize import Localization
from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.prompt import RefinePrompt, build_refine_messages
from cyclefix.refine.related import callees, path_functions
from cyclefix.refine.report import fix_result_to_dict
from cyclefix.refine.schedule import (
    STALE_EXTRA_ROUNDS,
    RoundBudget,
    RoundStop,
    round_plan,
    round_share,
)
from cyclefix.refine.splice import splice_candidate
from cyclefix.refine.turns import FOCUS_ROUNDS, choose_focus
from cyclefix.refine.types import Attempt, FixResult, RefineConfig, RoundRecord, Target
from cyclefix.runner.results import CollectionError, Frame, TestRunResult


def target(qualname: str, path: str = "m.py", source: str = "def f():\n    pass\n") -> Target:
    return Target(path, qualname, 1, 2, source)


def test_the_rounds_asked_for_run_as_cycle_then_extra_ones_alternate() -> None:
    config = RefineConfig(rounds=2)
    plans = [round_plan(i, config) for i in range(1, 8)]
    assert [p.temperature for p in plans] == [0.2, 0.6, 0.6, 0.9, 0.8, 0.9, 1.0]
    assert [p.from_intent for p in plans] == [False, False, False, True, False, True, False]
    assert [p.extra for p in plans] == [False, False, True, True, True, True, True]


def test_extra_rounds_only_when_asked_and_until_the_model_offers_nothing_new() -> None:
    assert not RoundBudget(RefineConfig(rounds=2, extend_to_budget=False)).allows(3)
    budget = RoundBudget(RefineConfig(rounds=2))
    for index in range(3, 3 + STALE_EXTRA_ROUNDS):
        assert budget.allows(index)
        budget.finished(round_plan(index, budget.config), tested=False)
    assert not budget.allows(3 + STALE_EXTRA_ROUNDS) and budget.gave_up


def test_each_round_may_start_attempts_in_half_the_time_left() -> None:
    cycle = RefineConfig(rounds=4, extend_to_budget=False)
    assert [round_share(i, cycle, 120.0) for i in (1, 2, 3, 4)] == [60.0, 60.0, 60.0, 120.0]
    # The last round asked for keeps half for the extra rounds when they may follow.
    extending = RefineConfig(rounds=4)
    assert [round_share(i, extending, 120.0) for i in (4, 5)] == [60.0, 60.0]


def test_a_round_stops_when_its_share_passes_or_the_fix_must_stop() -> None:
    fix_stop = threading.Event()
    spent = RoundStop(fix_stop, 0.0)
    assert spent.is_set() and spent.cut
    open_round = RoundStop(fix_stop, 60.0)
    assert not open_round.is_set()
    fix_stop.set()
    # The fix's own stop (budget or cancel) is no cut of the round's share.
    assert open_round.is_set() and not open_round.cut


def test_a_tested_candidate_resets_the_stale_count() -> None:
    budget = RoundBudget(RefineConfig(rounds=1))
    budget.finished(round_plan(2, budget.config), tested=False)
    budget.finished(round_plan(3, budget.config), tested=True)
    assert budget.stale == 0


def test_after_the_best_suspects_turns_the_pointed_function_comes_next() -> None:
    best, second, helper = target("Invoice.tax"), target("Invoice.__init__"), target("percent_of")
    loc = Localization((best, second), None)
    fruitless = {("m.py", "Invoice.tax"): 2}
    pointed = target("percent_of")
    chosen = choose_focus(loc, fruitless, None, frozenset(), pointed, (helper,))
    assert chosen is not None and chosen.targets == (helper,)
    plain = choose_focus(loc, dict(fruitless), None, frozenset(), None, (helper,))
    assert plain is not None and plain.targets == (second,)


def test_while_the_best_suspect_has_turns_it_keeps_them() -> None:
    best = target("Invoice.tax")
    loc = Localization((best,), None)
    chosen = choose_focus(loc, {}, None, frozenset(), target("percent_of"), ())
    assert chosen is not None and chosen.targets == (best,)


def test_suspects_whose_prompt_cannot_fit_are_never_chosen() -> None:
    only = target("f")
    assert choose_focus(Localization((only,), None), {}, None, {("m.py", "f")}) is None


class Words:
    """A backend that counts words as tokens, with a window."""

    def __init__(self, n_ctx: int) -> None:
        self.n_ctx = n_ctx

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return sum(len(m.content.split()) for m in messages)


PROMPT = RefinePrompt(
    names=("f",),
    faulty_code="def f(x):\n    return x\n",
    feedback="Test Case Failed: " + "value " * 300,
    test_source="def test_f():\n" + "    assert f(1) == 1\n" * 100,
    description="words " * 200,
    context="import os\n" * 30,
    other_failures=("test_a", "test_b"),
    related=(target("g", "n.py", "def g():\n" + "    x = 1\n" * 20),),
)


def test_a_prompt_that_fits_leaves_nothing_the_fix_needs_out() -> None:
    fitted = fit_prompt(PROMPT, Words(100_000), 300)
    assert fitted is not None and fitted.left_out == ()
    shown = fitted.prompt  # a long one is trimmed (refine.fit.PROMPT_TOKENS), never these
    assert (shown.faulty_code, shown.feedback, shown.related) == (
        PROMPT.faulty_code,
        PROMPT.feedback,
        PROMPT.related,
    )


def test_a_backend_without_a_window_gets_the_prompt_as_it_is() -> None:
    fitted = fit_prompt(PROMPT, object(), 300)
    assert fitted is not None and fitted.prompt == PROMPT


def test_narrowing_leaves_out_the_related_functions_first() -> None:
    size = Words(0).count_tokens(build_refine_messages(PROMPT))
    # Five words over: the related function (twenty-odd words) is the first to go.
    window = size + answer_room(PROMPT, 300, Words(0)) - 5
    fitted = fit_prompt(PROMPT, Words(window), 300)
    assert fitted is not None and fitted.left_out == ("`g` (n.py)",)
    assert fitted.prompt.related == () and fitted.prompt.description == PROMPT.description


def test_narrowing_goes_as_far_as_the_faulty_code_and_short_feedback() -> None:
    fitted = fit_prompt(PROMPT, Words(700), 300)
    assert fitted is not None
    narrowed = fitted.prompt
    assert narrowed.faulty_code == PROMPT.faulty_code and narrowed.names == ("f",)
    assert narrowed.context == "" and narrowed.description == "" and narrowed.related == ()
    assert "the rest of the module" in fitted.left_out


def test_the_answers_room_is_the_codes_tokens_not_its_characters() -> None:
    # A long function of few tokens (one long string here) fits where two characters a
    # token would have called its copy 1,500 tokens and skipped it.
    code = "def f(x):\n    return '" + "a" * 3000 + "'\n"
    prompt = dataclasses.replace(PROMPT, faulty_code=code, related=(), other_failures=())
    size = Words(0).count_tokens(build_refine_messages(prompt))
    fitted = fit_prompt(prompt, Words(size + 300 + NOTE_ROOM + 10), 300)
    assert fitted is not None and fitted.prompt.faulty_code == code


def test_nothing_fits_a_window_smaller_than_the_answer() -> None:
    assert fit_prompt(PROMPT, Words(200), 300) is None


def _project(tmp_path: Path, files: dict[str, str]) -> ProjectIndex:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    return ProjectIndex(tmp_path)


def test_callees_resolve_through_relative_imports_and_package_re_exports(tmp_path: Path) -> None:
    index = _project(
        tmp_path,
        {
            "pkg/__init__.py": "from .money import percent_of\n",
            "pkg/money.py": "def percent_of(a, p):\n    return a * p // 100\n",
            "pkg/units.py": "def cents(x):\n    return x * 100\n",
            "pkg/invoice.py": """
                from pkg import percent_of
                from . import units


                def tax(amount):
                    return percent_of(units.cents(amount), 20)
            """,
        },
    )
    tax = next(t for t in index.definitions("tax") if t.path == "pkg/invoice.py")
    found = {(t.path, t.qualname) for t in callees(index, tax)}
    assert found == {("pkg/money.py", "percent_of"), ("pkg/units.py", "cents")}


def test_path_functions_reach_two_calls_deep_and_skip_long_ones(tmp_path: Path) -> None:
    long_body = "".join(f"    x{i} = {i}\n" for i in range(60))
    index = _project(
        tmp_path,
        {
            "a.py": "from b import g\n\n\ndef f():\n    return g()\n",
            "b.py": "from c import h, huge\n\n\ndef g():\n    return h() + huge()\n",
            "c.py": f"def h():\n    return 1\n\n\ndef huge():\n{long_body}    return 0\n",
        },
    )
    f = index.definitions("f")[0]
    shown = [(t.path, t.qualname) for t in path_functions(index, f, [])]
    assert shown == [("b.py", "g"), ("c.py", "h")]


def _import_error(exc_type: str | None, frames: tuple[Frame, ...]) -> CollectionError:
    return CollectionError(
        "pkg/config.py",
        "tests/test_config.py:1: in <module>\nE   NameError: name 'X' is not defined",
        2,
        "tests/test_config.py",
        exc_type,
        frames,
    )


def test_an_import_time_error_in_project_code_becomes_a_failure() -> None:
    frames = (Frame("tests/test_config.py", 1, "<module>"), Frame("pkg/config.py", 2, "load"))
    case = import_failure(_import_error("NameError", frames))
    assert case is not None
    assert case.nodeid == "tests/test_config.py" and case.exc_type == "NameError"
    assert case.exc_message == "name 'X' is not defined"
    assert [f.path for f in case.project_frames] == ["pkg/config.py"]


def test_collection_errors_in_tests_or_without_an_exception_stay_errors() -> None:
    in_test = _import_error("NameError", (Frame("tests/test_config.py", 1, "<module>"),))
    untyped = _import_error(None, (Frame("pkg/config.py", 2, "load"),))
    for error in (in_test, untyped):
        assert import_failure(error) is None
        run = TestRunResult(Path("."), (), 2, 0.0, (), (error,))
        assert blocking_collection_error(run) is error


def test_exception_message_falls_back_to_the_reports_first_line() -> None:
    error = CollectionError("x.py", "ImportError while importing x\nmore", None, "", "OSError")
    assert exception_message(error) == "ImportError while importing x"


def file_targets(sources: dict[str, str], names: dict[str, str]) -> list[Target]:
    """One target per file: the function `names[path]`, the file its source."""
    return [Target(path, names[path], 1, text.count("\n"), text) for path, text in sources.items()]


def test_a_multi_file_splice_adds_imports_only_where_code_changed() -> None:
    sources = {
        "a.py": "def f():\n    return 1\n",
        "b.py": "def g():\n    return 2\n",
    }
    targets = file_targets(sources, {"a.py": "f", "b.py": "g"})
    spliced = splice_candidate(sources, targets, "import math\n\ndef g():\n    return math.e\n")
    assert set(spliced.files) == {"b.py"}
    assert spliced.files["b.py"].startswith("import math\n")


def test_fix_help_names_the_rounds_past_rounds_and_the_switch_off() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    register(commands)
    assert parser.parse_args(["fix", "p", "--no-extend"]).no_extend
    assert not parser.parse_args(["fix", "p"]).no_extend
    fix_help = " ".join(commands.choices["fix"].format_help().split())
    assert "more rounds follow" in fix_help and "until --budget is spent" in fix_help
    assert "stop after --rounds even when budget remains" in fix_help


def test_the_json_attempt_says_where_its_failure_points() -> None:
    attempt = Attempt(1, "code", "tests_failed", "fb", "d", 0.2, 1, 1, 0.1, points_at="m.py::g")
    result = FixResult(
        "not_fixed",
        Path("."),
        (),
        "",
        (RoundRecord(1, ("f",), (attempt,)),),
        None,
        None,
        1.0,
        "scripted",
    )
    data = fix_result_to_dict(result)
    assert data["rounds"][0]["attempts"][0]["points_at"] == "m.py::g"


def test_the_bench_wrapper_passes_the_window_on_only_when_the_model_has_one() -> None:
    windowed = GenerationLog(Words(100), None)  # type: ignore[arg-type]
    assert isinstance(windowed, WindowedBackend) and windowed.n_ctx == 100
    assert not isinstance(GenerationLog(ScriptedBackend(["x"]), None), WindowedBackend)


class SureOfTheCopy(ScriptedBackend):
    """Scores any answer as near-certain, with one hesitation: `+` against `-`."""

    def forks_along(self, messages, answer_prefix, continuation, *, cancel=None, enough=None):  # type: ignore[no-untyped-def]
        at = continuation.index("+")
        return tuple(
            Fork(len(answer_prefix) + i, "-" if i == at else "#", 1.0 if i == at else 40.0)
            for i in range(len(continuation))
        )


def test_the_planner_leaves_a_likely_copy_where_the_model_hesitated() -> None:
    code = "def f(x):\n    return x + 1\n"
    prompt = RefinePrompt(names=("f",), faulty_code=code, feedback="")
    planner = CopyPlanner(SureOfTheCopy(["x"]), RefineConfig(), [], threading.Event())
    branches, likely = planner.branches_off_copies(prompt, 0.2, (target("f", source=code),), 0)
    assert likely and branches[0].endswith("return x -")


def test_the_planner_plans_nothing_for_a_backend_without_logits() -> None:
    prompt = RefinePrompt(names=("f",), faulty_code="def f(x):\n    return x + 1\n", feedback="")
    planner = CopyPlanner(ScriptedBackend(["x"]), RefineConfig(), [], threading.Event())
    assert planner.branches_off_copies(prompt, 0.2, (), generation=0) == ([], False)


def test_a_function_whose_rewrite_made_progress_keeps_its_turns_before_the_best_suspect() -> None:
    caller, helper = target("rgb_percent_to_rgb"), target("_percent_to_integer")
    loc = Localization((caller, helper), None)
    chosen = choose_focus(loc, {}, None, frozenset(), caller, (), progressed=helper)
    assert chosen is not None and chosen.targets == (helper,)
    spent = {("m.py", "_percent_to_integer"): FOCUS_ROUNDS}
    after = choose_focus(loc, spent, None, frozenset(), None, (), progressed=helper)
    assert after is not None and after.targets == (caller,)


def test_a_function_that_made_progress_is_not_chosen_once_no_failure_suspects_it() -> None:
    other = target("g")
    chosen = choose_focus(Localization((other,), None), {}, progressed=target("f"))
    assert chosen is not None and chosen.targets == (other,)


def test_a_trimmed_outline_is_chosen_by_the_code_under_test_whichever_attempt_is_shown() -> None:
    # Rounds that show different attempts share the prompt's opening, and so its cached read.
    under_test = "def f(x):\n    return heapq.nlargest(1, x)\n"
    attempt = "def f(x):\n    return math.fsum(x)\n"
    context = "import heapq\nimport math\n" + "".join(
        f"def helper_{i}(value):\n    ...\n" for i in range(300)
    )
    prompts = [
        RefinePrompt(("f",), shown, "failed", context=context, code_under_test=under_test)
        for shown in (under_test, attempt)
    ]
    fitted = [fit_prompt(p, Words(100_000), 300) for p in prompts]
    contexts = [f.prompt.context for f in fitted if f is not None]
    assert len(contexts) == 2 and contexts[0] == contexts[1]
    assert "import heapq" in contexts[0] and "import math" not in contexts[0]


def test_a_method_shown_without_its_class_replaces_the_method_not_a_namesake_function() -> None:
    sources = {
        "version.py": "class Version:\n    def compare(self, other):\n        return 1\n",
        "legacy.py": "def compare(a, b):\n    return Version(a).compare(b)\n",
    }
    targets = file_targets(sources, {"version.py": "Version.compare", "legacy.py": "compare"})
    spliced = splice_candidate(sources, targets, "def compare(self, other):\n    return 0\n")
    assert set(spliced.files) == {"version.py"}
    assert "        return 0\n" in spliced.files["version.py"]
    # A plain function of the same name still goes to the function.
    spliced = splice_candidate(sources, targets, "def compare(a, b):\n    return 0\n")
    assert set(spliced.files) == {"legacy.py"}
