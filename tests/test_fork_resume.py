"""A fork of a copied answer ends once it is back on the copy: the copy gives the rest."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from project_support import make_project

from cyclefix.models.backend import (
    ChatMessage,
    Fork,
    ForksCheck,
    GenerationOptions,
    GenerationResult,
    TextCallback,
    TextCheck,
)
from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, fix
from cyclefix.refine.fork import CopyResumed, branched_from

COPY = (
    "```python\n"
    "def spread(values):\n"
    "    ordered = sorted(values)\n"
    "    low = ordered[1]\n"
    "    high = ordered[-1]\n"
    "    width = high - low\n"
    "    return width\n"
    "```"
)
# The copy up to the fork in `ordered[1]`, then the token taken there.
BRANCH = COPY[: COPY.index("1]\n")] + "0"


def streamed(resumed: CopyResumed, continuation: str) -> list[bool]:
    """What `resumed` says after each line of `continuation` written after the branch, up
    to the first yes (where a backend stops)."""
    text = BRANCH
    said: list[bool] = []
    for line in continuation.splitlines(keepends=True):
        text += line
        said.append(resumed(text))
        if said[-1]:
            break
    return said


def test_two_lines_of_the_copy_after_the_edit_end_the_answer_with_the_rest_of_the_copy() -> None:
    resumed = CopyResumed(BRANCH, COPY)
    said = streamed(resumed, "]\n    high = ordered[-1]\n    width = high - low\n    width = 0\n")
    assert said == [False, False, True]
    assert resumed.completed == COPY.replace("ordered[1]", "ordered[0]")


def test_an_edit_of_several_lines_is_kept_until_the_copy_resumes() -> None:
    resumed = CopyResumed(BRANCH, COPY)
    lines = "]\n    high = max(ordered)\n    width = high - low\n    return width\n"
    assert streamed(resumed, lines) == [False, False, False, True]
    assert resumed.completed == COPY.replace("ordered[1]", "ordered[0]").replace(
        "ordered[-1]", "max(ordered)"
    )


def test_an_inserted_line_keeps_the_copys_lines_in_their_order() -> None:
    resumed = CopyResumed(BRANCH, COPY)
    lines = "]\n    assert low <= ordered[-1]\n    high = ordered[-1]\n    width = high - low\n"
    assert streamed(resumed, lines)[-1]
    assert resumed.completed == COPY.replace(
        "ordered[1]\n", "ordered[0]\n    assert low <= ordered[-1]\n"
    )


def test_short_lines_alike_in_any_code_do_not_show_the_copy_again() -> None:
    copy = "```python\ndef f(x):\n    if x > 1:\n        y = 1\n    else:\n        pass\n    return y + x\n```"
    branch = copy[: copy.index("1:")] + "0"
    resumed = CopyResumed(branch, copy)
    text = branch + ":\n        y = 2\n    else:\n        pass\n"
    assert not resumed(text)
    assert resumed(text + "    return y + x\n")


def test_an_answer_that_does_not_continue_the_branch_is_never_cut() -> None:
    resumed = CopyResumed(BRANCH, COPY)
    # A backend that answers from scratch: words, then the whole function, fixed.
    fixed = "The fix:\n" + COPY.replace("ordered[1]", "ordered[0]") + "\n"
    assert not resumed(fixed)
    assert resumed.completed is None


def test_a_branch_is_matched_to_the_copy_it_left() -> None:
    other = COPY.replace("spread", "spread_all")
    assert branched_from(BRANCH, [other, COPY]) == COPY
    unrelated = "```python\ndef unrelated(values):\n    return sorted(values)[0]\n"
    assert branched_from(unrelated, [COPY]) is None
    assert branched_from(BRANCH, []) is None


class ContinuingBackend(ScriptedBackend):
    """Sees the logits as llama.cpp does: scores a copy of the code with one hesitant token
    (at `fork_at`, the runner-up `alternative`), and continues the answer it is asked to
    continue with `continuation`, a line at a time, until `until` says it is complete."""

    def __init__(self, fork_at: str, alternative: str, continuation: str) -> None:
        super().__init__([continuation])
        self.fork_at = fork_at
        self.alternative = alternative
        self.continuation = continuation
        self.written: list[str] = []

    def forks_along(
        self,
        messages: Sequence[ChatMessage],
        answer_prefix: str,
        continuation: str,
        *,
        cancel: threading.Event | None = None,
        enough: ForksCheck | None = None,
    ) -> tuple[Fork, ...] | None:
        text = answer_prefix + continuation
        return (Fork(text.index(self.fork_at), self.alternative, 0.1),)

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
        until: TextCheck | None = None,
    ) -> GenerationResult:
        text = options.answer_prefix
        for line in self.continuation.splitlines(keepends=True):
            text += line
            self.written.append(line)
            if until is not None and until(text):
                break
        return GenerationResult(text, 100, len(self.written), 0.01, 0.0, "stop")


@pytest.mark.usefixtures("without_operator_edits")
def test_a_forked_fix_is_verified_with_the_rest_of_the_copy_not_the_models(
    tmp_path: Path,
) -> None:
    source = COPY.removeprefix("```python\n").removesuffix("```")
    project = make_project(
        tmp_path / "stats",
        {
            "stats.py": source,
            "test_stats.py": "from stats import spread\n\n\n"
            "def test_spread():\n    assert spread([3, 1, 2]) == 2\n",
        },
    )
    # Past two lines of the copy, the model would have broken the function again.
    continuation = (
        "]\n    high = ordered[-1]\n    width = high - low\n    width = 0\n    return width\n```"
    )
    backend = ContinuingBackend("1]\n", "0", continuation)
    config = RefineConfig(rounds=1, budget_seconds=60, extend_to_budget=False, resamples=0)
    result = fix(project, backend, config=config)
    assert result.status == "fixed"
    assert backend.written == continuation.splitlines(keepends=True)[:3]
    assert result.rounds[0].attempts[0].forked
    assert [c.fixed for c in result.changes] == [source.replace("ordered[1]", "ordered[0]")]
