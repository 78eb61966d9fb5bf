"""LintSeq: programs as sequences of lint-clean insertion edits (Piterbarg et al., ICLR 2025).

Backward sampling deletes a random line with its block, then every line pylint reports with its
block until the rest is lint-clean; that union is one edit; repeat to the empty program. Reversed,
the deletions are insertions, written as zero-context unified diff hunks joined by `<|diff|>`.
"""

from __future__ import annotations

import io
import json
import random
import re
import subprocess
import sys
import tempfile
import tokenize
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cyclefix.errors import CyclefixError

DIFF_SEPARATOR = "<|diff|>"
# The paper's rule: convention and refactor off; errors are E, F, bad-indentation, super-init.
PYLINT_ENABLED = "E,F,W0311,W0231"
_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
# Pylint reads one file per module name; batches are chunked to keep argv and memory bounded.
_LINT_CHUNK = 2000


PYLINT_DEFAULT_INDENT = "    "


def indent_unit(text: str) -> str:
    """The program's own indentation step (tab, or the smallest space run), for W0311.

    Read from the INDENT tokens of code lines only: a docstring's or string's continuation
    lines are free text, whatever their leading spaces. Pylint's default if it does not tokenize.
    """
    widths = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type != tokenize.INDENT:
                continue
            if "\t" in token.string:
                return "\t"
            widths.append(len(token.string))
    except (tokenize.TokenError, SyntaxError):
        return PYLINT_DEFAULT_INDENT
    return " " * min(widths) if widths else PYLINT_DEFAULT_INDENT


@dataclass(frozen=True)
class LintMessage:
    line: int
    message_id: str
    message: str


