"""What `cyclefix fix` shows: progress for people, and a diff alone for pipes.

On a terminal everything goes to stdout. When stdout is a pipe or a file, stdout gets the
verified diff and nothing else (`cyclefix fix . > fix.diff && git apply fix.diff`), and the
progress and the summary go to stderr.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from cyclefix.refine.report import describe_attempt

if TYPE_CHECKING:
    from rich.console import Console

    from cyclefix.refine.types import FixResult, RefineEvent

# -q: the result only; default: progress lines; -v: each candidate's feedback and speed.
QUIET, NORMAL, VERBOSE = 0, 1, 2


@dataclass(frozen=True)
class Outputs:
    """Where progress and the result go."""

    progress: Console  # progress and the summary
    diff_to_pipe: TextIO | None  # stdout when it is not a terminal: the raw diff goes there
    verbosity: int


def choose_outputs(verbosity: int, json_output: bool, stdout: TextIO | None = None) -> Outputs:
    from rich.console import Console

    stdout = stdout if stdout is not None else sys.stdout
    piped = not stdout.isatty()
    if json_output or piped:
        # A log file or pipe on stderr gets whole lines, not lines wrapped at 80 columns.
        console = Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty())
        return Outputs(console, None if json_output else stdout, verbosity)
    return Outputs(Console(file=stdout, highlight=False), None, verbosity)


# What a terminal would act on or reorder instead of showing: C0 controls but tab and newline
# (a carriage return only when no newline follows it: `\r\n` ends a line), DEL, C1
# controls, the bidirectional embeddings, overrides, isolates and marks, and the Unicode line
# and paragraph separators (a line break to `str.splitlines`, none to a terminal).
_HIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
    "\u202a-\u202e\u2066-\u2069]|\r(?!\n)"
)


def _escape_hidden(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` from a candidate, a test or a file as a terminal should show it: each character
    that `_HIDDEN` names becomes its escape (ESC as `\\x1b`, a right-to-left override as
    `\\u202e`), so nothing in it can move the cursor, erase or reorder what is on screen.
    Tabs, newlines and everything else are left as they are. For display only: a diff to be
    applied, the JSON output and the files written keep the exact text."""
    return _HIDDEN.sub(_escape_hidden, text)


def plain(text: str) -> str:
    """User text (test ids, source lines) as Rich markup: `[input-1]` and `x[i]` stay as is,
    and control characters are shown as escapes (`visible`)."""
    from rich.markup import escape

    return escape(visible(text))


def short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Progress:
    """Turns refine events into lines and a live status on the console."""

    def __init__(self, out: Console, verbosity: int = NORMAL) -> None:
        from cyclefix import refine

        self.out = out
        self.verbosity = verbosity
        self.refine = refine
        self.status: Any = None
        self.tokens = 0
        self.round = ""

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def _show(self, text: str) -> None:
        if self.verbosity == QUIET:
            return
        if self.status is None:
            self.status = self.out.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def print(self, text: str) -> None:
        if self.verbosity != QUIET:
            self.out.print(text)

    def __call__(self, event: RefineEvent) -> None:
        r = self.refine
        if isinstance(event, r.TestsStarted):
            if event.scratch:
                self._show("Testing the candidate in a scratch copy of the project…")
            else:
                self._show(f"Running the tests in {plain(str(event.root))}…")
        elif isinstance(event, r.TestsFinished):
            self.stop()
            if not event.scratch:
                run = event.run
                self.print(
                    f"[bold]{len(run.passed)} passed, {len(run.failures)} failing[/] "
                    f"in {run.duration:.1f}s ({plain(str(run.root))})"
                )
                for case in run.failures:
                    self.print(f"  [red]✗[/] {plain(case.nodeid)}")
                    self.print(f"    [dim]{plain(short(r.feedback_text(case)))}[/]")
        elif isinstance(event, r.RoundStarted):
            self.tokens = 0
            self.round = (
                f"Round {event.index} (more time left)"
                if event.extra
                else f"Round {event.index}/{event.total}"
            )
            names = plain(", ".join(event.targets))
            self.print(f"[bold cyan]{self.round}[/]: rewriting {names}")
            self._show(f"{self.round}: the model is writing…")
        elif isinstance(event, r.TextGenerated):
            self.tokens += 1
            self._show(f"{self.round}: the model is writing… ({self.tokens} tokens)")
        elif isinstance(event, r.AttemptFinished):
            self.stop()
            a = event.attempt
            mark = "[green]✓[/]" if a.verdict == "passed" else "[yellow]✗[/]"
            line = f"  {mark} candidate: {plain(describe_attempt(a))}"
            if self.verbosity >= VERBOSE:
                speed = a.completion_tokens / a.seconds if a.seconds else 0.0
                line += (
                    f" [dim]({a.completion_tokens} tokens in {a.seconds:.1f}s, "
                    f"{speed:.1f} tokens/s, temperature {a.temperature:g}"
                    f"{', continued from an earlier answer' if a.forked else ''}"
                    f"{', a part of an earlier answer alone' if a.partial else ''}"
                    f"{', a token of a suspicious line edited' if a.token_edit else ''})[/]"
                )
                if a.feedback:
                    line += f"\n    [dim]{plain(short(a.feedback, 400))}[/]"
            self.print(line)


def print_result(outputs: Outputs, result: FixResult, applied: bool, kept: str = "") -> None:
    """The verdict; the diff on the console, or alone on the pipe. `kept`: what git did."""
    from rich.syntax import Syntax

    out = outputs.progress

    def show_diff() -> None:
        shown = visible(result.diff)
        if outputs.diff_to_pipe is not None:
            # The diff on a pipe or in a file is data for `git apply`: exactly what was
            # verified. When it holds characters a terminal would act on, stderr says so and
            # shows it with those as escapes.
            outputs.diff_to_pipe.write(result.diff)
            outputs.diff_to_pipe.flush()
            if shown == result.diff:
                return
            out.print(
                "[yellow]warning:[/] the diff on stdout holds control or bidirectional-text "
                "characters, written as they are; here they are shown as escapes:"
            )
        out.print(Syntax(shown, "diff", theme="ansi_dark", background_color="default"))

    if result.status == "fixed":
        show_diff()
        verb = "Applied" if applied else "Verified fix (not applied; use --apply)"
        final = result.final_run
        n = len(final.tests) if final else 0
        out.print(
            f"[bold green]{verb}[/]: all {n} selected tests pass "
            f"({len(result.rounds)} round(s), {result.seconds:.1f}s, model {plain(result.model)})"
        )
        if kept:
            out.print(plain(kept[0].upper() + kept[1:]) + ".")
    elif result.status == "already_passing":
        out.print("[green]All selected tests already pass: nothing to fix.[/]")
    elif result.status == "error":
        if result.diff:  # a verified fix that --apply could not write
            show_diff()
        out.print(f"[red]error:[/] {plain(result.error or '')}")
    elif result.status == "cancelled":
        out.print("[yellow]Cancelled.[/] Your files are unchanged.")
    else:
        same = sum(1 for a in result.attempts if a.is_copy)
        out.print(
            f"[yellow]No verified fix[/] after {len(result.rounds)} round(s) in "
            f"{result.seconds:.1f}s ({len(result.attempts)} candidates tried, {same} of them "
            "the original code unchanged). Your files are unchanged."
        )
        for note in result.notes:
            out.print(f"  [dim]{plain(note)}[/]")
    sys.stdout.flush()
