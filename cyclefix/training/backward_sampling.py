"""LintSeq's backward sampling: delete a random line with its block, then every line the linter
reports with its block, until the rest is lint-clean; repeat to the empty program."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cyclefix.training.pylint_linter import PylintLinter, indent_unit


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
