"""The real-project suite without a network or a model: a tiny local library stands in for PyPI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from cyclefix.bench import cli as bench_cli
from cyclefix.bench.projects_edit import smallest_edit
from cyclefix.bench.projects_judge import baseline_passing, judge_fix, not_passing_again
from cyclefix.bench.projects_libraries import (
    CANDIDATES,
    HELD_OUT,
    LibrarySpec,
    file_sha256,
    pytest_ini,
)
from cyclefix.bench.projects_manifest import (
    InjectedBug,
    Manifest,
    apply_bug,
    manifest_from_json,
    manifest_to_json,
    materialize,
    write_manifest,
)
from cyclefix.bench.projects_report import (
    bug_outcomes,
    fixed_within,
    library_figures,
    render_projects_section,
)
from cyclefix.bench.projects_run import ProjectsRun, load_project_suite
from cyclefix.bench.projects_seed import candidates_in, is_kept, own_test_file, seed_library
from cyclefix.bench.records import RoundResult
from cyclefix.bench.run_settings import BenchSettings, load_all
from cyclefix.errors import CyclefixError
from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, check
from cyclefix.runner.results import Outcome, TestCaseResult, TestRunResult

BOUNDS = """\
def _bounded(value, low, high):
    if value < low:
        return low
    if value > high:
        return high
    return value
"""
CORE = """\
from minilib._bounds import _bounded


def clamp(value, low, high):
    return _bounded(value, low, high)


def total(values):
    result = 0
    for value in values:
        result += value
    return result


def steps(n):
    count = 0
    while n > 0:
        n -= 1
        count += 1
    return count


def unused(x):
    return x * 2
"""
TESTS = """\
from minilib import clamp, steps, total


def test_clamp_low():
    assert clamp(-5, 0, 10) == 0


def test_clamp_high():
    assert clamp(50, 0, 10) == 10


def test_clamp_inside():
    assert clamp(5, 0, 10) == 5


def test_total():
    assert total([1, 2, 3]) == 6


def test_steps():
    assert steps(3) == 3
