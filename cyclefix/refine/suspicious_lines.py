"""Where inside the suspect: the lines the failing tests ran and the passing tests did not.

The traced run scores each line a failing test executed (refine.spectrum); in a function of
dozens of lines with one wrong token, the best-scored line is often the faulty one. The
feedback quotes those lines (their text: the prompt shows no line numbers), only where the
score tells them apart: when every line the failing tests ran scores the same, or more than
a few share the best score, the lines say nothing and are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from cyclefix.refine.flow_lines import flow_lines
from cyclefix.refine.localize import Localization
from cyclefix.refine.types import EditLine, Target

# A function whose best score is shared by more lines than this points nowhere in particular.
MAX_QUOTED_LINES = 3
# Logits taken off the token edits of a line by how far its score is below the function's
# best: all of it at a score of 0, half at half the best (a line the passing tests ran too).
LINE_PENALTY = 4.0
LINE_CHARS = 160
HEADING = (
    "Lines the failing tests ran that the passing tests ran less often or never "
    "(the likeliest place of the bug):"
)


def suspicious_line_texts(loc: Localization, shown: Sequence[Target], code: str) -> list[str]:
    """The stripped text of the informative suspicious lines of the functions `shown`, in the
    order shown, that the code in the prompt (`code`) still holds."""
    held = [line.strip() for line in code.splitlines()]
    quoted: list[str] = []
    for target in shown:
        key = (target.path, target.qualname)
        numbers = loc.lines.get(key, ())
        score = loc.scores.get(key)
        # Every line the failing tests ran in it scores the same: the lines say nothing.
        tied = score is not None and score.lines_tied
        if tied or len(numbers) > MAX_QUOTED_LINES:
            continue
        source = target.source.splitlines()
        for number in numbers:
            offset = number - target.start_line
            if not 0 <= offset < len(source):
                continue
            text = source[offset].strip()
            if not text or text not in held:
                continue
            # A line the shown code holds twice is told apart by the line before it.
            before = [line.strip() for line in source[:offset] if line.strip()]
            if held.count(text) > 1 and before:
                text = f"{text}   (the one after `{before[-1]}`)"
            if text not in quoted:
                quoted.append(text)
    return quoted


def edit_lines(loc: Localization, targets: Sequence[Target], code: str) -> tuple[EditLine, ...]:
    """The lines of `targets` that failing tests ran and `code` holds: where token edits are
    tried (refine.token_edits), best scored first, a line scoring below the function's best
    with a penalty (LINE_PENALTY at a score of 0). Lines the feedback does not quote count
    too: a few lines that tie (a short function's, or a handful in a long one) are few tokens.
    The lines the failing test's error flows from count as best scored."""
    held = {line.strip() for line in code.splitlines()} - {""}
    penalties: dict[str, float] = {}
    for text in _error_flow_texts(loc, targets):
        if text in held:
            penalties[text] = 0.0
    for target in targets:
        key = (target.path, target.qualname)
        scored = loc.scored_lines.get(key, ())
        best = max((score for _, score in scored), default=0.0)
        source = target.source.splitlines()
        for number, score in scored:
            offset = number - target.start_line
            text = source[offset].strip() if 0 <= offset < len(source) else ""
            if text in held and best > 0:
                penalty = LINE_PENALTY * (1 - score / best)
                penalties[text] = min(penalties.get(text, penalty), penalty)
    return tuple(EditLine(text, penalty) for text, penalty in penalties.items())


def _error_flow_texts(loc: Localization, targets: Sequence[Target]) -> list[str]:
    """The stripped lines the failing test's error flows from (refine.flow_lines), in targets
    that still hold the line it was raised at (the frame's text where its number says)."""
    primary = loc.primary
    if primary is None:
        return []
    texts: list[str] = []
    for frame in (*primary.caught_frames, *primary.project_frames):
        for target in targets:
            source = target.source.splitlines()
            offset = frame.line - target.start_line
            if frame.path != target.path or not 0 <= offset < len(source):
                continue
            if source[offset].strip() != frame.source.strip():
                continue  # the file changed since the run: the number points elsewhere
            for number in flow_lines(target, frame.line):
                text = source[number - target.start_line].strip()
                if text and text not in texts:
                    texts.append(text)
    return texts


def with_suspicious_lines(
    feedback: str, loc: Localization, shown: Sequence[Target], code: str
) -> str:
    """`feedback`, then the suspicious lines of the functions `shown` that `code` still holds
    (nothing added when the traced run tells no line apart)."""
    texts = suspicious_line_texts(loc, shown, code)
    if not texts:
        return feedback
    quoted = [t if len(t) <= LINE_CHARS else t[: LINE_CHARS - 3] + "..." for t in texts]
    section = "\n".join((HEADING, *(f"    {t}" for t in quoted)))
    return f"{feedback.rstrip()}\n{section}" if feedback.strip() else section
