"""A round's attempts as refine.copies.plan_round lays them out: no model, no test run."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cyclefix.refine.copies import LONG_ANSWER_CHARS, BranchesFn, EditsFn, PartsFn, plan_round
from cyclefix.refine.prompt import COPY_NOTE, RefinePrompt
from cyclefix.refine.round import Outcome
from cyclefix.refine.token_edits import EDITS_PER_ROUND, MAX_EDITS_PER_ROUND
from cyclefix.refine.types import Attempt, RefineConfig, Verdict
from cyclefix.runner.results import TestCaseResult, TestRunResult

# The round's own layout: its first answers and edits, no extra answers after them.
CONFIG = RefineConfig(resamples=2, copy_temperature=0.9, extra_answers=0)
PROMPT = RefinePrompt(names=("f",), faulty_code="def f():\n    return 1\n", feedback="failed")


@dataclass(frozen=True)
class Call:
    prompt: RefinePrompt
    temperature: float
    branch: str
    forked: bool
    partial: str = ""
    token_edit: bool = False


def _run(passed: int, failed: int) -> TestRunResult:
    cases = tuple(
        TestCaseResult(f"t.py::test_{i}", "passed" if i < passed else "failed")
        for i in range(passed + failed)
    )
    return TestRunResult(Path("."), cases, 1 if failed else 0, 0.1)


def outcome(
    verdict: Verdict,
    *,
    forked: bool = False,
    branches: tuple[str, ...] = (),
    run: TestRunResult | None = None,
) -> Outcome:
    attempt = Attempt(1, "code", verdict, "", "", 0.2, 10, 5, 0.1, forked=forked)
    return Outcome(attempt, {}, run, None, branches)


class Script:
    """Answers each attempt with the next outcome, recording how it was asked for."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[Call] = []
        self.score_s: list[float] = []

    def __call__(
        self,
        prompt: RefinePrompt,
        temperature: float,
        branch: str = "",
        *,
        forked: bool = False,
        score_s: float = 0.0,
        partial: str = "",
        token_edit: bool = False,
    ) -> Outcome:
        assert score_s >= 0
        self.score_s.append(score_s)
        self.calls.append(Call(prompt, temperature, branch, forked, partial, token_edit))
        made = self.outcomes.pop(0)
        return Outcome(
            Attempt(1, "code", made.attempt.verdict, "", "", temperature, 1, 1, 0.1, forked=forked),
            made.files,
            made.run,
            made.failing,
            made.branches,
        )


def no_forks(prompt: RefinePrompt, temperature: float) -> tuple[list[str], bool]:
    return [], False


def plan(
    script: Script,
    branches_for: BranchesFn = no_forks,
    stop: threading.Event | None = None,
    parts_for: PartsFn = lambda outcome: (),
    edits_for: EditsFn = lambda prompt: (),
    edit_seconds: float = 0.0,
    prompt: RefinePrompt = PROMPT,
    config: RefineConfig = CONFIG,
    progressed: Callable[[Outcome], bool] = lambda outcome: False,
) -> tuple[Outcome, list[Attempt]]:
    return plan_round(
        prompt,
        0.2,
        attempt=script,
        branches_for=branches_for,
        config=config,
        stop=stop or threading.Event(),
        parts_for=parts_for,
        edits_for=edits_for,
        edit_seconds=edit_seconds,
        progressed=progressed,
    )


def test_an_answer_the_tests_judged_is_the_rounds_only_attempt() -> None:
    script = Script(outcome("tests_failed"))
    counted, attempts = plan(script)
    assert counted.attempt.verdict == "tests_failed" and len(attempts) == 1
    assert script.calls == [Call(PROMPT, 0.2, "", False)]


def test_an_answer_without_the_function_is_sampled_again_hotter_saying_what_was_missing() -> None:
    script = Script(outcome("wrong_target"), outcome("passed"))
    _, attempts = plan(script)
    assert [a.verdict for a in attempts] == ["wrong_target", "passed"]
    retry = script.calls[1]
    assert retry.temperature == CONFIG.copy_temperature
    assert "did not define `f`" in retry.prompt.note and not retry.prompt.from_scratch


