"""Token edits: the model's alternatives at a suspicious line, each a whole candidate."""

from __future__ import annotations

import itertools
import threading

import pytest
from edit_support import copy_of, scored

from cyclefix.models.backend import Choice, Fork
from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine.copies import EDIT_BACKLOG, CopyPlanner
from cyclefix.refine.localize import Localization
from cyclefix.refine.prompt import RefinePrompt
from cyclefix.refine.spectrum import FunctionScore
from cyclefix.refine.suspicious_lines import LINE_PENALTY, edit_lines
from cyclefix.refine.token_edits import (
    EDITS_PER_ROUND,
    callables_as_operands,
    line_spans,
    scored_until,
    token_edits,
)
from cyclefix.refine.types import EditLine, RefineConfig, Target

CODE = 'def percent(text):\n    value = text.split("%")[1]\n    return float(value)\n'
LINE = 'value = text.split("%")[1]'


def test_the_models_choice_in_place_of_a_token_of_the_line_is_an_edit() -> None:
    text = copy_of(CODE)
    forks = scored(text, {(LINE, "1"): [Choice("0", -2.0), Choice("2", -5.0)]})
    edits = token_edits(text, forks, [EditLine(LINE)])
    assert [e.code for e in edits[:2]] == [
        CODE.replace("[1]", "[0]"),
        CODE.replace("[1]", "[2]"),
    ]
    assert edits[0].gap == -2.0 and edits[0].line == LINE


def test_the_likeliest_edit_comes_first_whatever_its_token() -> None:
    text = copy_of(CODE)
    forks = scored(
        text,
        {(LINE, "1"): [Choice("0", -4.0)], (LINE, "split"): [Choice("rsplit", -1.0)]},
    )
    edits = token_edits(text, forks, [EditLine(LINE)])
    assert edits[0].code == CODE.replace(".split", ".rsplit")
    assert CODE.replace("[1]", "[0]") in [e.code for e in edits]


def test_lines_not_suspected_are_never_edited() -> None:
    text = copy_of(CODE)
    forks = scored(text, {("return float(value)", " float"): [Choice(" int", -0.5)]})
    assert token_edits(text, forks, [EditLine(LINE)]) == []


@pytest.mark.parametrize(
    ("line", "token", "choice", "fixed"),
    [
        # In front of the token: inserted.
        ("return x is None", " None", " not", "return x is not None"),
        # The token after next: the two before it deleted.
        ("return x[n + 1]", " +", "]", "return x[n]"),
        # ... or the three before it (a tokenizer that splits ` 1` into ` ` and `1`).
        ("return x[n + -1]", " +", "]", "return x[n]"),
    ],
)
def test_a_choice_may_insert_or_delete(line: str, token: str, choice: str, fixed: str) -> None:
    text = copy_of(f"def f(x, n):\n    {line}\n")
    forks = scored(text, {(line, token): [Choice(choice, -1.0)]})
    assert f"def f(x, n):\n    {fixed}\n" in [
        e.code for e in token_edits(text, forks, [EditLine(line)])
    ]


def test_edits_that_do_not_parse_or_change_nothing_or_were_seen_are_left_out() -> None:
    text = copy_of(CODE)
    forks = scored(
        text,
        {(LINE, "1"): [Choice("(", -0.1), Choice("]", -0.2), Choice("0", -3.0), Choice("2", -4.0)]},
    )
    seen = [CODE.replace("[1]", "[0]")]
    assert [e.code for e in token_edits(text, forks, [EditLine(LINE)], seen)][:1] == [
        CODE.replace("[1]", "[2]")
    ]


def test_an_edit_never_joins_two_lines() -> None:
    text = copy_of(CODE)
    forks = scored(text, {(LINE, "]"): [Choice("];", -0.1)]})  # `...[1]; return ...` parses
    assert all(
        e.code.count("\n") == CODE.count("\n") for e in token_edits(text, forks, [EditLine(LINE)])
    )


def test_scoring_must_reach_the_end_of_the_last_suspicious_line() -> None:
    text = copy_of(CODE)
    ((start, end),) = line_spans(text, [LINE])
    assert text[start:end] == LINE
    assert scored_until(text, [LINE]) == end and scored_until(text, []) == 0


def target(source: str = CODE) -> Target:
    return Target("m.py", "percent", 10, 12, source)


