"""The real-project suite's judge: the library's own tests, run fresh, not cyclefix's verdict.

A fix counts when, in a fresh copy of the mutated library with the fix's files written over it,
every test that passed on the library as shipped passes again (a test that now fails, hangs,
is skipped or is no longer collected is a regression). Separately: whether the fix put back
the shipped code (layout, comments and docstrings aside), or found another correct fix.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cyclefix.bench.projects_libraries import PYTEST_INI, LibrarySpec
from cyclefix.bench.projects_manifest import InjectedBug, materialize
from cyclefix.errors import CyclefixError
from cyclefix.refine import RefineConfig, TestRunResult, check
from cyclefix.refine.source import normalized_code
from cyclefix.runner import Confinement

# Regressions named per judgement (the count is always whole).
REGRESSIONS_SHOWN = 5
# Beside the pristine tree, never in it (copies of the tree are what the model sees).
BASELINE_SUFFIX = ".baseline.json"


@dataclass(frozen=True)
class Judgement:
    fixed: bool  # every test passing as shipped passes again
    expected: int  # tests passing as shipped
    passing: int  # of those, passing after the fix
    regressions: tuple[str, ...]  # the first few that do not
    # The changed files hold the shipped code again (layout, comments, docstrings aside).
    restored: bool

    def as_extra(self) -> dict[str, object]:
        return {
            "judge_fixed": self.fixed,
            "judge_passing": self.passing,
            "judge_expected": self.expected,
            "judge_regressions": list(self.regressions),
            "restored": self.restored,
        }


def judge_config(spec: LibrarySpec) -> RefineConfig:
    # A judge is lenient with slow tests: a hang still fails, a loaded machine does not.
    timeout = max(10.0, 3 * spec.per_test_timeout)
    return RefineConfig(per_test_timeout=timeout, run_timeout=max(300.0, 20 * timeout))


def baseline_passing(spec: LibrarySpec, pristine: Path) -> frozenset[str]:
    """The tests that pass on the library as shipped: run once per pytest.ini, then reused."""
    stored = pristine.parent / f"{pristine.name}{BASELINE_SUFFIX}"
    settings = (pristine / PYTEST_INI).read_text(encoding="utf-8")
    if stored.is_file():
        try:
            data = json.loads(stored.read_text(encoding="utf-8"))
            if data.get("pytest_ini") == settings:
                return frozenset(data["passing"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            pass
    run = check(pristine, config=judge_config(spec))
    failing = [t.nodeid for t in run.failures]
    if run.collection_errors or not run.passed or failing:
        shown = ", ".join(failing[:5]) or "; ".join(e.message for e in run.collection_errors[:2])
        raise CyclefixError(f"{spec.slug} does not pass its own tests as shipped: {shown}")
    ids = run.passed_ids
    stored.write_text(
        json.dumps({"pytest_ini": settings, "passing": sorted(ids)}), encoding="utf-8"
    )
    return ids


def not_passing_again(expected: frozenset[str], run: TestRunResult) -> list[str]:
    """The tests of `expected` that `run` did not pass, by node id; but where a parametrized
    test's ids changed between the runs (numbered in an order that varies with the process's
    hash seed, as isodate's are), its test function passing in `run` as many times as in
    `expected` is passing again (every test of `expected` passed: one failing or skipped now
    leaves its function a pass short)."""
    now = run.passed_ids
    passes = Counter(_function_of(nodeid) for nodeid in now)
    wanted = Counter(_function_of(nodeid) for nodeid in expected)
    return sorted(
        nodeid
        for nodeid in expected - now
        if passes[_function_of(nodeid)] < wanted[_function_of(nodeid)]
    )


def _function_of(nodeid: str) -> str:
    """A test's node id without its parameters (`test_format[4-1985]` -> `test_format`)."""
    return nodeid.split("[", 1)[0]


def restored_shipped_code(pristine: Path, changed: Mapping[str, str]) -> bool:
    """Every changed file is the shipped file again, as code (layout and comments aside)."""
    if not changed:
        return False
    for rel, text in changed.items():
        shipped = pristine / rel
        if not shipped.is_file():
            return False
        if normalized_code(text) != normalized_code(shipped.read_text(encoding="utf-8")):
            return False
    return True


def judge_fix(
    spec: LibrarySpec,
    pristine: Path,
    bug: InjectedBug,
    changed: Mapping[str, str],
    expected: frozenset[str],
) -> Judgement:
    """Run the library's tests fresh on the mutated library with `changed` written over it."""
    with tempfile.TemporaryDirectory(prefix="cyclefix-judge-") as scratch:
        tree = materialize(pristine, bug, Path(scratch) / spec.slug)
        for rel, text in changed.items():
            target = (tree / rel).resolve()
            if not target.is_relative_to(tree.resolve()):
                raise CyclefixError(f"a fix changed {rel}, outside the library")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        # The fix is the model's code: judged confined to this copy, like a candidate.
        run = check(tree, config=judge_config(spec), confinement=Confinement(pristine))
    missing = not_passing_again(expected, run)
    return Judgement(
        fixed=not missing and bool(expected),
        expected=len(expected),
        passing=len(expected) - len(missing),
        regressions=tuple(missing[:REGRESSIONS_SHOWN]),
        restored=restored_shipped_code(pristine, changed),
    )
