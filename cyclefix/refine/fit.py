"""Prompts that fit the model's context window: narrowed step by step, never a failed run.

A prompt over the window used to end the whole fix in an error (a whole-module fallback gave
9,759- and 13,548-token prompts for an 8,192-token window). Here the least needed parts go
first: the other functions on the failing path, the names of other failing tests, long
feedback, the module's description and outline, the test's source; the caller narrows a
whole-module target to one function. What was left out is reported for the result's notes.

A prompt that fits the window may still be long on a real library (900-1,800 tokens, mostly the
module's outline: imports, constants and signatures of a 1,000-line file), which a small model
reads slowly and follows worse. Past PROMPT_TOKENS the outline keeps only what the code shown
(the suspect, the failing path, the test) names; then the test's source and the module's
description are shortened. The suspect, the failing path and the feedback are never cut for it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cyclefix.models.backend import ChatMessage
from cyclefix.refine.docstrings import cut_docstrings
from cyclefix.refine.outline import named_outline
from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.prompt import RefinePrompt, build_refine_messages
from cyclefix.refine.source import function_spans, target_for_span
from cyclefix.refine.types import Target
from cyclefix.runner.feedback import bound_text
from cyclefix.runner.results import TestCaseResult

# Tokens kept free beyond the answer itself: a resample adds a note to the same prompt.
NOTE_ROOM = 96
# Feedback is cut to these lengths (characters), in turn, when the prompt does not fit.
FEEDBACK_SHORT = 400
FEEDBACK_SHORTEST = 150
# The test's source is cut to this many characters before it is left out.
TEST_SOURCE_SHORT = 1200
# ... and to this when a prompt that fits is trimmed (its end, with the failing assert, stays).
TEST_SOURCE_TRIMMED = 600
# A prompt this long (tokens, the answer's room aside) is trimmed though it fits the window.
PROMPT_TOKENS = 900


@runtime_checkable
class WindowedBackend(Protocol):
    """A backend that knows its context window and counts a prompt's tokens (llama.cpp)."""

    @property
    def n_ctx(self) -> int: ...

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int: ...


@dataclass(frozen=True)
class FittedPrompt:
    prompt: RefinePrompt
    # What was left out or shortened to fit, e.g. "the rest of the module"; empty if nothing.
    left_out: tuple[str, ...] = ()
    # What was trimmed to keep a prompt that fits near PROMPT_TOKENS (nothing the fix needs).
    trimmed: tuple[str, ...] = ()


def answer_room(prompt: RefinePrompt, max_tokens: int, backend: WindowedBackend) -> int:
    """Tokens the answer needs past the prompt: its start written for the model (the
    signature, or a fork's copy of the code up to where it leaves it: at most the code,
    counted by the model's tokenizer), the tokens it may generate, and a resample's note."""
    code_tokens = backend.count_tokens([ChatMessage("user", prompt.faulty_code)])
    return code_tokens + max_tokens + NOTE_ROOM


# One narrowing step: a smaller prompt and what it left out, or None when it has nothing left.
_Narrowing = Callable[[RefinePrompt], tuple[RefinePrompt, str] | None]


def _drop_related(prompt: RefinePrompt) -> tuple[RefinePrompt, str] | None:
    if not prompt.related:
        return None
    last = prompt.related[-1]
    return (
        dataclasses.replace(prompt, related=prompt.related[:-1]),
        f"`{last.qualname}` ({last.path})",
    )


def _drop_other_failures(prompt: RefinePrompt) -> tuple[RefinePrompt, str] | None:
    if not prompt.other_failures:
        return None
    return dataclasses.replace(prompt, other_failures=()), "the other failing tests' names"


def _shorten_feedback(limit: int) -> _Narrowing:
    def narrow(prompt: RefinePrompt) -> tuple[RefinePrompt, str] | None:
        if len(prompt.feedback) <= limit:
            return None
        short = bound_text(prompt.feedback, limit)
        return dataclasses.replace(prompt, feedback=short), f"feedback past {limit} characters"

    return narrow


def _drop_description(prompt: RefinePrompt) -> tuple[RefinePrompt, str] | None:
    if not prompt.description:
        return None
    return dataclasses.replace(prompt, description=""), "the module's description"


def _drop_context(prompt: RefinePrompt) -> tuple[RefinePrompt, str] | None:
    if not prompt.context:
        return None
    return dataclasses.replace(prompt, context=""), "the rest of the module"


def _cut_docstrings(prompt: RefinePrompt) -> tuple[RefinePrompt, str] | None:
    if prompt.cut_docstrings:
        return None
    faulty, cuts = cut_docstrings(prompt.faulty_code)
    under, more = cut_docstrings(prompt.code_under_test)
    made = tuple(dict.fromkeys((*cuts, *more)))
    if not made:
        return None
    cut = dataclasses.replace(
        prompt, faulty_code=faulty, code_under_test=under, cut_docstrings=made
    )
    return cut, "the long docstring of the code shown, past its opening (put back in the fix)"


