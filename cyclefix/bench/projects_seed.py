"""Seed the real-project suite: one-line mutations of real libraries their own tests catch.

For each library: run its suite as shipped (tests failing there, or slow, are deselected and
recorded), list every one-line mutant inside a top-level function or method (bench.mutate, with
the extra kinds), shuffle them with a fixed seed, alternate private helpers and public functions,
and keep a mutant when the library's tests then fail, none hangs and every module still
collects; at most one bug per function. The last slot of a library goes to a bug whose failing
tests all live in another module's test file, when one turns up within the tries.
"""

from __future__ import annotations

import ast
import dataclasses
import random
import shutil
import tempfile
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cyclefix.bench.mutate import mutants
from cyclefix.bench.projects_edit import smallest_edit
from cyclefix.bench.projects_libraries import (
    PYTEST_INI,
    LibrarySpec,
    cache_root,
    fetch_sdist,
    file_sha256,
    library_sources,
    pristine_tree,
    pytest_ini,
)
from cyclefix.bench.projects_manifest import InjectedBug, Manifest
from cyclefix.errors import CyclefixError
from cyclefix.refine import RefineConfig, TestRunResult, check

# Failing node ids kept per bug in the manifest: enough to read, small enough to commit.
FAILING_SHOWN = 5
# Seconds one run of a library's suite may take while seeding.
SEED_RUN_TIMEOUT = 300.0
# Seconds a test may take in the run as shipped, which measures how slow each test is.
BASELINE_TEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Candidate:
    path: str  # relative to the sdist root
    function: str
    line: int
    original: str
    mutated: str
    kind: str
    description: str
    private: bool


@dataclass(frozen=True)
class _Body:
    qualname: str
    def_line: int  # the `def` line (decorators excluded)
    body_line: int  # the first line of the body
    end_line: int
    private: bool


def _function_bodies(tree: ast.Module) -> Iterator[_Body]:
    """Top-level functions and methods of top-level classes (the localizer's targets)."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield _Body(
                node.name,
                node.lineno,
                node.body[0].lineno,
                node.end_lineno or node.lineno,
                node.name.startswith("_"),
            )
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    private = node.name.startswith("_") or (
                        item.name.startswith("_") and not item.name.endswith("__")
                    )
                    yield _Body(
                        f"{node.name}.{item.name}",
                        item.lineno,
                        item.body[0].lineno,
                        item.end_lineno or item.lineno,
                        private,
                    )


def _docstring_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def _one_line_change(before: str, after: str) -> tuple[int, str, str] | None:
    """(1-based line, old text, new text) when exactly one line differs, else None."""
    old, new = before.splitlines(), after.splitlines()
    if len(old) != len(new):
        return None
    differing = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    if len(differing) != 1:
        return None
    i = differing[0]
    return i + 1, old[i], new[i]


def candidates_in(rel_path: str, source: str) -> list[Candidate]:
    """Every one-line mutant of `source` inside a top-level function's or method's body.

    Each function is mutated on its own (dedented) text: mutating a 5,000-line module as a
    whole re-parses all of it for every mutant. The line with the bug is the smallest edit of
    the shipped line that makes the same mutant (bench.projects_edit).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.splitlines()
    docstrings = _docstring_lines(tree)
    found: list[Candidate] = []
    for body in _function_bodies(tree):
        text = "\n".join(lines[body.def_line - 1 : body.end_line]) + "\n"
        dedented = textwrap.dedent(text)
        for mutant in mutants(dedented, more_kinds=True):
            change = _one_line_change(dedented, mutant.source)
            if change is None:
                continue
            offset, old, new = change
            line = body.def_line + offset - 1
            original = lines[line - 1]
            if line < body.body_line or line in docstrings or not original.endswith(old):
                continue
            indent = original[: len(original) - len(old)]
            description = mutant.description.replace(f"line {mutant.line}:", f"line {line}:", 1)
            mutated = smallest_edit(text, offset, indent + new, description)
            found.append(
                Candidate(
                    rel_path,
                    body.qualname,
                    line,
                    original,
                    mutated,
                    mutant.kind,
                    description,
                    body.private,
                )
            )
    return found


def ordered_candidates(found: Sequence[Candidate], rng: random.Random) -> list[Candidate]:
    """Shuffled, then private helpers and public functions taken in turn."""
    private = [c for c in found if c.private]
    public = [c for c in found if not c.private]
    rng.shuffle(private)
    rng.shuffle(public)
    ordered: list[Candidate] = []
    for i in range(max(len(private), len(public))):
        ordered += [c[i] for c in (private, public) if i < len(c)]
    return ordered


def own_test_file(module_path: str, test_path: str) -> bool:
    """A test file named after the module (`_conversion.py` -> `test_conversion.py`).

    A package's `__init__.py` is named by its package (`parse/__init__.py` -> `test_parse.py`).
    """
    path = Path(module_path)
    module = (path.parent.name if path.stem == "__init__" else path.stem).lstrip("_")
    name = Path(test_path).stem
    return name in (f"test_{module}", f"{module}_test")


def _test_file(nodeid: str) -> str:
    return nodeid.partition("::")[0]


def is_kept(run: TestRunResult) -> bool:
    """A bug worth keeping: some test fails, none hangs, everything collects, the run ended."""
    return (
        bool(run.failures)
        and not run.collection_errors
        and not run.timed_out
        and all(t.outcome != "timeout" for t in run.tests)
    )


