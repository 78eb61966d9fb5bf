"""A project's test state as LSP diagnostics, file by file.

A failing test gives two linked Errors: one at the failing line of the test, one at the
suspect function in the source. Collection errors and syntax errors give an Error where
they are; a verified fix gives an Information on the function it rewrites.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types

from cyclefix.refine.types import Target
from cyclefix.runner.results import CollectionError, TestCaseResult
from cyclefix.server.edits import LineIndex, code_units

SOURCE = "cyclefix"
# Diagnostic codes, so clients and tests can tell the kinds apart.
CODE_TEST_FAILED = "test-failed"
CODE_SUSPECT = "suspect"
CODE_COLLECTION = "collection-error"
CODE_SYNTAX = "syntax-error"
CODE_FIX = "fix-available"

_DEF = re.compile(r"\s*(?:async\s+def|def|class)\s")
_MAX_MESSAGE_LINES = 12


@dataclass(frozen=True)
class Failure:
    """A failing test and the functions its failure points at."""

    case: TestCaseResult
    suspects: tuple[Target, ...]


@dataclass(frozen=True)
class SyntaxProblem:
    path: Path  # absolute
    line: int  # 1-based
    column: int  # 1-based, in characters
    message: str


@dataclass(frozen=True)
class FixNotice:
    """A verified fix to announce on the functions it rewrites."""

    fix_id: str
    passed: int
    # (absolute path, 1-based line) of each rewritten function's def line.
    locations: tuple[tuple[Path, int], ...]


def syntax_problem(path: Path, text: str) -> SyntaxProblem | None:
    """The first syntax error of Python source `text`, if any."""
    try:
        compile(text, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        return SyntaxProblem(
            path=path,
            line=exc.lineno or 1,
            column=exc.offset or 1,
            message=f"SyntaxError: {exc.msg}",
        )
    except ValueError as exc:  # source with null bytes
        return SyntaxProblem(path=path, line=1, column=1, message=f"SyntaxError: {exc}")
    return None


def def_line(target: Target) -> int:
    """1-based line of the target's `def` (after its decorators)."""
    for i, line in enumerate(target.source.splitlines()):
        if _DEF.match(line):
            return target.start_line + i
    return target.start_line


def short_test_name(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1]


def _short(message: str) -> str:
    lines = message.strip().splitlines()
    if len(lines) > _MAX_MESSAGE_LINES:
        lines = [*lines[:_MAX_MESSAGE_LINES], "..."]
    return "\n".join(lines)