def _shorten_test_source_to(limit: int) -> _Narrowing:
    def narrow(prompt: RefinePrompt) -> tuple[RefinePrompt, str] | None:
        if len(prompt.test_source) <= limit:
            return None
        short = bound_text(prompt.test_source, limit)
        return dataclasses.replace(prompt, test_source=short), "part of the failing test's source"

    return narrow


_shorten_test_source = _shorten_test_source_to(TEST_SOURCE_SHORT)


def _drop_test_source(prompt: RefinePrompt) -> tuple[RefinePrompt, str] | None:
    if not prompt.test_source:
        return None
    return dataclasses.replace(prompt, test_source=""), "the failing test's source"


# Least needed first: the faulty code, the names and the gist of the feedback stay to the end.
NARROWINGS: tuple[_Narrowing, ...] = (
    _drop_related,
    _drop_other_failures,
    _shorten_feedback(FEEDBACK_SHORT),
    _drop_description,
    _drop_context,
    _cut_docstrings,
    _shorten_test_source,
    _drop_test_source,
    _shorten_feedback(FEEDBACK_SHORTEST),
)


def fit_prompt(prompt: RefinePrompt, backend: object, max_tokens: int) -> FittedPrompt | None:
    """`prompt`, narrowed until it and its answer (`max_tokens`) fit the backend's window;
    None when even the narrowest does not. Backends that do not tell their window get the
    prompt as it is."""
    if not isinstance(backend, WindowedBackend):
        return FittedPrompt(prompt)

    def tokens(candidate: RefinePrompt) -> int:
        return backend.count_tokens(build_refine_messages(candidate))

    def fits(candidate: RefinePrompt) -> bool:
        # The answer's room counts the code shown: a cut docstring makes room there too.
        room = answer_room(candidate, max_tokens, backend)
        return tokens(candidate) <= backend.n_ctx - room

    if fits(prompt):
        return trimmed(prompt, tokens)
    left_out: list[str] = []
    current = prompt
    for narrow in NARROWINGS:
        while (step := narrow(current)) is not None:
            current, what = step
            left_out.append(what)
            if fits(current):
                return FittedPrompt(current, tuple(left_out))
    return None


# Trimming steps for a prompt that fits but is long, in turn; each keeps what the fix needs.
def _outline_of_names(prompt: RefinePrompt) -> tuple[RefinePrompt, str] | None:
    context = named_outline(prompt.context, _shown_code(prompt))
    if context is None or context == prompt.context:
        return None
    return dataclasses.replace(prompt, context=context), "the module's unreferenced outline"


TRIMMINGS: tuple[_Narrowing, ...] = (
    _outline_of_names,
    _drop_description,
    _shorten_test_source_to(TEST_SOURCE_TRIMMED),
)


def trimmed(prompt: RefinePrompt, tokens: Callable[[RefinePrompt], int]) -> FittedPrompt:
    """`prompt` (which fits) trimmed step by step while over PROMPT_TOKENS, counted with the
    code under test shown: the opening is then the same whichever attempt a round shows."""
    current, done = prompt, []
    for trim in TRIMMINGS:
        steady = dataclasses.replace(current, faulty_code=_code_under_test(current))
        if tokens(steady) <= PROMPT_TOKENS:
            break
        step = trim(current)
        if step is not None:
            current, what = step
            done.append(what)
    return FittedPrompt(current, trimmed=tuple(done))


def _code_under_test(prompt: RefinePrompt) -> str:
    return prompt.code_under_test or prompt.faulty_code


def _shown_code(prompt: RefinePrompt) -> str:
    shown = (_code_under_test(prompt), prompt.test_source, *(t.source for t in prompt.related))
    return "\n".join(shown)


def function_instead_of_module(
    index: ProjectIndex, module: Target, failures: Sequence[TestCaseResult]
) -> Target | None:
    """The one function of a whole-module target that the failing tests point at: a frame in
    it, then a function they executed (traced runs), then one whose name the test mentions
    (first mention first); None when nothing points at one."""
    tree, source = index.tree(module.path), index.source(module.path)
    if tree is None or source is None:
        return None
    for case in failures:
        for frame in reversed(case.project_frames):
            if frame.path == module.path:
                found = index.target_at(frame.path, frame.line)
                if found is not None:
                    return found
    spans = function_spans(tree)
    by_qualname = {span.qualname: span for span in spans}
    for case in failures:
        for executed in case.executed:
            span = by_qualname.get(executed.qualname)
            if executed.path == module.path and span is not None:
                return target_for_span(module.path, source, span)
    for case in failures:
        for text in (case.assert_source, case.line_source, case.test_source):
            words = re.findall(r"[A-Za-z_]\w*", text or "")
            for word in words:
                span = next((s for s in spans if s.name == word), None)
                if span is not None:
                    return target_for_span(module.path, source, span)
    return None