def _seed_config(spec: LibrarySpec) -> RefineConfig:
    # Twice the bench's per-test timeout: a busy machine must not pass for a hang.
    return RefineConfig(per_test_timeout=2 * spec.per_test_timeout, run_timeout=SEED_RUN_TIMEOUT)


def settle_baseline(spec: LibrarySpec, pristine: Path) -> LibrarySpec:
    """The spec with the tests that fail as shipped, or are slow, deselected; its pytest.ini too.

    Slow: over a third of the per-test timeout as shipped, so a loaded machine (or a bug that
    only slows a loop) cannot turn it into a timeout in the refine loop or the judge.
    """
    slow_after = spec.per_test_timeout / 3
    config = RefineConfig(per_test_timeout=BASELINE_TEST_TIMEOUT, run_timeout=SEED_RUN_TIMEOUT)
    run = check(pristine, config=config)
    if run.collection_errors or not run.tests:
        raise CyclefixError(f"{spec.slug}: its tests do not collect as shipped")
    failing = [t.nodeid for t in run.failures if t.nodeid not in spec.deselect]
    slow = [
        t.nodeid
        for t in run.tests
        if t.ok and t.duration > slow_after and t.nodeid not in spec.deselect
    ]
    if not failing and not slow:
        return spec
    notes = [f"{len(failing)} test(s) failing as shipped deselected"] if failing else []
    if slow:
        notes.append(f"{len(slow)} test(s) over {slow_after:.1f} s as shipped deselected")
    settled = dataclasses.replace(
        spec, deselect=(*spec.deselect, *failing, *slow), notes=(*spec.notes, *notes)
    )
    (pristine / PYTEST_INI).write_text(pytest_ini(settled), encoding="utf-8")
    return settled


def seed_library(
    spec: LibrarySpec,
    pristine: Path,
    *,
    per_library: int,
    seed: int,
    max_tries: int,
    on_try: Callable[[Candidate, bool], None] | None = None,
) -> list[InjectedBug]:
    """Up to `per_library` bugs of one library whose own tests catch them."""
    rng = random.Random(f"{seed}:{spec.slug}")
    found: list[Candidate] = []
    for rel in library_sources(pristine, spec):
        found += candidates_in(rel.as_posix(), (pristine / rel).read_text(encoding="utf-8"))
    kept: list[InjectedBug] = []
    used_functions: set[tuple[str, str]] = set()
    tries = 0
    with tempfile.TemporaryDirectory(prefix="cyclefix-seed-") as scratch:
        work = Path(scratch) / spec.slug
        shutil.copytree(pristine, work, symlinks=True)
        for candidate in ordered_candidates(found, rng):
            if len(kept) >= per_library or tries >= max_tries:
                break
            key = (candidate.path, candidate.function)
            if key in used_functions:
                continue
            tries += 1
            target = work / candidate.path
            shipped = target.read_text(encoding="utf-8")
            lines = shipped.splitlines(keepends=True)
            lines[candidate.line - 1] = (
                candidate.mutated + lines[candidate.line - 1][len(candidate.original) :]
            )
            target.write_text("".join(lines), encoding="utf-8")
            try:
                run = check(work, config=_seed_config(spec))
            finally:
                target.write_text(shipped, encoding="utf-8")
            keep = is_kept(run)
            failing_files = {_test_file(t.nodeid) for t in run.failures}
            cross = bool(failing_files) and not any(
                own_test_file(candidate.path, f) for f in failing_files
            )
            last_slot = len(kept) == per_library - 1
            if keep and last_slot and not cross and not any(b.cross_module for b in kept):
                # Hold the last slot for a bug caught only in another module's tests.
                keep = tries >= max_tries - 3
            if on_try:
                on_try(candidate, keep)
            if not keep:
                continue
            used_functions.add(key)
            kept.append(
                InjectedBug(
                    bug_id=f"{spec.name}-{len(kept) + 1}",
                    library=spec.name,
                    path=candidate.path,
                    function=candidate.function,
                    line=candidate.line,
                    original=candidate.original,
                    mutated=candidate.mutated,
                    kind=candidate.kind,
                    description=candidate.description,
                    private=candidate.private,
                    cross_module=cross,
                    failing_count=len(run.failures),
                    failing_tests=tuple(t.nodeid for t in run.failures[:FAILING_SHOWN]),
                )
            )
    return kept


def seed_manifest(
    specs: Sequence[LibrarySpec],
    *,
    per_library: int = 5,
    seed: int = 0,
    max_tries: int = 30,
    cache: Path | None = None,
    on_library: Callable[[LibrarySpec, list[InjectedBug]], None] | None = None,
    on_try: Callable[[Candidate, bool], None] | None = None,
) -> Manifest:
    """The manifest of every library's seeded bugs, sdists pinned by their sha256."""
    if per_library < 1 or max_tries < per_library:
        raise CyclefixError("--per-library must be at least 1 and at most --max-tries")
    libraries: list[LibrarySpec] = []
    bugs: list[InjectedBug] = []
    for spec in specs:
        pinned = dataclasses.replace(
            spec, sha256=file_sha256(fetch_sdist(spec, cache or cache_root()))
        )
        pristine = pristine_tree(pinned, cache)
        settled = settle_baseline(pinned, pristine)
        found = seed_library(
            settled,
            pristine,
            per_library=per_library,
            seed=seed,
            max_tries=max_tries,
            on_try=on_try,
        )
        libraries.append(settled)
        bugs += found
        if on_library:
            on_library(settled, found)
    return Manifest(seed, tuple(libraries), tuple(bugs))