"""
SPEC = LibrarySpec("minilib", "0.1", package="minilib", tests=("tests",), per_test_timeout=2.0)
# One line of the private helper: only `clamp`, in core.py's tests, reaches it.
HELPER_BUG = InjectedBug(
    bug_id="minilib-1",
    library="minilib",
    path="minilib/_bounds.py",
    function="_bounded",
    line=4,
    original="    if value > high:",
    mutated="    if value < high:",
    kind="comparison",
    description="line 4: `>` became `<`",
    private=True,
    cross_module=True,
    failing_count=1,
    failing_tests=("tests/test_core.py::test_clamp_inside",),
)
TOTAL_BUG = InjectedBug(
    bug_id="minilib-2",
    library="minilib",
    path="minilib/core.py",
    function="total",
    line=11,
    original="        result += value",
    mutated="        result -= value",
    kind="arithmetic",
    description="line 11: `+` became `-`",
    private=False,
    cross_module=False,
    failing_count=1,
)


@pytest.fixture(autouse=True)
def _no_pytest_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def write_library(root: Path) -> Path:
    """The shipped library as its sdist unpacks, with our pytest.ini."""
    (root / "minilib").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "minilib" / "__init__.py").write_text(
        "from minilib.core import clamp, steps, total, unused\n", encoding="utf-8"
    )
    (root / "minilib" / "_bounds.py").write_text(BOUNDS, encoding="utf-8")
    (root / "minilib" / "core.py").write_text(CORE, encoding="utf-8")
    (root / "tests" / "test_core.py").write_text(TESTS, encoding="utf-8")
    (root / "pytest.ini").write_text(pytest_ini(SPEC), encoding="utf-8")
    return root


@pytest.fixture
def pristine(tmp_path: Path) -> Path:
    return write_library(tmp_path / "minilib-0.1")


def fence(code: str) -> str:
    return f"```python\n{code.strip()}\n```\n"


def test_candidates_are_one_line_changes_inside_functions() -> None:
    found = candidates_in("minilib/core.py", CORE)
    lines = CORE.splitlines()
    assert found
    for c in found:
        assert lines[c.line - 1] == c.original and c.mutated != c.original
        assert c.function in {"clamp", "total", "steps", "unused"}
    assert not any(c.line == 1 for c in found)  # the import line is no function's body


def test_seeding_keeps_only_bugs_the_librarys_tests_catch(pristine: Path) -> None:
    kept = seed_library(SPEC, pristine, per_library=2, seed=0, max_tries=6)
    assert kept
    for bug in kept:
        assert bug.function != "unused"  # no test reaches it: its mutants never fail
        assert bug.failing_count >= 1
        copy = materialize(pristine, bug, pristine.parent / "work" / bug.bug_id)
        assert check(copy, config=RefineConfig(per_test_timeout=2.0)).failures


def test_seeding_is_stable_for_a_seed(pristine: Path) -> None:
    first = seed_library(SPEC, pristine, per_library=1, seed=3, max_tries=3)
    again = seed_library(SPEC, pristine, per_library=1, seed=3, max_tries=3)
    assert first == again


def test_a_bug_that_hangs_is_not_kept(pristine: Path) -> None:
    hang = dataclasses.replace(
        TOTAL_BUG, line=18, original="        n -= 1", mutated="        n += 1", function="steps"
    )
    copy = materialize(pristine, hang, pristine.parent / "hang")
    run = check(copy, config=RefineConfig(per_test_timeout=1.0, run_timeout=60.0))
    assert any(t.outcome == "timeout" for t in run.tests)
    assert not is_kept(run)


def test_a_bug_that_fails_a_test_is_kept(pristine: Path) -> None:
    copy = materialize(pristine, HELPER_BUG, pristine.parent / "helper")
    assert is_kept(check(copy, config=RefineConfig(per_test_timeout=2.0)))


def test_the_manifest_round_trips() -> None:
    manifest = Manifest(seed=7, libraries=(SPEC,), bugs=(HELPER_BUG, TOTAL_BUG), notes=("n",))
    assert manifest_from_json(manifest_to_json(manifest)) == manifest


def test_a_manifest_of_another_format_is_refused() -> None:
    with pytest.raises(CyclefixError, match="format"):
        manifest_from_json(json.dumps({"format": 99, "seed": 0, "libraries": [], "bugs": []}))


def test_a_bug_applies_only_over_the_shipped_line() -> None:
    assert "if value < high:" in apply_bug(BOUNDS, HELPER_BUG)
    with pytest.raises(CyclefixError, match="not the shipped line"):
        apply_bug(BOUNDS.replace("value > high", "value >= high"), HELPER_BUG)


def test_the_judge_passes_the_shipped_code_as_restored(pristine: Path) -> None:
    expected = baseline_passing(SPEC, pristine)
    verdict = judge_fix(SPEC, pristine, HELPER_BUG, {"minilib/_bounds.py": BOUNDS}, expected)
    assert verdict.fixed and verdict.restored
    assert verdict.passing == verdict.expected == 5


def test_the_judge_passes_another_correct_fix_as_not_restored(pristine: Path) -> None:
    other = "def _bounded(value, low, high):\n    return min(max(value, low), high)\n"
    expected = baseline_passing(SPEC, pristine)
    verdict = judge_fix(SPEC, pristine, HELPER_BUG, {"minilib/_bounds.py": other}, expected)
    assert verdict.fixed and not verdict.restored


def test_the_judge_catches_a_fix_that_breaks_another_test(pristine: Path) -> None:
    broken_total = CORE.replace("result += value", "result *= value")
    changed = {"minilib/_bounds.py": BOUNDS, "minilib/core.py": broken_total}
    expected = baseline_passing(SPEC, pristine)
    verdict = judge_fix(SPEC, pristine, HELPER_BUG, changed, expected)
    assert not verdict.fixed
    assert verdict.regressions == ("tests/test_core.py::test_total",)


def test_the_judge_counts_a_test_that_no_longer_runs_as_a_regression(pristine: Path) -> None:
    # A test that passed as shipped but is missing now (not collected, deselected) fails the fix.
    changed = {"minilib/_bounds.py": BOUNDS}
    expected = baseline_passing(SPEC, pristine) | {"tests/test_core.py::test_gone"}
    verdict = judge_fix(SPEC, pristine, HELPER_BUG, changed, expected)
    assert not verdict.fixed and verdict.regressions == ("tests/test_core.py::test_gone",)


def make_cache(tmp_path: Path) -> tuple[Path, Manifest]:
    """A cache holding the library's sdist (as pip would leave it) and a manifest pinning it."""
    cache = tmp_path / "cache" / "bench" / "projects"
    source = write_library(tmp_path / "build" / "minilib-0.1")
    (source / "pytest.ini").unlink()  # an sdist ships its own config, never ours
    sdist = cache / "sdists" / "minilib-0.1.tar.gz"
    sdist.parent.mkdir(parents=True)
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(source, arcname="minilib-0.1")
    spec = dataclasses.replace(SPEC, sha256=file_sha256(sdist))
    return cache, Manifest(seed=0, libraries=(spec,), bugs=(HELPER_BUG, TOTAL_BUG))


def test_a_changed_sdist_is_refused(tmp_path: Path) -> None:
    cache, manifest = make_cache(tmp_path)
    pinned = dataclasses.replace(manifest, libraries=(dataclasses.replace(SPEC, sha256="0" * 64),))
    with pytest.raises(CyclefixError, match="sha256"):
        load_project_suite(pinned, ["minilib-2"], cache=cache)


