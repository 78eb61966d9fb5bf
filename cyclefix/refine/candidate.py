"""One candidate: generate an answer, check it without running anything, then verify it.

The checks refuse what needs no test run to refuse (no code, a copy of the code shown, a
candidate already tried, names that do not resolve); the rest runs in the scratch copy
(refine.verify). Every attempt ends in an `Outcome` and its phases (refine.types.Attempt).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence, Set
from pathlib import Path

from cyclefix.models.backend import Backend, GenerationOptions, GenerationResult
from cyclefix.refine.agreement import candidate_key
from cyclefix.refine.copies import FORKS_PER_COPY, copied_answers
from cyclefix.refine.docstrings import restored
from cyclefix.refine.fork import CopyResumed, branch_prefixes, branched_from
from cyclefix.refine.guard import new_undefined_names, stdlib_imports_for
from cyclefix.refine.importtime import import_failure
from cyclefix.refine.parse import extract_code
from cyclefix.refine.probe import with_probe
from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.prompt import RefinePrompt, answer_prefix, build_refine_messages
from cyclefix.refine.rigged import rigged_comparisons
from cyclefix.refine.round import Outcome, Round, State
from cyclefix.refine.source import normalized_code, read_source
from cyclefix.refine.splice import SpliceError, splice_candidate, with_imports
from cyclefix.refine.tampering import tampering
from cyclefix.refine.types import (
    Attempt,
    AttemptFinished,
    RefineConfig,
    RefineEvent,
    Target,
    TextGenerated,
    Verdict,
)
from cyclefix.refine.verify import Verified, Verifier
from cyclefix.runner.feedback import feedback_text
from cyclefix.runner.results import TestCaseResult
from cyclefix.runner.testfiles import is_test_code

# Answers end at the closing fence, or where a small model starts writing tests or a demo at
# the top level after the function; the chat template's end of turn also stops them.
STOP_SEQUENCES = ("\n```\n", "\ndef test_", "\nif __name__", "\nassert ", "\nprint(")


def answer_budget(config: RefineConfig, prompt: RefinePrompt) -> int:
    """Tokens an answer may take: enough to rewrite the code shown, within max_tokens."""
    return min(config.max_tokens, 200 + len(prompt.faulty_code) // 2)


def first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


class Candidates:
    """Makes the candidates of one fix, and remembers what they have seen: the user's text of
    each file touched, the answers written (a fork never heads back to one) and the candidates
    tried (a duplicate is never run again)."""

    def __init__(
        self,
        backend: Backend,
        config: RefineConfig,
        verifier: Verifier,
        emit: Callable[[RefineEvent], None],
        cancel: threading.Event,
    ) -> None:
        self.backend = backend
        self.config = config
        self.verifier = verifier
        self.emit = emit
        self.cancel = cancel
        self.originals: dict[str, str] = {}  # the user's text of every file touched
        self.answers: list[str] = []  # answers written so far, and the code under test as one
        self.tried: set[str] = set()
        self.generations = 0

    def remember_answer(self, text: str) -> None:
        if text not in self.answers:
            self.answers.append(text)

    def remember_original(self, scratch: Path, rel: str) -> None:
        # From the scratch copy, untouched until a file is remembered: the text the fix is
        # computed on, so a save made since is seen at apply (StaleFixError), never reverted.
        if rel not in self.originals:
            self.originals[rel] = read_source(scratch / rel)

    def _generate(
        self,
        prompt: RefinePrompt,
        temperature: float,
        branch: str,
        prefix: str,
        copies: Sequence[str],
    ) -> GenerationResult:
        """The model's answer under `prompt`, continuing `branch` (else `prefix`). A branch
        off one of `copies` (or an earlier answer) ends once it is back on that copy, which
        then gives the rest: a fork is a local edit, and a rewrite from the intent is not."""
        known = (
            None
            if prompt.from_scratch or not branch
            else branched_from(branch, [*copies, *self.answers])
        )
        resumed = CopyResumed(branch, known) if known is not None else None
        options = GenerationOptions(
            temperature=temperature,
            top_p=self.config.top_p,
            max_tokens=answer_budget(self.config, prompt),
            seed=None if self.config.seed is None else self.config.seed + self.generations,
            stop=STOP_SEQUENCES,
            answer_prefix=branch or prefix,
            record_forks=not branch,
        )
        self.generations += 1
        gen = self.backend.generate(
            build_refine_messages(prompt),
            options,
            on_text=lambda text: self.emit(TextGenerated(text)),
            cancel=self.cancel,
            until=resumed,
        )
        if resumed is not None and resumed.completed is not None and gen.finish_reason == "stop":
            gen = dataclasses.replace(gen, text=resumed.completed)
        if gen.finish_reason != "cancelled":
            self.remember_answer(gen.text)
        return gen

    def attempt(
        self,
        rnd: Round,
        prompt: RefinePrompt,
        temperature: float,
        branch: str = "",
        *,
        forked: bool = False,
        score_s: float = 0.0,
        partial: str = "",
        token_edit: bool = False,
    ) -> Outcome:
        """One candidate: generate (continuing `branch`, where it leaves a copy, when given),
        check it, and run the tests on it in the scratch copy. `forked`: it leaves a copy
        the model would likely have written. `score_s`: seconds just spent scoring copies
        for it (refine.copies), counted in its time. `partial`: no generation, this code
        (a part of an earlier answer, refine.partial, or with `token_edit` the code shown
        with a token edited, refine.token_edits) is the answer."""
        t0 = time.monotonic() - score_s
        prefix = answer_prefix(prompt.faulty_code)
        gen = (
            GenerationResult(f"```python\n{partial}```\n", 0, 0, 0.0, 0.0, "stop")
            if partial
            else self._generate(
                prompt, temperature, branch, prefix, copied_answers(prompt, rnd.targets)
            )
        )

        def done(
            verdict: Verdict,
            code: str,
            detail: str,
            feedback: str = "",
            files: dict[str, str] | None = None,
            failing: TestCaseResult | None = None,
            points_at: str = "",
            verified: Verified | None = None,
        ) -> Outcome:
            run = verified.run if verified else None
            attempt = Attempt(
                rnd.index,
                code,
                verdict,
                feedback,
                detail,
                temperature,
                gen.prompt_tokens,
                gen.completion_tokens,
                time.monotonic() - t0,
                len(run.passed) if run else 0,
                len(run.tests) if run else 0,
                forked=forked,
                partial=bool(partial) and not token_edit,
                token_edit=token_edit,
                points_at=points_at,
                score_s=score_s,
                prompt_eval_s=gen.prompt_seconds,
                prompt_tokens_cached=gen.prompt_tokens_cached,
                generate_s=gen.generate_seconds,
                completion_tokens_replayed=gen.completion_tokens_replayed,
                tests_s=verified.seconds if verified else 0.0,
                tests_phases=verified.phases if verified else None,
            )
            self.emit(AttemptFinished(attempt))
            branches = (
                branch_prefixes(gen.text, gen.forks, len(prefix), FORKS_PER_COPY, self.answers)
                if verdict == "copy"
                else ()
            )
            return Outcome(attempt, files or {}, run, failing, branches)

        if gen.finish_reason == "cancelled":
            return done("cancelled", gen.text, "generation stopped")
        code = extract_code(gen.text)
        if code is None:
            return done("no_code", gen.text, "the answer holds no Python code")
        if normalized_code(code) == normalized_code(prompt.faulty_code):
            return done(
                "copy", code, "identical to the faulty code (whitespace and comments ignored)"
            )
        # A docstring the prompt showed cut goes back whole (the user's file keeps it).
        code = restored(code, prompt.cut_docstrings)
        # The answer may rewrite any function the prompt showed in full, in any file.
        scratch, state = rnd.scratch, rnd.state
        editable = (*rnd.targets, *prompt.related)
        for t in editable:
            self.remember_original(scratch, t.path)
        base = {
            t.path: state.sources.get(t.path) or read_source(scratch / t.path) for t in editable
        }
        try:
            spliced = splice_candidate(base, editable, code)
        except SpliceError as exc:
            return done(exc.verdict, code, str(exc), feedback=str(exc))  # type: ignore[arg-type]
        if not spliced.files or all(
            normalized_code(spliced.files[p]) == normalized_code(base[p]) for p in spliced.files
        ):
            return done("copy", code, "changes nothing in the code under test")
        files = dict(spliced.files)
        key = candidate_key(files)
        if key in self.tried:  # its files tell which (refine.agreement counts a repeat)
            return done("duplicate", code, "a candidate already tried", files=files)
        self.tried.add(key)
        for rel, text in list(files.items()):
            problems = new_undefined_names(base[rel], text, rel)
            imports = stdlib_imports_for(problems) if problems else None
            if imports:  # `deque` used, `from collections import deque` forgotten: add it
                files[rel] = with_imports(text, imports)
                problems = new_undefined_names(base[rel], files[rel], rel)
            if problems:
                return done(
                    "undefined_names", code, "; ".join(problems), feedback="; ".join(problems)
                )
            reached = tampering(base[rel], files[rel])
            if reached:
                why = "; ".join(reached) + ": a fix changes what the code computes, nothing else"
                return done("tampering", code, why, feedback=why)
            rigged = rigged_comparisons(base[rel], files[rel])
            if rigged:
                why = "; ".join(rigged) + ": the tests could not judge it"
                return done("rigged", code, why, feedback=why)
        if self.cancel.is_set():
            return done("cancelled", code, "stopped before the tests ran")
        verified = self.verifier.verify(scratch, files, base, state.run, rnd.passed_before)
        run = verified.run
        if run.cancelled:
            return done("cancelled", code, "stopped while the tests ran", verified=verified)
        failing = run.failures[0] if run.failures else None
        if run.collection_errors:
            err = run.collection_errors[0]
            msg = (
                f"{err.path}:{err.line}: {first_line(err.message)}"
                if err.line
                else first_line(err.message)
            )
            # An import-time error in project code is fed back as a failing test's would be.
            raised = import_failure(err)
            feedback = feedback_text(raised) if raised else f"Error: {msg}"
            return done("tests_failed", code, msg, feedback, files, raised, verified=verified)
        if run.all_passed:
            if verified.regression:
                regression = verified.regression
                return done("regressed", code, regression, regression, files, verified=verified)
            passed = f"all {len(run.tests)} tests pass"
            return done("passed", code, passed, files=files, verified=verified)
        feedback = feedback_text(failing) if failing else first_line(run.output_tail)
        feedback = with_probe(feedback, failing, editable)  # what the rewritten code did
        # Where this failure now points, when not at a function the answer rewrote.
        written = {*spliced.replaced, *spliced.added}
        pointed = points_at(scratch, state, files, failing, written)
        if pointed is not None:
            feedback += f"\nThe failure now points at `{pointed.qualname}` ({pointed.path})."
        where = f"{pointed.path}::{pointed.qualname}" if pointed is not None else ""
        broke = sorted(t.nodeid for t in run.failures if t.nodeid in rnd.passed_before)
        if broke:
            detail = f"breaks {len(broke)} test(s) that passed before: {', '.join(broke[:3])}"
        else:
            detail = f"{len(run.failures)} of {len(run.tests)} tests still fail"
        return done(
            "regressed" if broke else "tests_failed",
            code,
            detail,
            feedback,
            files,
            failing,
            points_at=where,
            verified=verified,
        )


def points_at(
    scratch: Path,
    state: State,
    files: dict[str, str],
    failing: TestCaseResult | None,
    written: Set[str],
) -> Target | None:
    """The function a candidate's failing test raised in (its deepest frame in project
    code, the candidate's files in place), when the answer wrote none of it (`written`:
    qualnames it replaced or added). An assert that only got a wrong value points nowhere
    new: the test names the same callers either way."""
    frames = [f for f in failing.project_frames if not is_test_code(f.path)] if failing else []
    if not frames:
        return None
    project = ProjectIndex(scratch, {**state.sources, **files})
    raised = project.target_at(frames[-1].path, frames[-1].line)
    return None if raised is None or raised.qualname in written else raised
