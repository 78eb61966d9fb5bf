"""The stable JSON form of a fix result (`cyclefix fix --json`, schema "cyclefix.fix/1")."""

from __future__ import annotations

from typing import Any

from cyclefix.refine.types import Attempt, FixResult
from cyclefix.runner.feedback import feedback_text
from cyclefix.runner.results import RunPhases, TestRunResult

SCHEMA = "cyclefix.fix/1"


def _run_summary(run: TestRunResult | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "passed": len(run.passed),
        "failed": len(run.failures),
        "total": len(run.tests),
        "seconds": round(run.duration, 3),
        "failing": [
            {"test": t.nodeid, "outcome": t.outcome, "feedback": feedback_text(t)}
            for t in run.failures
        ],
        "collection_errors": [
            {"path": e.path, "line": e.line, "message": e.message} for e in run.collection_errors
        ],
        "network_isolated": run.network_isolated,
    }


def _attempt(a: Attempt) -> dict[str, Any]:
    return {
        "round": a.round,
        "verdict": a.verdict,
        "copy": a.is_copy,
        "forked": a.forked,
        "partial": a.partial,
        "token_edit": a.token_edit,
        "detail": a.detail,
        "feedback": a.feedback,
        "code": a.code,
        "temperature": a.temperature,
        "prompt_tokens": a.prompt_tokens,
        "completion_tokens": a.completion_tokens,
        "seconds": round(a.seconds, 3),
        "tests_passed": a.tests_passed,
        "tests_total": a.tests_total,
        "points_at": a.points_at or None,
        "score_s": round(a.score_s, 3),
        "prompt_eval_s": round(a.prompt_eval_s, 3),
        "prompt_tokens_cached": a.prompt_tokens_cached,
        "generate_s": round(a.generate_s, 3),
        "completion_tokens_replayed": a.completion_tokens_replayed,
        "tests_s": round(a.tests_s, 3),
        "tests_phases": run_phases(a.tests_phases),
    }


def run_phases(phases: RunPhases | None) -> dict[str, float] | None:
    """How test runs' time split: process start, collection, the tests, and their wall time."""
    if phases is None:
        return None
    return {
        "startup_s": round(phases.startup_s, 3),
        "collect_s": round(phases.collect_s, 3),
        "tests_s": round(phases.tests_s, 3),
        "total_s": round(phases.total_s, 3),
    }


def phases(result: FixResult) -> dict[str, float]:
    """Where the command's seconds went, phase by phase (unrounded); they add up to
    `result.seconds`."""
    attempts = result.attempts
    return {
        "model_load_s": result.model_load_s,
        "initial_tests_s": result.initial_tests_s,
        "localize_s": result.localize_s,
        "score_s": sum(a.score_s for a in attempts),
        "prompt_eval_s": sum(a.prompt_eval_s for a in attempts),
        "generate_s": sum(a.generate_s for a in attempts),
        "tests_s": sum(a.tests_s for a in attempts),
        "overhead_s": result.overhead_s,
    }


def fix_result_to_dict(result: FixResult, *, applied: bool = False) -> dict[str, Any]:
    attempts = result.attempts
    return {
        "schema": SCHEMA,
        "status": result.status,
        "error": result.error,
        "root": str(result.root),
        "model": result.model,
        "seconds": round(result.seconds, 3),
        "phases": {name: round(value, 3) for name, value in phases(result).items()},
        "applied": applied,
        "diff": result.diff,
        "files": [
            {
                "path": str(c.path),
                "diff": c.diff,
                "functions": [{"name": t.qualname, "line": t.start_line} for t in c.targets],
            }
            for c in result.changes
        ],
        "tests": {
            "selected": list(result.initial_run.selected) if result.initial_run else [],
            "initial": _run_summary(result.initial_run),
            "final": _run_summary(result.final_run),
            "sandbox_only": list(result.sandbox_only),
        },
        "rounds": [
            {
                "index": r.index,
                "targets": list(r.targets),
                "attempts": [_attempt(a) for a in r.attempts],
            }
            for r in result.rounds
        ],
        "fixed_by": _fixed_by(result),
        "tokens": {"prompt": result.prompt_tokens, "completion": result.completion_tokens},
        "copies": sum(1 for a in attempts if a.is_copy),
        "notes": list(result.notes),
    }


def _fixed_by(result: FixResult) -> dict[str, int] | None:
    """Where in `rounds` the attempt that is the fix lies (an edit held from an earlier round
    is not the last attempt: refine.held)."""
    for r in result.rounds:
        for i, a in enumerate(r.attempts):
            if a is result.fixed_by:
                return {"round": r.index, "attempt": i}
    return None


# Each verdict in words a user reads without knowing the refine loop's internals.
VERDICT_WORDS: dict[str, str] = {
    "passed": "passes every selected test",
    "tests_failed": "still fails",
    "regressed": "breaks a test that passed before",
    "copy": "same as the original code",
    "duplicate": "same as a candidate already tried",
    "syntax_error": "is not valid Python",
    "undefined_names": "uses names that are not defined",
    "rigged": "adds a value equal to anything, which the tests cannot judge",
    "tampering": "reaches into the test run or the interpreter (gc, frames, pytest), refused",
    "no_code": "the answer holds no code",
    "wrong_target": "does not define the function to rewrite",
    "cancelled": "cancelled",
}


def describe_attempt(attempt: Attempt) -> str:
    """One candidate's outcome in plain words: the loop's detail ("2 of 5 tests still fail"),
    else the verdict in words."""
    detail = attempt.detail.strip()
    return detail or VERDICT_WORDS.get(attempt.verdict, attempt.verdict.replace("_", " "))