TOTAL_FIX = fence("""
def total(values):
    result = 0
    for value in values:
        result += value
    return result
""")


def test_a_run_records_the_rank_and_the_judges_verdict(tmp_path: Path) -> None:
    cache, manifest = make_cache(tmp_path)
    suite = load_project_suite(manifest, ["minilib-2"], cache=cache)
    settings = BenchSettings(suite="projects", rounds=1)
    out = tmp_path / "out"
    ProjectsRun(suite, suite.tasks, ScriptedBackend([TOTAL_FIX]), settings, out).run()
    by_round = {r.round: r for r in load_all(out)}
    assert not by_round[0].passed
    assert by_round[0].extra["rank"] == 1
    assert by_round[1].passed and by_round[1].extra["judge_fixed"] is True
    assert by_round[1].extra["restored"] is True
    assert by_round[1].extra["fix_seconds"] > 0


def test_the_cli_runs_the_suite_and_reports_per_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cache, manifest = make_cache(tmp_path)
    monkeypatch.setenv("CYCLEFIX_CACHE", str(tmp_path / "cache"))
    write_manifest(tmp_path / "manifest.json", manifest)
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([TOTAL_FIX]), encoding="utf-8")
    parser = argparse.ArgumentParser()
    bench_cli.register(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "out"
    argv = ["bench", "projects", "--manifest", str(tmp_path / "manifest.json"),
            "--tasks", "minilib-2", "--model", f"scripted:{replies}", "--rounds", "1",
            "--out", str(out)]  # fmt: skip
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Real projects" in report
    assert "| minilib | 1 | 1 (100%) | 1 | 0 | 0 |" in report
    assert "≤ 300 s" in report
    assert json.loads((out / "projects.json").read_text(encoding="utf-8"))


def line(task: str, round_: int, passed: bool, seconds: float, **extra: object) -> RoundResult:
    return RoundResult(
        suite="projects", model="m", task_id=task, sample=0, round=round_,
        status="given" if round_ == 0 else ("fixed" if passed else "refined"), passed=passed,
        visible_passed=passed, seconds=seconds, fix_status="fixed" if passed else "not_fixed",
        extra=dict(extra),
    )  # fmt: skip


def test_the_report_reads_fixes_ranks_and_times_per_library() -> None:
    manifest = Manifest(seed=0, libraries=(SPEC,), bugs=(HELPER_BUG, TOTAL_BUG))
    records = [
        line("minilib-1", 0, False, 5.0, rank=2, suspects=3),
        line("minilib-1", 1, True, 40.0, fix_seconds=40.0, restored=False, judge_fixed=True),
        line("minilib-2", 0, False, 5.0, rank=1, suspects=1),
        line("minilib-2", 1, True, 8.0, fix_seconds=8.0, restored=True, judge_fixed=True),
    ]
    outcomes = bug_outcomes(records, manifest, rounds=1)
    figures = library_figures(outcomes, "minilib")
    assert (figures.fixed, figures.restored, figures.other_fix) == (2, 1, 1)
    assert figures.ranked_first == 1 and figures.mean_rank == 1.5
    assert figures.median_seconds == pytest.approx((13.0 + 45.0) / 2)
    assert fixed_within(outcomes) == {15: 1, 30: 1, 60: 2, 120: 2, 300: 2}
    section = render_projects_section(outcomes, manifest)
    assert "| minilib | 2 | 2 (100%) | 1 | 1 | 0 |" in section
    assert "| fixed | 1 (50%) | 1 (50%) | 2 (100%) | 2 (100%) | 2 (100%) |" in section


def test_a_claimed_fix_the_judge_refuses_is_not_fixed() -> None:
    manifest = Manifest(seed=0, libraries=(SPEC,), bugs=(HELPER_BUG,))
    records = [
        line("minilib-1", 0, False, 5.0, rank=None, suspects=2),
        dataclasses.replace(
            line("minilib-1", 1, False, 9.0, fix_seconds=9.0, judge_fixed=False),
            fix_status="fixed",
        ),
    ]
    (outcome,) = bug_outcomes(records, manifest, rounds=1)
    assert not outcome.fixed and outcome.claimed and outcome.seconds is None
    figures = library_figures([outcome], "minilib")
    assert figures.claimed_regressed == 1 and figures.not_suspected == 1


@pytest.mark.parametrize(
    ("module", "test_file", "own"),
    [
        ("src/webcolors/_conversion.py", "tests/test_conversion.py", True),
        ("parse/__init__.py", "tests/test_parse.py", True),
        ("toolz/itertoolz.py", "toolz/tests/test_curried.py", False),
        ("more_itertools/recipes.py", "tests/test_more.py", False),
    ],
)
def test_a_modules_own_test_file_is_named_after_it(module: str, test_file: str, own: bool) -> None:
    assert own_test_file(module, test_file) is own


@pytest.mark.model
def test_the_suite_runs_with_the_real_model(tmp_path: Path) -> None:
    _cache, manifest = make_cache(tmp_path)
    write_manifest(tmp_path / "manifest.json", manifest)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "cyclefix.cli", "bench", "projects",
               "--manifest", str(tmp_path / "manifest.json"), "--tasks", "minilib-2",
               "--model", "qwen2.5-coder-0.5b", "--rounds", "1", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "CYCLEFIX_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    by_round = {r.round: r for r in load_all(out)}
    assert sorted(by_round) == [0, 1] and by_round[0].extra["rank"] == 1
    assert by_round[1].completion_tokens > 0
    assert "## Real projects" in (out / "report.md").read_text(encoding="utf-8")


SHIPPED = 'def f(am, x):\n    if am == "PM":\n        return re.sub(r"a+", x)\n    return not x\n'


@pytest.mark.parametrize(
    ("offset", "rendered", "description", "smallest"),
    [
        (2, "    if am != 'PM':", "line 2: `==` became `!=`", '    if am != "PM":'),
        (3, "        return re.sub(x, 'a+')", "line 3: arguments of `re.sub` swapped",
         '        return re.sub(x, r"a+")'),
        (4, "    return x", "line 4: `not` removed", "    return x"),
    ],
)  # fmt: skip
def test_the_bug_line_is_the_smallest_edit_of_the_shipped_line(
    offset: int, rendered: str, description: str, smallest: str
) -> None:
    assert smallest_edit(SHIPPED, offset, rendered, description) == smallest


def test_a_mutant_no_small_edit_reproduces_keeps_its_own_line() -> None:
    assert smallest_edit(SHIPPED, 2, "    if True:", "line 2: test replaced") == "    if True:"


def test_the_seeder_takes_the_held_out_libraries_only_when_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded: list[list[str]] = []

    def seed(specs: Sequence[LibrarySpec], **options: object) -> Manifest:
        seeded.append([spec.name for spec in specs])
        return Manifest(seed=0, libraries=(), bugs=())

    monkeypatch.setattr("cyclefix.bench.projects_seed.seed_manifest", seed)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the seeder sets it: undone after
    parser = argparse.ArgumentParser()
    bench_cli.register(parser.add_subparsers(dest="command", required=True))
    out = str(tmp_path / "manifest.json")
    for named in ([], ["--libraries", "isodate", "toolz"]):
        args = parser.parse_args(["bench", "projects-seed", "--manifest", out, *named])
        assert args.func(args) == 0
    assert seeded == [[spec.name for spec in CANDIDATES], ["isodate", "toolz"]]
    assert not {spec.name for spec in CANDIDATES} & {spec.name for spec in HELD_OUT}


def test_the_judge_matches_parameter_ids_renumbered_between_runs() -> None:
    expected = frozenset({"t.py::test_a[x-expected7]", "t.py::test_a[y-expected8]", "t.py::test_b"})

    def run(*cases: tuple[str, Outcome]) -> TestRunResult:
        tests = tuple(TestCaseResult(nodeid, outcome) for nodeid, outcome in cases)
        return TestRunResult(Path("."), tests, 0, 0.1)

    renumbered = run(
        ("t.py::test_a[x-expected8]", "passed"),
        ("t.py::test_a[y-expected7]", "passed"),
        ("t.py::test_b", "passed"),
    )
    assert not_passing_again(expected, renumbered) == []
    one_fails = run(
        ("t.py::test_a[x-expected8]", "failed"),
        ("t.py::test_a[y-expected7]", "passed"),
        ("t.py::test_b", "passed"),
    )
    assert not_passing_again(expected, one_fails) == [
        "t.py::test_a[x-expected7]",
        "t.py::test_a[y-expected8]",
    ]
    assert not_passing_again(expected, run(("t.py::test_a[x-expected7]", "passed"))) == [
        "t.py::test_a[y-expected8]",
        "t.py::test_b",
    ]


def test_the_judge_fails_a_node_id_when_any_item_sharing_it_fails() -> None:
    shared = "tests/testcases.docopt::testcases(15)"  # docopt-ng: one id per usage, many cases
    outcomes: tuple[Outcome, ...] = ("passed", "failed", "passed")
    tests = tuple(TestCaseResult(shared, outcome) for outcome in outcomes)
    run = TestRunResult(Path("."), tests, 0, 0.1)
    assert not_passing_again(frozenset({shared}), run) == [shared]