def test_edit_lines_are_the_suspicious_lines_the_code_shown_still_holds() -> None:
    key = ("m.py", "percent")
    loc = Localization(
        (target(),),
        None,
        scores={key: FunctionScore(key, 1.0, 2, 0, (11, 12), lines_tied=True)},
        lines={key: (11, 12)},
        scored_lines={key: ((11, 1.0), (12, 1.0))},
    )
    assert edit_lines(loc, (target(),), CODE) == (EditLine(LINE), EditLine("return float(value)"))
    rewritten = CODE.replace("float(value)", "int(value)")
    assert edit_lines(loc, (target(),), rewritten) == (EditLine(LINE),)


def test_lines_the_passing_tests_ran_too_are_edited_after_the_most_suspicious() -> None:
    key = ("m.py", "percent")
    loc = Localization(
        (target(),),
        None,
        lines={key: (11,)},
        scored_lines={key: ((11, 1.0), (12, 0.5))},
    )
    best, other = edit_lines(loc, (target(),), CODE)
    assert best == EditLine(LINE) and other == EditLine("return float(value)", LINE_PENALTY / 2)
    text = copy_of(CODE)
    # The same alternative, one logit apart, at each line: the penalty puts the second after.
    forks = scored(
        text,
        {
            (LINE, "1"): [Choice("0", -3.0)],
            ("return float(value)", " float"): [Choice(" int", -2.0)],
        },
    )
    edits = token_edits(text, forks, [best, other])
    assert [e.line for e in edits] == [LINE, "return float(value)"]
    assert edits[1].gap == -2.0 - LINE_PENALTY / 2


class ScoresTheLine(ScriptedBackend):
    """Scores any copy: `0` is the runner-up to `1`, `2` next; every other token is sure."""

    def __init__(self) -> None:
        super().__init__(["unused"])
        self.scorings = 0

    def forks_along(self, messages, answer_prefix, continuation, *, cancel=None, enough=None):  # type: ignore[no-untyped-def]
        self.scorings += 1
        text = answer_prefix + continuation
        choices = {(LINE, "1"): [Choice(str(d), -float(d + 1)) for d in (0, 2, 3, 4, 5, 6)]}
        return tuple(f for f in scored(text, choices) if f.offset >= len(answer_prefix))


def test_the_planner_edits_the_code_shown_at_its_suspicious_lines_a_few_per_round() -> None:
    backend = ScoresTheLine()
    planner = CopyPlanner(backend, RefineConfig(), [], threading.Event())
    prompt = RefinePrompt(("percent",), CODE, "failed", suspicious_lines=(EditLine(LINE),))
    planner.branches_off_copies(prompt, 0.2, (target(),), 0)
    first = list(itertools.islice(planner.token_edits(prompt, (target(),)), EDITS_PER_ROUND))
    assert backend.scorings == 1  # the round's scoring of the copy is reused
    assert len(first) == EDITS_PER_ROUND and first[0] == CODE.replace("[1]", "[0]")
    # Only the edits taken count as tried: the next round goes on down the list.
    later = list(planner.token_edits(prompt, (target(),)))
    assert later and not set(later) & set(first)
    assert len(later) <= EDIT_BACKLOG


def test_edits_not_taken_stay_candidates_when_a_later_round_has_no_lines_to_edit() -> None:
    planner = CopyPlanner(ScoresTheLine(), RefineConfig(), [], threading.Event())
    prompt = RefinePrompt(("percent",), CODE, "failed", suspicious_lines=(EditLine(LINE),))
    planner.branches_off_copies(prompt, 0.2, (target(),), 0)
    first = list(itertools.islice(planner.token_edits(prompt, (target(),)), 2))
    # The next round starts from an attempt that got further: no traced line is left in it.
    moved = RefinePrompt(("percent",), CODE.replace(LINE, "value = text"), "failed")
    later = list(planner.token_edits(moved, (target(),)))
    assert CODE.replace("[1]", "[3]") in later and not set(later) & set(first)
    assert list(planner.token_edits(moved, (target(), target()))) == []  # other targets