def test_answers_that_never_reach_the_tests_are_resampled_at_most_resamples_times() -> None:
    script = Script(*(outcome("syntax_error") for _ in range(5)))
    counted, attempts = plan(script)
    assert len(attempts) == 1 + CONFIG.resamples
    assert counted.attempt.verdict == "syntax_error"


def test_a_second_sampled_copy_is_rewritten_from_the_intent() -> None:
    script = Script(outcome("copy"), outcome("copy"), outcome("tests_failed"))
    plan(script)
    first_retry, second_retry = script.calls[1].prompt, script.calls[2].prompt
    assert first_retry.note == COPY_NOTE and not first_retry.from_scratch
    assert second_retry.note == COPY_NOTE and second_retry.from_scratch


def test_a_sampled_copy_continues_from_where_it_hesitated_without_spending_a_resample() -> None:
    script = Script(
        outcome("copy", branches=("b1", "b2")),
        outcome("copy"),  # the first fork spells the same code: free
        outcome("syntax_error"),  # the second is a new answer: a resample spent
        outcome("passed"),
    )
    counted, attempts = plan(script)
    assert [(c.branch, c.forked, c.temperature) for c in script.calls[1:3]] == [
        ("b1", True, 0.2),
        ("b2", True, 0.2),
    ]
    assert counted.attempt.verdict == "passed" and len(attempts) == 4


def test_a_likely_copy_starts_the_round_from_its_first_fork() -> None:
    def likely(prompt: RefinePrompt, temperature: float) -> tuple[list[str], bool]:
        return ["b1", "b2"], True

    script = Script(outcome("passed"))
    plan(script, likely)
    assert script.calls == [Call(PROMPT, 0.2, "b1", True)]


def test_a_fork_that_fails_its_tests_is_followed_by_a_rewrite_from_the_intent() -> None:
    def likely(prompt: RefinePrompt, temperature: float) -> tuple[list[str], bool]:
        return (["b1"], True) if not prompt.from_scratch else ([], False)

    script = Script(outcome("tests_failed", run=_run(1, 2)), outcome("passed"))
    counted, attempts = plan(script, likely)
    rewrite = script.calls[1]
    assert rewrite.prompt.from_scratch and rewrite.prompt.note == COPY_NOTE and not rewrite.forked
    assert counted.attempt.verdict == "passed" and len(attempts) == 2


def test_a_rewrite_that_gets_no_further_leaves_the_fork_counting() -> None:
    def likely(prompt: RefinePrompt, temperature: float) -> tuple[list[str], bool]:
        return (["b1"], True) if not prompt.from_scratch else ([], False)

    script = Script(
        outcome("tests_failed", run=_run(2, 1)), outcome("tests_failed", run=_run(1, 2))
    )
    counted, attempts = plan(script, likely)
    assert counted.attempt.forked and len(attempts) == 2


def test_nothing_is_resampled_once_the_fix_is_stopped() -> None:
    stop = threading.Event()
    stop.set()
    counted, attempts = plan(Script(outcome("copy")), stop=stop)
    assert counted.attempt.verdict == "copy" and len(attempts) == 1


def test_a_failed_answers_parts_are_tried_alone_and_a_passing_part_counts() -> None:
    script = Script(outcome("regressed"), outcome("tests_failed"), outcome("passed"))
    counted, attempts = plan(script, parts_for=lambda o: ["def f(): return 2", "def f(): 3"])
    assert [a.verdict for a in attempts] == ["regressed", "tests_failed", "passed"]
    assert [c.partial for c in script.calls] == ["", "def f(): return 2", "def f(): 3"]
    assert counted.attempt.verdict == "passed"


