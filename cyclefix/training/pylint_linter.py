"""Pylint as LintSeq's linter: the paper's error rule, many programs per pylint process."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cyclefix.errors import CyclefixError

# The paper's rule: convention and refactor off; errors are E, F, bad-indentation, super-init.
PYLINT_ENABLED = "E,F,W0311,W0231"
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
