"""LintSeq: diffs rebuild their programs, every state is lint-clean, bad input is reported."""

from __future__ import annotations

import itertools
import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cyclefix.cli import main
from cyclefix.training.backward_sampling import block_of
from cyclefix.training.insertion_edits import (
    DIFF_SEPARATOR,
    apply_edit,
    apply_edit_sequence,
    forward_edits,
    intermediate_programs,
    join_edits,
)
from cyclefix.training.lintseq import LintSeqSample, SourceProgram, build_lintseq, load_sources
from cyclefix.training.pylint_linter import PylintLinter, indent_unit

pytest.importorskip("pylint")

FIXTURES = Path(__file__).parent / "fixtures" / "training"
LINE_TEXT = st.text(alphabet="ab +-()#:\t", max_size=12)


@st.composite
def programs_with_histories(draw: st.DrawFn) -> tuple[list[str], list[frozenset[int]]]:
    """Random lines and a random ordered partition of their indices into deletion steps."""
    lines = draw(st.lists(LINE_TEXT, min_size=1, max_size=30))
    order = draw(st.permutations(range(len(lines))))
    cuts = (
        sorted(draw(st.sets(st.integers(1, len(lines) - 1), max_size=len(lines) - 1)))
        if len(lines) > 1
        else []
    )
    bounds = [0, *cuts, len(lines)]
    removed = [frozenset(order[a:b]) for a, b in itertools.pairwise(bounds)]
    return lines, removed


@given(programs_with_histories())
@settings(max_examples=300, deadline=None)
def test_forward_edits_rebuild_the_program_and_every_backward_state(
    case: tuple[list[str], list[frozenset[int]]],
) -> None:
    lines, removed = case
    program = "".join(line + "\n" for line in lines)
    sequence = join_edits(forward_edits(lines, removed))
    assert apply_edit_sequence(sequence) == program
    # State k of the forward walk is the program minus the first (m - k) deletions.
    expected = []
    for k in range(len(removed) - 1, -1, -1):
        gone = set().union(*removed[:k]) if k else set()
        expected.append("".join(lines[i] + "\n" for i in range(len(lines)) if i not in gone))
    assert intermediate_programs(sequence) == expected


@given(programs_with_histories())
@settings(max_examples=100, deadline=None)
def test_edits_are_zero_context_insertion_hunks(
    case: tuple[list[str], list[frozenset[int]]],
) -> None:
    lines, removed = case
    for edit in forward_edits(lines, removed):
        assert not edit.startswith(("---", "+++"))
        for line in edit.split("\n"):
            assert line.startswith(("@@ -", "+")), line
            if line.startswith("@@"):
                assert ",0 +" in line  # nothing of the previous state is removed


def test_sequence_ends_with_an_empty_edit_and_uses_the_separator() -> None:
    sequence = join_edits(forward_edits(["a = 1", "b = 2"], [frozenset({1}), frozenset({0})]))
    assert sequence.endswith(DIFF_SEPARATOR)
    assert sequence.split(DIFF_SEPARATOR) == [
        "@@ -0,0 +1,1 @@\n+a = 1",
        "@@ -1,0 +2,1 @@\n+b = 2",
        "",
    ]


def test_malformed_hunks_are_skipped() -> None:
    start = ["x = 1", "y = 2"]
    assert apply_edit(start, "@@ -1,0 +2,2 @@\n+only one line") == start  # count mismatch
    assert apply_edit(start, "@@ -1,1 +1,1 @@\n-x = 1\n+z = 1") == start  # not an insertion
    assert apply_edit(start, "@@ -9,0 +10,1 @@\n+far = 0") == start  # past the end
    assert apply_edit(start, "garbage\n@@ -1,0 +2,1 @@\n+mid = 0") == ["x = 1", "mid = 0", "y = 2"]
    assert apply_edit(start, "@@ -2,0 +3 @@\n+tail = 0") == [*start, "tail = 0"]  # count 1 implied


def test_block_of_takes_deeper_lines_and_inner_blank_lines() -> None:
    lines = ["def f():", "    a = 1", "", "    return a", "", "x = f()"]
    assert block_of(lines, 0) == [0, 1, 2, 3]
    assert block_of(lines, 1) == [1]
    assert block_of(lines, 5) == [5]


def test_indent_unit_follows_the_program() -> None:
    assert indent_unit("def f():\n  return 1\n") == "  "
    assert indent_unit("def f():\n\treturn 1\n") == "\t"
    assert indent_unit("x = 1\n") == "    "


DOCSTRING_INDENTED_BY_THREE = (
    "def area(width, height):\n"
    '    """Area of a rectangle.\n'
    "\n"
    "   The continuation line is indented by three spaces.\n"
    '    """\n'
    "    if width < 0:\n"
    "        return 0\n"
    "    return width * height\n"
)


def test_indent_unit_ignores_lines_inside_strings() -> None:
    assert indent_unit(DOCSTRING_INDENTED_BY_THREE) == "    "
    assert indent_unit('TEXT = """\n two\n"""\n\n\ndef f():\n    return TEXT\n') == "    "


def test_indent_unit_of_a_program_that_does_not_tokenize_is_pylint_s_default() -> None:
    assert indent_unit("def f(:\n  return (\n") == "    "


