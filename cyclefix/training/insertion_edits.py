"""LintSeq's edit format: insertion-only, zero-context unified diff hunks joined by
`<|diff|>`; made from a deletion history, and applied back to rebuild the program."""

from __future__ import annotations

import re
from collections.abc import Sequence

DIFF_SEPARATOR = "<|diff|>"
_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


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
