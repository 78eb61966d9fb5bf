"""LintSeq: programs as sequences of lint-clean insertion edits (Piterbarg et al., ICLR 2025).

Backward sampling deletes a random line with its block, then every line pylint reports with its
block until the rest is lint-clean; that union is one edit; repeat to the empty program. Reversed,
the deletions are insertions, written as zero-context unified diff hunks joined by `<|diff|>`.

Here: the programs read in, and sampling verified into a report; the parts are
training.pylint_linter, training.backward_sampling and training.insertion_edits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cyclefix.errors import CyclefixError
from cyclefix.training.backward_sampling import backward_sample
from cyclefix.training.insertion_edits import (
    DIFF_SEPARATOR,
    apply_edit_sequence,
    forward_edits,
    intermediate_programs,
    join_edits,
)
from cyclefix.training.pylint_linter import PylintLinter, indent_unit


@dataclass(frozen=True)
class SourceProgram:
    """A program to turn into edit sequences, with the instruction it answers."""

    name: str
    instruction: str
    program: str  # normalized: Unix newlines, one final newline


@dataclass(frozen=True)
class LintSeqSample:
    name: str
    instruction: str
    program: str
    edits: str
    edit_count: int
    sample: int

    def to_json(self) -> dict[str, object]:
        return {
            "kind": "lintseq",
            "source": self.name,
            "instruction": self.instruction,
            "program": self.program,
            "edits": self.edits,
            "num_edits": self.edit_count,
            "sample": self.sample,
        }


@dataclass(frozen=True)
class Dropped:
    name: str
    reason: str


@dataclass(frozen=True)
class LintSeqReport:
    samples: tuple[LintSeqSample, ...]
    dropped: tuple[Dropped, ...]
    programs: int
    files_linted: int
    # Per lint-clean program: how many distinct sequences it yielded (walks can coincide).
    distinct_sequences: Mapping[str, int] = field(default_factory=dict)
    duplicates: int = 0  # sampled walks left out because an earlier walk gave the same edits


def build_lintseq(
    sources: Sequence[SourceProgram],
    *,
    per_program: int = 5,
    seed: int = 0,
    workers: int = 1,
    linter: PylintLinter | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> LintSeqReport:
    """Sample, then verify: each sequence rebuilds its program and every state lints clean."""
    lint = linter or PylintLinter(workers)
    dropped: list[Dropped] = []
    kept: list[SourceProgram] = []
    for source in sources:
        if DIFF_SEPARATOR in source.program:
            dropped.append(Dropped(source.name, f"program contains the separator {DIFF_SEPARATOR}"))
        elif not source.program.strip():
            dropped.append(Dropped(source.name, "empty program"))
        else:
            kept.append(source)
    checks = lint.messages([(s.program, indent_unit(s.program)) for s in kept])
    clean: list[SourceProgram] = []
    for source, found in zip(kept, checks, strict=True):
        if found:
            first = found[0]
            dropped.append(
                Dropped(
                    source.name,
                    f"not lint-clean: line {first.line} {first.message_id} {first.message}",
                )
            )
        else:
            clean.append(source)
    if on_progress:
        on_progress(
            f"{len(clean)} of {len(sources)} programs lint-clean; "
            f"sampling {per_program} sequences each"
        )
    histories = backward_sample(
        [s.program for s in clean], lint, per_program, seed, names=[s.name for s in clean]
    )
    candidates: list[LintSeqSample] = []
    duplicates = 0
    for source, walks in zip(clean, histories, strict=True):
        lines = source.program.split("\n")[:-1]
        seen: set[str] = set()
        for number, removed in enumerate(walks):
            edits = forward_edits(lines, removed)
            # Short programs have few orders: a repeated walk would only weight it twice.
            sequence = join_edits(edits)
            if sequence in seen:
                duplicates += 1
                continue
            seen.add(sequence)
            candidates.append(
                LintSeqSample(
                    source.name,
                    source.instruction,
                    source.program,
                    sequence,
                    len(edits),
                    number,
                )
            )
    if on_progress:
        on_progress(f"verifying {len(candidates)} sequences")
    samples = verify_samples(candidates, lint, dropped)
    distinct = dict.fromkeys((source.name for source in clean), 0)
    for sample in samples:
        distinct[sample.name] += 1
    return LintSeqReport(
        tuple(samples), tuple(dropped), len(sources), lint.files_linted, distinct, duplicates
    )


def verify_samples(
    candidates: Sequence[LintSeqSample], lint: PylintLinter, dropped: list[Dropped]
) -> list[LintSeqSample]:
    """Keep sequences that rebuild their program exactly and whose every state is lint-clean."""
    rebuilt: list[LintSeqSample] = []
    for sample in candidates:
        result = apply_edit_sequence(sample.edits)
        if result != sample.program:
            dropped.append(
                Dropped(
                    f"{sample.name}#{sample.sample}", "edit sequence does not rebuild the program"
                )
            )
        else:
            rebuilt.append(sample)
    states = [
        [(text, indent_unit(s.program)) for text in intermediate_programs(s.edits)] for s in rebuilt
    ]
    verdicts = iter(lint.error_lines([item for group in states for item in group]))
    kept = []
    for sample, group in zip(rebuilt, states, strict=True):
        bad = [k for k, _ in enumerate(group) if next(verdicts)]
        if bad:
            dropped.append(
                Dropped(
                    f"{sample.name}#{sample.sample}",
                    f"state after edit {bad[0] + 1} is not lint-clean",
                )
            )
        else:
            kept.append(sample)
    return kept


def load_sources(
    path: Path, splits: Sequence[str], max_lines: int = 300
) -> tuple[list[SourceProgram], list[Dropped]]:
    """Programs from an MBPP-style JSON-lines file (`text` + `code`), a .py file, or a folder."""
    from cyclefix.runner.testfiles import SKIP_DIRS
    from cyclefix.training.mbpp import load_problems, normalize_code, read_jsonl

    sources: list[SourceProgram] = []
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*.py")
            if not any(part in SKIP_DIRS for part in p.relative_to(path).parts)
        )
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            sources.append(SourceProgram(str(file.relative_to(path)), "", normalize_code(text)))
    elif path.suffix == ".py" and path.is_file():
        sources.append(
            SourceProgram(path.name, "", normalize_code(path.read_text(encoding="utf-8")))
        )
    elif path.is_file():
        rows = read_jsonl(path)
        if rows and "task_id" in rows[0] and "test_list" in rows[0]:
            for problem in load_problems(path, splits):
                sources.append(SourceProgram(f"mbpp:{problem.task_id}", problem.text, problem.code))
        else:
            for number, row in enumerate(rows, start=1):
                code = row.get("code", row.get("program"))
                if not isinstance(code, str):
                    raise CyclefixError(f"{path}:{number}: expected a `code` string")
                instruction = row.get("text", row.get("instruction", ""))
                name = str(row.get("name", row.get("task_id", f"{path.name}:{number}")))
                sources.append(SourceProgram(name, str(instruction or ""), normalize_code(code)))
    else:
        raise CyclefixError(f"no such file or folder: {path}")
    dropped = [
        Dropped(s.name, f"longer than {max_lines} lines")
        for s in sources
        if s.program.count("\n") > max_lines
    ]
    return [s for s in sources if s.program.count("\n") <= max_lines], dropped