class DiagnosticBuilder:
    """Builds one project's diagnostics; reads each file at most once."""

    def __init__(
        self,
        root: Path,
        *,
        read_text: Callable[[Path], str | None],
        to_uri: Callable[[Path], str],
        describe: Callable[[TestCaseResult], str],
        encoding: str = types.PositionEncodingKind.Utf16,
    ) -> None:
        self.root = root
        self._read_text = read_text
        self._to_uri = to_uri
        self._describe = describe
        self._encoding = encoding
        self._indexes: dict[Path, LineIndex] = {}
        self.by_path: dict[Path, list[types.Diagnostic]] = defaultdict(list)

    def _index(self, path: Path) -> LineIndex:
        if path not in self._indexes:
            self._indexes[path] = LineIndex(self._read_text(path) or "", self._encoding)
        return self._indexes[path]

    def _line_range(self, path: Path, line: int) -> types.Range:
        """Range of the 1-based `line` of `path`, without its indentation."""
        return self._index(path).line_range(max(0, line - 1))

    def _location(self, path: Path, line: int) -> types.Location:
        return types.Location(uri=self._to_uri(path), range=self._line_range(path, line))

    def _test_location(self, case: TestCaseResult) -> tuple[Path, int]:
        """Where the test failed; the test's def line when the runner gave no line."""
        file_part = case.nodeid.split("::", 1)[0]
        path = self.root / (case.path or file_part)
        if case.line is not None:
            return path, case.line
        name = short_test_name(case.nodeid).split("[", 1)[0]
        pattern = re.compile(rf"\s*(?:async\s+)?def\s+{re.escape(name)}\b")
        index = self._index(path)
        for i in range(len(index.starts)):
            if pattern.match(index.line_text(i)):
                return path, i + 1
        return path, 1

    def add_failures(self, failures: Iterable[Failure]) -> None:
        # Suspect function -> the failures that point at it, to give it one diagnostic.
        by_suspect: dict[tuple[str, str], list[tuple[Failure, types.Location, str]]] = {}
        suspects: dict[tuple[str, str], Target] = {}
        for failure in failures:
            case = failure.case
            test_path, test_line = self._test_location(case)
            feedback = _short(self._describe(case))
            name = short_test_name(case.nodeid)
            test_loc = self._location(test_path, test_line)
            related = [
                types.DiagnosticRelatedInformation(
                    location=self._location(self.root / t.path, def_line(t)),
                    message=f"suspect: {t.qualname}()",
                )
                for t in failure.suspects
            ]
            self.by_path[test_path].append(
                types.Diagnostic(
                    range=test_loc.range,
                    message=f"{name} failed: {feedback}",
                    severity=types.DiagnosticSeverity.Error,
                    source=SOURCE,
                    code=CODE_TEST_FAILED,
                    related_information=related or None,
                    data={"nodeid": case.nodeid},
                )
            )
            for target in failure.suspects:
                key = (target.path, target.qualname)
                suspects[key] = target
                by_suspect.setdefault(key, []).append((failure, test_loc, feedback))
        for key, entries in by_suspect.items():
            target = suspects[key]
            path = self.root / target.path
            first_failure, _, first_feedback = entries[0]
            first = short_test_name(first_failure.case.nodeid)
            if len(entries) == 1:
                message = f"{target.qualname}() fails {first}: {first_feedback}"
            else:
                message = (
                    f"{target.qualname}() fails {len(entries)} tests; {first}: {first_feedback}"
                )
            self.by_path[path].append(
                types.Diagnostic(
                    range=self._line_range(path, def_line(target)),
                    message=message,
                    severity=types.DiagnosticSeverity.Error,
                    source=SOURCE,
                    code=CODE_SUSPECT,
                    related_information=[
                        types.DiagnosticRelatedInformation(
                            location=loc,
                            message=f"{short_test_name(f.case.nodeid)}: {fb.splitlines()[0]}"
                            if fb
                            else short_test_name(f.case.nodeid),
                        )
                        for f, loc, fb in entries
                    ],
                    data={"nodeids": [f.case.nodeid for f, _, _ in entries]},
                )
            )

    def add_collection_errors(self, errors: Iterable[CollectionError]) -> None:
        for error in errors:
            path = self.root / error.path
            self.by_path[path].append(
                types.Diagnostic(
                    range=self._line_range(path, error.line or 1),
                    message=f"pytest cannot collect {error.path}: {_short(error.message)}",
                    severity=types.DiagnosticSeverity.Error,
                    source=SOURCE,
                    code=CODE_COLLECTION,
                )
            )

    def add_syntax_problems(self, problems: Iterable[SyntaxProblem]) -> None:
        for problem in problems:
            index = self._index(problem.path)
            line = max(0, min(problem.line - 1, len(index.starts) - 1))
            text = index.line_text(line)
            column = max(0, min(problem.column - 1, len(text)))
            start = types.Position(line=line, character=code_units(text[:column], self._encoding))
            # Underline to the end of the line, or one character when the error is at the end.
            end_char = code_units(text, self._encoding)
            end = types.Position(line=line, character=max(end_char, start.character + 1))
            self.by_path[problem.path].append(
                types.Diagnostic(
                    range=types.Range(start=start, end=end),
                    message=problem.message,
                    severity=types.DiagnosticSeverity.Error,
                    source=SOURCE,
                    code=CODE_SYNTAX,
                )
            )

    def add_fix(self, notice: FixNotice) -> None:
        plural = "test passes" if notice.passed == 1 else "tests pass"
        for path, line in notice.locations:
            self.by_path[path].append(
                types.Diagnostic(
                    range=self._line_range(path, line),
                    message=f"verified fix available ({notice.passed} {plural})",
                    severity=types.DiagnosticSeverity.Information,
                    source=SOURCE,
                    code=CODE_FIX,
                    data={"fixId": notice.fix_id},
                )
            )


def build_diagnostics(
    root: Path,
    *,
    failures: Sequence[Failure] = (),
    collection_errors: Sequence[CollectionError] = (),
    syntax_problems: Sequence[SyntaxProblem] = (),
    fix: FixNotice | None = None,
    read_text: Callable[[Path], str | None],
    to_uri: Callable[[Path], str],
    describe: Callable[[TestCaseResult], str],
    encoding: str = types.PositionEncodingKind.Utf16,
) -> Mapping[Path, list[types.Diagnostic]]:
    """Every diagnostic of one project, keyed by absolute file path."""
    builder = DiagnosticBuilder(
        root, read_text=read_text, to_uri=to_uri, describe=describe, encoding=encoding
    )
    builder.add_syntax_problems(syntax_problems)
    builder.add_collection_errors(collection_errors)
    builder.add_failures(failures)
    if fix is not None:
        builder.add_fix(fix)
    return dict(builder.by_path)