class PylintLinter:
    """Lint many programs in one pylint process per indentation style; results cached by text."""

    def __init__(self, workers: int = 1, python: str = sys.executable) -> None:
        self.workers = max(1, workers)
        self.python = python
        self._cache: dict[tuple[str, str], tuple[LintMessage, ...]] = {}
        self.files_linted = 0
        self.runs = 0

    def messages(self, programs: Sequence[tuple[str, str]]) -> list[tuple[LintMessage, ...]]:
        """Counted messages for each (text, indent_unit); blank programs are clean."""
        todo: dict[str, list[str]] = {}
        for text, unit in programs:
            if (text, unit) not in self._cache:
                if not text.strip():
                    self._cache[(text, unit)] = ()
                else:
                    group = todo.setdefault(unit, [])
                    if text not in group:
                        group.append(text)
        for unit, texts in todo.items():
            for start in range(0, len(texts), _LINT_CHUNK):
                chunk = texts[start : start + _LINT_CHUNK]
                for text, found in zip(chunk, self._run(chunk, unit), strict=True):
                    self._cache[(text, unit)] = found
        return [self._cache[(text, unit)] for text, unit in programs]

    def error_lines(self, programs: Sequence[tuple[str, str]]) -> list[frozenset[int]]:
        return [frozenset(m.line for m in found) for found in self.messages(programs)]

    def _jobs(self, count: int) -> int:
        # Worker processes cost more to start than a few files cost to lint.
        return max(1, min(self.workers, count // 40))

    def _run(self, texts: Sequence[str], unit: str) -> list[tuple[LintMessage, ...]]:
        with tempfile.TemporaryDirectory(prefix="cyclefix-lintseq-") as tmp:
            names = []
            for index, text in enumerate(texts):
                name = f"lintseq_program_{index:05d}.py"
                (Path(tmp) / name).write_text(text, encoding="utf-8")
                names.append(name)
            command = [
                self.python,
                "-m",
                "pylint",
                "--disable=all",
                f"--enable={PYLINT_ENABLED}",
                "--output-format=json",
                "--score=n",
                "--reports=n",
                "--persistent=n",
                f"--jobs={self._jobs(len(texts))}",
                f"--indent-string={unit}",
                *names,
            ]
            proc = subprocess.run(command, cwd=tmp, capture_output=True, text=True, check=False)
        self.files_linted += len(texts)
        self.runs += 1
        # Pylint's exit status is a bit mask of message kinds; 32 alone means it could not run.
        if proc.returncode & 32 or not proc.stdout.strip():
            if proc.returncode & 32 or proc.returncode != 0:
                detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                raise CyclefixError(f"pylint failed: {detail}")
            return [() for _ in texts]
        try:
            reported = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise CyclefixError("pylint printed something other than JSON") from None
        by_name: dict[str, list[LintMessage]] = {name: [] for name in names}
        for item in reported:
            name = Path(str(item.get("path", ""))).name
            if name in by_name:
                by_name[name].append(
                    LintMessage(
                        int(item.get("line") or 1), str(item["message-id"]), str(item["message"])
                    )
                )
        return [tuple(by_name[name]) for name in names]


def _indent_width(line: str) -> int:
    return len(line.expandtabs(8)) - len(line.expandtabs(8).lstrip())


def _is_code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def block_of(lines: Sequence[str], index: int) -> list[int]:
    """`index` and the following lines indented deeper (blank lines inside the block included)."""
    width = _indent_width(lines[index])
    block = [index]
    pending_blank: list[int] = []
    for j in range(index + 1, len(lines)):
        if not lines[j].strip():
            pending_blank.append(j)
            continue
        if _indent_width(lines[j]) <= width:
            break
        block.extend(pending_blank)
        pending_blank = []
        block.append(j)
    return block


@dataclass
class _Walk:
    """One backward sampling of one program, advanced in lock step with the others."""

    program: int
    lines: tuple[str, ...]
    unit: str
    rng: random.Random
    present: list[int]  # indices into `lines` still in the program, ascending
    removed: list[frozenset[int]] = field(default_factory=list)
    pending: set[int] = field(default_factory=set)
    done: bool = False

    def text(self) -> str:
        return "".join(self.lines[i] + "\n" for i in self.present)

    def delete_blocks(self, positions: Iterable[int]) -> None:
        """Delete the lines at these 0-based positions of the current program, with their blocks."""
        current = [self.lines[i] for i in self.present]
        gone: set[int] = set()
        for position in positions:
            gone.update(self.present[j] for j in block_of(current, position))
        self.pending |= gone
        self.present = [i for i in self.present if i not in gone]

    def start_edit(self) -> None:
        """Begin the next edit: a random code line, deeper lines weighted more; or the rest."""
        current = [self.lines[i] for i in self.present]
        candidates = [j for j, line in enumerate(current) if _is_code(line)]
        if not candidates:
            # Only blank and comment lines remain: they go as the last deletion (first insertion).
            self.pending = set(self.present)
            self.present = []
            return
        weights = [
            _indent_width(current[j]) // max(1, len(self.unit.expandtabs(8))) + 1
            for j in candidates
        ]
        self.delete_blocks([self.rng.choices(candidates, weights=weights)[0]])

    def finish_edit(self) -> None:
        self.removed.append(frozenset(self.pending))
        self.pending = set()
        if not self.present:
            self.done = True


def backward_sample(
    programs: Sequence[str],
    linter: PylintLinter,
    per_program: int,
    seed: int,
    names: Sequence[str] | None = None,
) -> list[list[list[frozenset[int]]]]:
    """For each program, `per_program` deletion histories (sets of 0-based line indices).

    Every program must itself be lint-clean (check with `linter` first); each walk's random
    stream depends only on (seed, program name, sample number), not on batching.
    """
    keys = names if names is not None else [str(i) for i in range(len(programs))]
    walks: list[_Walk] = []
    for p, text in enumerate(programs):
        lines = tuple(text.split("\n")[:-1]) if text else ()
        unit = indent_unit(text)
        for s in range(per_program):
            walk = _Walk(
                p, lines, unit, random.Random(f"{seed}:{keys[p]}:{s}"), list(range(len(lines)))
            )
            walk.done = not lines
            walks.append(walk)
    active = [w for w in walks if not w.done]
    for walk in active:
        walk.start_edit()
    while active:
        errors = linter.error_lines([(w.text(), w.unit) for w in active])
        for walk, bad in zip(active, errors, strict=True):
            if not bad:
                walk.finish_edit()
                if not walk.done:
                    walk.start_edit()
                continue
            count = len(walk.present)
            # A report past the end (e.g. unexpected EOF) points at the last line.
            walk.delete_blocks(sorted({min(max(line, 1), count) - 1 for line in bad}))
        active = [w for w in active if not w.done]
    histories: list[list[list[frozenset[int]]]] = [[] for _ in programs]
    for walk in walks:
        histories[walk.program].append(walk.removed)
    return histories


def forward_edits(lines: Sequence[str], removed: Sequence[frozenset[int]]) -> list[str]:
    """Insertion diffs from the empty file to the program: the deletions, reversed."""
    present: set[int] = set()
    edits = []
    for inserted in reversed(removed):
        present |= inserted
        order = sorted(present)
        hunks: list[str] = []
        old_before = 0  # lines of the previous state before the current position
        run: list[int] = []
        for position, index in enumerate(order):
            if index in inserted:
                run.append(position)
                continue
            if run:
                hunks.append(_hunk(lines, order, run, old_before))
                run = []
            old_before += 1
        if run:
            hunks.append(_hunk(lines, order, run, old_before))
        edits.append("\n".join(hunks))
    return edits


def _hunk(lines: Sequence[str], order: Sequence[int], run: Sequence[int], old_before: int) -> str:
    header = f"@@ -{old_before},0 +{run[0] + 1},{len(run)} @@"
    return "\n".join([header, *("+" + lines[order[p]] for p in run)])


def join_edits(edits: Sequence[str]) -> str:
    """Edits joined by the separator; the sequence ends with an empty edit."""
    return DIFF_SEPARATOR.join([*edits, ""])


def split_edits(sequence: str) -> list[str]:
    return [part.strip("\n") for part in sequence.split(DIFF_SEPARATOR)]


def apply_edit(lines: list[str], edit: str) -> list[str]:
    """Apply one edit's hunks in order, inserting each body at line c; skip malformed hunks."""
    result = list(lines)
    hunk: tuple[int, int] | None = None
    body: list[str] = []
    valid = True

    def flush() -> None:
        if hunk is None or not valid:
            return
        start, count = hunk
        if len(body) == count and 0 <= start - 1 <= len(result):
            result[start - 1 : start - 1] = body

    for line in edit.split("\n"):
        header = _HUNK_HEADER.match(line)
        if header:
            flush()
            old_count = int(header.group(2)) if header.group(2) is not None else 1
            new_count = int(header.group(4)) if header.group(4) is not None else 1
            hunk = (int(header.group(3)), new_count)
            body = []
            valid = old_count == 0
        elif hunk is not None and line.startswith("+"):
            body.append(line[1:])
        elif hunk is not None and line:
            valid = False  # deletions or context have no place in an insertion edit
    flush()
    return result


def apply_edit_sequence(sequence: str) -> str:
    """Rebuild the program a `<|diff|>`-joined edit sequence describes, from the empty file."""
    lines: list[str] = []
    for edit in split_edits(sequence):
        if edit:
            lines = apply_edit(lines, edit)
    return "".join(line + "\n" for line in lines)


def intermediate_programs(sequence: str) -> list[str]:
    """The program after each non-empty edit, in order."""
    lines: list[str] = []
    states = []
    for edit in split_edits(sequence):
        if edit:
            lines = apply_edit(lines, edit)
            states.append("".join(line + "\n" for line in lines))
    return states


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