def test_parts_stop_at_the_first_that_passes() -> None:
    script = Script(outcome("tests_failed"), outcome("passed"))
    _, attempts = plan(script, parts_for=lambda o: ["part one", "part two"])
    assert len(attempts) == 2 and script.calls[-1].partial == "part one"


def test_answers_the_tests_never_judged_are_not_split() -> None:
    split: list[Outcome] = []

    def parts_for(o: Outcome) -> list[str]:
        split.append(o)
        return []

    script = Script(outcome("syntax_error"), outcome("passed"))
    plan(script, parts_for=parts_for)
    assert split == []


def test_no_part_is_tried_once_the_round_must_stop() -> None:
    stop = threading.Event()
    script = Script(outcome("tests_failed"))
    stop.set()
    _, attempts = plan(script, stop=stop, parts_for=lambda o: ["part"])
    assert len(attempts) == 1


def test_a_forked_answers_parts_come_before_the_rewrite_from_the_intent() -> None:
    script = Script(outcome("tests_failed"), outcome("passed"))
    _, attempts = plan(
        script,
        branches_for=lambda p, t: (["def f():\n    return"], True),
        parts_for=lambda o: ["part"],
    )
    assert [c.partial for c in script.calls] == ["", "part"]
    assert [a.verdict for a in attempts] == ["tests_failed", "passed"]
    assert not any(c.prompt.from_scratch for c in script.calls)


def forked(prompt: RefinePrompt, temperature: float) -> tuple[list[str], bool]:
    return ["def f():\n    return"], True


def test_token_edits_come_before_a_forked_answer_and_one_that_passes_ends_the_round() -> None:
    script = Script(outcome("tests_failed"), outcome("passed"))
    edits = ["edit one", "edit two", "edit three"]
    counted, attempts = plan(script, forked, edits_for=lambda p: edits)
    assert [(c.partial, c.token_edit) for c in script.calls] == [
        ("edit one", True),
        ("edit two", True),
    ]
    assert counted.attempt.verdict == "passed" and len(attempts) == 2


def test_a_forked_round_tries_four_edits_then_its_answer_then_the_rest() -> None:
    edits = [f"edit {i}" for i in range(6)]
    script = Script(*(outcome("tests_failed") for _ in range(20)))
    plan(script, forked, edits_for=lambda p: edits, edit_seconds=60.0)
    order = [c.token_edit for c in script.calls]
    assert order[:7] == [True, True, True, True, False, True, True]


def test_an_answer_unlike_the_code_comes_before_the_edits() -> None:
    # No fork: the model would not write the code back, so its answer is likely a change.
    script = Script(outcome("tests_failed"), outcome("passed"))
    counted, _ = plan(script, edits_for=lambda p: ["edit"])
    assert [c.token_edit for c in script.calls] == [False, True]
    assert counted.attempt.verdict == "passed"