def test_program_with_an_oddly_indented_docstring_line_is_kept() -> None:
    program = SourceProgram("area", "", DOCSTRING_INDENTED_BY_THREE)
    report = build_lintseq([program], per_program=2, seed=0)
    assert not report.dropped
    assert {s.name for s in report.samples} == {"area"}


def test_identical_sequences_of_a_program_are_kept_once_and_counted() -> None:
    # Two independent lines: a walk can only delete one, then the other, in some order.
    program = SourceProgram("pair", "", "x = 1\ny = 2\n")
    report = build_lintseq([program], per_program=8, seed=0)
    edits = [s.edits for s in report.samples]
    assert len(edits) == len(set(edits)) == 2
    assert report.distinct_sequences == {"pair": 2}


def _check_clean_and_rebuilt(samples: list[LintSeqSample], fresh: PylintLinter) -> None:
    states = [
        (text, indent_unit(s.program)) for s in samples for text in intermediate_programs(s.edits)
    ]
    assert all(not bad for bad in fresh.error_lines(states))
    for sample in samples:
        assert apply_edit_sequence(sample.edits) == sample.program


def test_lintseq_on_python_files_rebuilds_with_lint_clean_states(tmp_path: Path) -> None:
    sources, too_long = load_sources(FIXTURES / "programs", ())
    assert not too_long
    report = build_lintseq(sources, per_program=2, seed=7)
    names = {s.name for s in report.samples}
    assert names == {"stats.py", "two_space.py", "subclass.py"}
    assert [d.name for d in report.dropped] == ["broken.py"]
    assert "E0602" in report.dropped[0].reason
    assert len(report.samples) == 6
    # Checked again by a linter with no cache: each state really is clean.
    _check_clean_and_rebuilt(list(report.samples), PylintLinter())
    for sample in report.samples:
        assert sample.edit_count >= 2


def test_different_samples_of_a_program_differ_and_seeds_repeat() -> None:
    sources, _ = load_sources(FIXTURES / "programs" / "stats.py", ())
    first = build_lintseq(sources, per_program=2, seed=1)
    again = build_lintseq(sources, per_program=2, seed=1)
    assert [s.edits for s in first.samples] == [s.edits for s in again.samples]
    assert len({s.edits for s in first.samples}) > 1


def test_mbpp_input_uses_training_splits_only() -> None:
    sources, _ = load_sources(FIXTURES / "mbpp_small.jsonl", ("train", "validation"))
    assert "mbpp:11" not in {s.name for s in sources}
    assert {s.name for s in sources} == {
        "mbpp:601",
        "mbpp:602",
        "mbpp:603",
        "mbpp:604",
        "mbpp:606",
        "mbpp:608",
    }
    assert all("\r" not in s.program for s in sources)


def test_w0311_uses_each_program_s_own_indentation() -> None:
    mixed = SourceProgram("mixed", "", "def f(x):\n  if x:\n      return 1\n  return 2\n")
    tabs = SourceProgram("tabs", "", "def f(x):\n\tif x:\n\t\treturn 1\n\treturn 2\n")
    report = build_lintseq([mixed, tabs], per_program=2, seed=0)
    assert {s.name for s in report.samples} == {"tabs"}
    assert [d.name for d in report.dropped] == ["mixed"]
    assert "W0311" in report.dropped[0].reason


@given(st.integers(0, 10_000))
@settings(max_examples=3, deadline=None)
def test_random_seeds_give_clean_rebuildable_sequences(seed: int) -> None:
    rng = random.Random(seed)
    body = [
        "def total(items):",
        "    result = 0",
        "    for item in items:",
        "        if item > 0:",
        "            result += item",
        "    return result",
        "",
        "",
        "class Box:",
        "    def __init__(self, v):",
        "        self.v = v",
    ]
    program = SourceProgram("p", "", "\n".join(body[: rng.choice([6, len(body)])]).rstrip() + "\n")
    report = build_lintseq([program], per_program=2, seed=seed)
    assert not report.dropped
    assert len(report.samples) == report.distinct_sequences["p"] in (1, 2)
    _check_clean_and_rebuilt(list(report.samples), PylintLinter())


def test_cli_writes_sequences_and_reports_drops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "seq.jsonl"
    assert (
        main(
            [
                "data",
                "lintseq",
                str(FIXTURES / "mbpp_small.jsonl"),
                "-o",
                str(out),
                "--per-program",
                "2",
                "--seed",
                "3",
                "--workers",
                "2",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    captured = capsys.readouterr()
    assert "edit sequences from 6 programs" in captured.out
    assert rows and all(r["kind"] == "lintseq" and r["instruction"] for r in rows)
    for row in rows:
        assert apply_edit_sequence(row["edits"]) == row["program"]
    assert len({(r["source"], r["edits"]) for r in rows}) == len(rows)
    assert "distinct sequences per program:" in captured.out
    duplicates = re.search(r"(\d+) duplicate sequences removed", captured.out)
    assert duplicates is not None
    dropped = captured.err.count("dropped ")
    assert len(rows) + int(duplicates.group(1)) + 2 * dropped == 12


def test_cli_rejects_missing_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["data", "lintseq", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o.jsonl")])
        == 2
    )
    assert "no such file or folder" in capsys.readouterr().err
