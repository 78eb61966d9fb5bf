"""Results and progress events of the refinement loop: what crosses into the frontends."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cyclefix.runner.results import RunPhases, TestRunResult

FixStatus = Literal["fixed", "not_fixed", "already_passing", "error", "cancelled"]

# Why an attempt was accepted or rejected.
Verdict = Literal[
    "passed",  # every selected test passes: a verified fix
    "tests_failed",  # ran, some tests still fail
    "regressed",  # a test that passed before now fails
    "copy",  # same as the faulty code, ignoring whitespace and comments
    "duplicate",  # a candidate already tried
    "syntax_error",  # the answer does not parse
    "undefined_names",  # pyflakes reports names that do not resolve
    "rigged",  # adds a value equal to anything (refine.rigged): the tests could not judge it
    "tampering",  # reaches the test run's machinery or the interpreter (refine.tampering)
    "no_code",  # no code block in the answer
    "wrong_target",  # the answer does not define the function(s) to rewrite
    "cancelled",
]


@dataclass(frozen=True)
class RefineConfig:
    rounds: int = 4
    # Wall-clock budget for the whole fix, seconds.
    budget_seconds: float = 300.0
    # First round's temperature, then every later round's (CYCLE: 0.2 then 0.6).
    first_temperature: float = 0.2
    later_temperature: float = 0.6
    # An answer that never reaches the tests (a copy, no code, a syntax error) is sampled again
    # at this temperature, up to `resamples` more times in the same round.
    copy_temperature: float = 0.9
    resamples: int = 2
    # Answers a round samples after its first ones failed, while its share of the time lasts:
    # a hot refinement and a rewrite from the intent in turn (refine.copies.plan_round).
    extra_answers: int = 2
    # Answers drawn after a fix that passes only a few tests, to vote on it by how they
    # behave on the tests' calls with an argument varied (refine.agreement). Off: on
    # HumanEval the vote never overturned a fix (the model's wrong answers agree).
    agreement_answers: int = 0
    top_p: float = 0.95
    max_tokens: int = 1024
    seed: int | None = 0
    per_test_timeout: float = 3.0
    # Wall-clock cap of one pytest run, seconds.
    run_timeout: float = 120.0
    # Python that runs the tests; None: the project's own environment when it has one.
    python: str | None = None
    # When the rounds end without a fix and budget remains, go on (other suspects, rewrites
    # from the intent, hotter samples) until a fix or the budget: `fix`, `serve` and `tui`.
    # Off for the bench's CYCLE protocol, whose figures count exactly `rounds`.
    extend_to_budget: bool = True
    # Environment names passed to the tests besides the runner's allowlist (never CYCLEFIX_*).
    pass_env: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """A function or method the loop rewrites. qualname like "Stats.median"."""

    path: str  # relative to the project root
    qualname: str
    start_line: int  # 1-based, including decorators
    end_line: int  # inclusive
    source: str


@dataclass(frozen=True)
class EditLine:
    """A line of the code under test where token edits are tried (refine.token_edits)."""

    text: str  # stripped
    # Logits taken off its edits' likelihood: none on the traced run's most suspicious lines,
    # more on lines the passing tests ran too (refine.suspicious_lines.edit_lines).
    penalty: float = 0.0


@dataclass(frozen=True)
class Attempt:
    round: int
    code: str
    verdict: Verdict
    # CYCLE feedback of this attempt's first failing test (empty when it passed or never ran).
    feedback: str
    detail: str
    temperature: float
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    tests_passed: int = 0
    tests_total: int = 0
    # Continued from a fork of an earlier copy (see refine.fork) instead of sampled anew.
    forked: bool = False
    # One part of an earlier answer's change, tried alone without generating (refine.partial).
    partial: bool = False
    # A token of a suspicious line changed to one the model nearly chose, tried without
    # generating (refine.token_edits).
    token_edit: bool = False
    # The function this attempt's failing test raised in ("path::qualname") when the answer
    # did not write it: where a later round may move.
    points_at: str = ""
    # Where `seconds` went (the rest is splicing and checks): scoring likely copies before
    # generating (refine.copies), the model reading the prompt (`prompt_tokens_cached` of its
    # tokens reused from the KV cache), writing the answer, and the candidate's test runs.
    score_s: float = 0.0
    prompt_eval_s: float = 0.0
    prompt_tokens_cached: int = 0
    generate_s: float = 0.0
    # Of its completion tokens, those drawn from the copy scored before it (models.replay).
    completion_tokens_replayed: int = 0
    tests_s: float = 0.0
    # How its test runs' time split (process start, collection, the tests); None when none ran.
    tests_phases: RunPhases | None = None

    @property
    def phase_seconds(self) -> float:
        """Seconds of this attempt in a named phase (model or tests)."""
        return self.score_s + self.prompt_eval_s + self.generate_s + self.tests_s

    @property
    def is_copy(self) -> bool:
        return self.verdict == "copy"

    @property
    def generated(self) -> bool:
        """Whether the model wrote it (a part or a token edit is tried without generating)."""
        return not (self.partial or self.token_edit)


@dataclass(frozen=True)
class RoundRecord:
    index: int  # 1-based
    targets: tuple[str, ...]
    attempts: tuple[Attempt, ...]


@dataclass(frozen=True)
class FileChange:
    path: Path  # absolute path of the user's file
    original: str
    fixed: str
    diff: str
    # The functions the fix rewrites in this file, with their lines in `original`.
    targets: tuple[Target, ...] = ()


@dataclass(frozen=True)
class FixResult:
    status: FixStatus
    root: Path
    changes: tuple[FileChange, ...]
    # Unified diff of all changes against the user's files; empty unless fixed.
    diff: str
    rounds: tuple[RoundRecord, ...]
    initial_run: TestRunResult | None
    final_run: TestRunResult | None
    seconds: float
    model: str
    error: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Phases of `seconds` besides the attempts' own: loading the model, the user's run of the
    # tests, localizing the failures and fitting each round's prompt (overhead_s: the rest).
    model_load_s: float = 0.0
    initial_tests_s: float = 0.0
    localize_s: float = 0.0
    # Tests that passed in the user's run but failed confined on their unchanged code too
    # (refine.sandbox_only): they did not judge the fix.
    sandbox_only: tuple[str, ...] = ()
    # The attempt whose candidate is the fix (one of `rounds`' attempts); None unless fixed.
    fixed_by: Attempt | None = None

    @classmethod
    def without_model(
        cls,
        run: TestRunResult,
        seconds: float,
        *,
        model: str = "none",
        stopped: FixStatus = "cancelled",
        notes: tuple[str, ...] = (),
    ) -> FixResult | None:
        """The result of a fix decided by the user's run alone, so no model needs to load:
        it was stopped (`stopped`), its tests cannot be collected or there are none, they
        all pass, or nothing failed that a model could fix. None when a model has failures
        to work on (import-time errors in project code among them, refine.importtime)."""
        # refine.importtime builds on these types: imported here, where it is needed.
        from cyclefix.refine.importtime import (
            blocking_collection_error,
            failures_with_import_errors,
        )

        notes = (*notes, *(n for n in run.notes if n not in notes))

        def ended(status: FixStatus, error: str | None = None) -> FixResult:
            final = run if status == "already_passing" else None
            return cls(status, run.root, (), "", (), run, final, seconds, model, error, notes)

        if run.cancelled:
            return ended(stopped)
        err = blocking_collection_error(run)
        if err is not None:
            where = f"{err.path}:{err.line}" if err.line else err.path
            message = next((ln.strip() for ln in err.message.splitlines() if ln.strip()), "")
            return ended("error", f"tests cannot be collected: {where}: {message}")
        if not run.tests and not run.collection_errors:
            return ended("error", f"no tests found in {run.root}")
        if run.all_passed:
            return ended("already_passing")
        if not failures_with_import_errors(run):
            notes = (*notes, "could not find the code the failing tests exercise")
            return cls("not_fixed", run.root, (), "", (), run, run, seconds, model, None, notes)
        return None

    @property
    def overhead_s(self) -> float:
        """Seconds in no named phase (scratch copies, splicing, bookkeeping): the phases add up
        to `seconds`; negative only if two phases were counted over the same time."""
        named = self.model_load_s + self.initial_tests_s + self.localize_s
        return self.seconds - named - sum(a.phase_seconds for a in self.attempts)

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        return tuple(a for r in self.rounds for a in r.attempts)

    @property
    def prompt_tokens(self) -> int:
        return sum(a.prompt_tokens for a in self.attempts)

    @property
    def completion_tokens(self) -> int:
        return sum(a.completion_tokens for a in self.attempts)


# Progress events, delivered in order to the on_event callback from the worker thread.


@dataclass(frozen=True)
class TestsStarted:
    root: Path
    tests: tuple[str, ...]
    scratch: bool  # running a candidate in a scratch copy rather than the user's files


@dataclass(frozen=True)
class TestsFinished:
    run: TestRunResult
    scratch: bool


@dataclass(frozen=True)
class RoundStarted:
    index: int
    # The rounds asked for; a round past them (RefineConfig.extend_to_budget) counts itself.
    total: int
    targets: tuple[str, ...]
    temperature: float
    # Past the rounds asked for, within the time budget.
    extra: bool = False


@dataclass(frozen=True)
class TextGenerated:
    text: str


@dataclass(frozen=True)
class AttemptFinished:
    attempt: Attempt


@dataclass(frozen=True)
class FixFinished:
    result: FixResult


RefineEvent = (
    TestsStarted | TestsFinished | RoundStarted | TextGenerated | AttemptFinished | FixFinished
)