def test_a_long_functions_edits_all_come_before_its_answer() -> None:
    # Writing a long function back takes a minute or more; an edit takes a test run.
    body = "".join(f"    x{i} = {i}\n" for i in range(LONG_ANSWER_CHARS // 10))
    long_prompt = dataclasses.replace(PROMPT, faulty_code=f"def f():\n{body}    return 1\n")
    edits = [f"edit {i}" for i in range(6)]
    script = Script(*(outcome("tests_failed") for _ in range(20)))
    plan(script, edits_for=lambda p: edits, edit_seconds=60.0, prompt=long_prompt)
    assert [c.token_edit for c in script.calls][:7] == [True] * 6 + [False]


def test_a_round_whose_time_went_on_its_edits_ends_without_an_answer() -> None:
    stop = threading.Event()

    def edits(prompt: RefinePrompt) -> Iterator[str]:
        yield "edit 0"
        stop.set()  # the round's share passes while its second edit is tested
        yield "edit 1"
        yield "edit 2"

    script = Script(*(outcome("tests_failed") for _ in range(5)))
    counted, attempts = plan(script, forked, stop=stop, edits_for=edits)
    assert [c.token_edit for c in script.calls] == [True, True]
    # Nothing of the edits to keep or refine: an edit counts only when it passes.
    assert counted.attempt.verdict == "cancelled" and counted.run is None
    assert [a.verdict for a in attempts] == ["tests_failed", "tests_failed"]


def test_a_round_whose_share_passed_while_its_copy_was_scored_still_tries_one_edit() -> None:
    stop = threading.Event()
    stop.set()  # scoring a long function's copy took longer than the round's share
    script = Script(outcome("passed"))
    counted, _ = plan(script, forked, stop=stop, edits_for=lambda p: ["edit 0", "edit 1"])
    assert [c.token_edit for c in script.calls] == [True]
    assert counted.attempt.verdict == "passed"


def test_an_answer_that_passes_leaves_the_edits_untried() -> None:
    taken: list[str] = []

    def edits(prompt: RefinePrompt) -> Iterator[str]:
        taken.append("edit")
        yield "edit"

    script = Script(outcome("passed"))
    plan(script, edits_for=edits)
    assert [c.token_edit for c in script.calls] == [False] and taken == []


def test_a_round_tries_four_edits_then_more_while_they_take_under_its_share() -> None:
    edits = [f"edit {i}" for i in range(10)]
    script = Script(*(outcome("tests_failed") for _ in range(20)))
    plan(script, forked, edits_for=lambda p: edits)
    assert sum(c.token_edit for c in script.calls) == EDITS_PER_ROUND
    script = Script(*(outcome("tests_failed") for _ in range(20)))
    plan(script, forked, edits_for=lambda p: edits, edit_seconds=60.0)
    assert sum(c.token_edit for c in script.calls) == len(edits)


def test_edits_the_guard_turns_away_take_no_place_in_the_round() -> None:
    edits = [f"edit {i}" for i in range(10)]
    # Three edits name an undefined name (no test ran); four more reach the tests.
    turned_away = [outcome("undefined_names") for _ in range(3)]
    script = Script(*turned_away, *(outcome("tests_failed") for _ in range(20)))
    plan(script, forked, edits_for=lambda p: edits)
    assert sum(c.token_edit for c in script.calls) == EDITS_PER_ROUND + 3


def test_a_round_tests_at_most_its_most_edits() -> None:
    edits = [f"edit {i}" for i in range(MAX_EDITS_PER_ROUND + 10)]
    script = Script(*(outcome("tests_failed") for _ in range(MAX_EDITS_PER_ROUND + 20)))
    plan(script, forked, edits_for=lambda p: edits, edit_seconds=600.0)
    assert sum(c.token_edit for c in script.calls) == MAX_EDITS_PER_ROUND


def test_an_edit_that_runs_into_a_tests_timeout_ends_the_rounds_extra_edits() -> None:
    edits = [f"edit {i}" for i in range(10)]
    hung = TestRunResult(Path("."), (TestCaseResult("t.py::test_0", "timeout"),), 1, 3.0)
    script = Script(
        outcome("tests_failed", run=hung), *(outcome("tests_failed") for _ in range(20))
    )
    plan(script, forked, edits_for=lambda p: edits, edit_seconds=60.0)
    assert sum(c.token_edit for c in script.calls) == EDITS_PER_ROUND


def test_when_no_edit_passes_the_answer_follows_and_counts_though_an_edit_got_further() -> None:
    script = Script(
        outcome("tests_failed", run=_run(2, 1)),  # the edit gets further than the answer
        outcome("tests_failed", run=_run(1, 2)),
        outcome("tests_failed", run=_run(0, 3)),  # the rewrite from the intent after the fork
    )
    counted, attempts = plan(script, forked, edits_for=lambda p: ["edit"])
    assert [c.token_edit for c in script.calls] == [True, False, False]
    assert counted.run is not None and len(counted.run.passed) == 1
    assert len(attempts) == 3


def test_no_edit_is_tried_once_the_round_must_stop() -> None:
    stop = threading.Event()
    stop.set()
    script = Script(outcome("copy"))
    plan(script, stop=stop, edits_for=lambda p: ["edit"])
    assert [c.token_edit for c in script.calls] == [False]


def test_the_scoring_seconds_go_to_the_rounds_first_attempt_an_edit_or_an_answer() -> None:
    def slow(prompt: RefinePrompt, temperature: float) -> tuple[list[str], bool]:
        time.sleep(0.05)
        return ["def f():\n    return"], True

    script = Script(*(outcome("tests_failed") for _ in range(3)))
    plan(script, slow, edits_for=lambda p: ["edit"])
    assert script.score_s[0] >= 0.05 and script.score_s[1] == 0.0


EXTRA = dataclasses.replace(CONFIG, extra_answers=2)


def test_a_round_whose_answer_failed_samples_a_hot_refinement_then_a_rewrite_from_the_intent() -> (
    None
):
    script = Script(outcome("tests_failed"), outcome("tests_failed"), outcome("tests_failed"))
    _, attempts = plan(script, config=EXTRA)
    assert [a.verdict for a in attempts] == ["tests_failed"] * 3
    first, hot, rewrite = script.calls
    assert first == Call(PROMPT, 0.2, "", False)
    assert hot.temperature == 0.9 and not hot.prompt.from_scratch
    assert rewrite.temperature == 0.9 and rewrite.prompt.from_scratch


def test_the_extra_answers_end_at_the_first_that_passes() -> None:
    script = Script(outcome("tests_failed"), outcome("passed"))
    counted, attempts = plan(script, config=EXTRA)
    assert counted.attempt.verdict == "passed" and len(attempts) == 2


def test_an_extra_answer_that_gets_further_counts_for_the_round() -> None:
    script = Script(
        outcome("tests_failed", run=_run(0, 2)),
        outcome("tests_failed", run=_run(1, 1)),
        outcome("tests_failed", run=_run(0, 2)),
    )
    counted, _ = plan(script, config=EXTRA)
    assert counted.run is not None and len(counted.run.passed) == 1


def test_an_extra_answer_counts_over_answers_that_never_reached_the_tests() -> None:
    never = [outcome("syntax_error") for _ in range(1 + CONFIG.resamples)]
    script = Script(*never, outcome("tests_failed"), outcome("tests_failed"))
    counted, attempts = plan(script, config=EXTRA)
    assert counted.attempt.verdict == "tests_failed" and len(attempts) == 5


def test_no_extra_answer_starts_once_the_rounds_share_of_the_time_has_passed() -> None:
    stop = threading.Event()

    class StopAfterFirst(Script):
        def __call__(self, *args: object, **kwargs: object) -> Outcome:
            made = super().__call__(*args, **kwargs)  # type: ignore[arg-type]
            stop.set()
            return made

    script = StopAfterFirst(outcome("tests_failed"), outcome("passed"))
    counted, attempts = plan(script, stop=stop, config=EXTRA)
    assert counted.attempt.verdict == "tests_failed" and len(attempts) == 1


def test_a_long_function_gets_no_extra_answers() -> None:
    long_code = "def f():\n" + "    x = 1\n" * (LONG_ANSWER_CHARS // 10) + "    return x\n"
    long_prompt = dataclasses.replace(PROMPT, faulty_code=long_code)
    script = Script(outcome("tests_failed"), outcome("passed"))
    counted, attempts = plan(script, config=EXTRA, prompt=long_prompt)
    assert counted.attempt.verdict == "tests_failed" and len(attempts) == 1


def test_an_answer_that_made_progress_ends_the_round_the_next_one_builds_on_it() -> None:
    script = Script(outcome("tests_failed", run=_run(1, 1)), outcome("passed"))
    counted, attempts = plan(
        script, config=EXTRA, progressed=lambda o: o.run is not None and bool(o.run.passed)
    )
    assert counted.attempt.verdict == "tests_failed" and len(attempts) == 1