def test_no_edits_without_suspicious_lines_or_for_a_rewrite_from_the_intent() -> None:
    planner = CopyPlanner(ScoresTheLine(), RefineConfig(), [], threading.Event())
    plain = RefinePrompt(("percent",), CODE, "failed")
    assert list(planner.token_edits(plain, (target(),))) == []  # nor any left from before
    scratch = RefinePrompt(
        ("percent",), CODE, "", from_scratch=True, suspicious_lines=(EditLine(LINE),)
    )
    assert list(planner.token_edits(scratch, (target(),))) == []


def test_the_code_under_test_is_edited_where_the_attempt_shown_rewrote_the_line() -> None:
    backend = ScoresTheLine()
    planner = CopyPlanner(backend, RefineConfig(), [], threading.Event())
    attempt = CODE.replace(LINE, 'value = text.rstrip("%")')
    prompt = RefinePrompt(("percent",), attempt, "failed", suspicious_lines=(EditLine(LINE),))
    planner.branches_off_copies(prompt, 0.2, (target(),), 0)
    edits = list(planner.token_edits(prompt, (target(),)))
    assert backend.scorings == 2 and edits[0] == CODE.replace("[1]", "[0]")


class AsksEnough(ScriptedBackend):
    """Scores a copy one token at a time, stopping where `enough` says so."""

    def __init__(self) -> None:
        super().__init__(["unused"])
        self.read: list[int] = []

    def forks_along(self, messages, answer_prefix, continuation, *, cancel=None, enough=None):  # type: ignore[no-untyped-def]
        text = answer_prefix + continuation
        forks: list[Fork] = []
        for fork in scored(text, {}):
            if fork.offset < len(answer_prefix):
                continue
            forks.append(Fork(fork.offset, "x", 0.0))  # unsure everywhere: a copy is unlikely
            if enough is not None and enough(forks):
                break
        self.read.append(len(forks))
        return tuple(forks)


def test_an_unlikely_copy_is_scored_only_as_far_as_its_suspicious_lines() -> None:
    backend = AsksEnough()
    planner = CopyPlanner(backend, RefineConfig(), [], threading.Event())
    plain = RefinePrompt(("percent",), CODE, "failed")
    suspected = RefinePrompt(("percent",), CODE, "failed", suspicious_lines=(EditLine(LINE),))
    planner.scored_copy(plain, CODE, 0.2, 0.25)
    _, (copy, forks, _) = planner.scored_copy(suspected, CODE, 0.2, 0.25)
    assert backend.read[0] < backend.read[1]
    # Read up to the line's last token, and not on through the next line.
    assert forks[-1].offset >= scored_until(copy, [LINE]) > forks[-2].offset


PERCENT = "def percent_of(cents, percent):\n    return cents * percent // 100\n"
PERCENT_LINE = "return cents * percent // 100"


def test_a_function_put_where_an_operand_was_is_no_edit() -> None:
    # The model's `round` there starts `round(cents ...`; alone it is `round * percent`.
    text = copy_of(PERCENT)
    forks = scored(
        text,
        {
            (PERCENT_LINE, " cents"): [
                Choice(" round", -0.5),
                Choice(" math", -0.7),
                Choice(" int", -0.8),
                Choice(" total", -2.0),
            ],
            (PERCENT_LINE, " 100"): [Choice(" 50", -1.0)],
        },
    )
    codes = [e.code for e in token_edits(text, forks, [EditLine(PERCENT_LINE)])]
    assert PERCENT.replace("100", "50") in codes
    assert PERCENT.replace("cents *", "total *") in codes
    assert not [c for c in codes if any(f" {n} *" in c for n in ("round", "math", "int"))]


@pytest.mark.parametrize(
    ("code", "names"),
    [
        ("def f(x):\n    return round * x\n", {"round"}),
        ("def f(x):\n    return -abs\n", {"abs"}),
        ("def f(x):\n    return floor + x\n", {"floor"}),  # the guard would import it
        ("def f(x, round):\n    return round * x\n", set()),  # a parameter of that name
        ("def f(x):\n    import math\n    return math * x\n", set()),  # bound by its import
        ("def f(x):\n    return int | None\n", set()),  # a union of types
        ("def f(x):\n    return '%s' % str\n", set()),  # formatting
        ("def f(x):\n    return inf * x\n", set()),  # a number once imported
    ],
)
def test_callables_as_operands_are_found_where_they_would_raise(code: str, names: set[str]) -> None:
    assert callables_as_operands(code) == names
