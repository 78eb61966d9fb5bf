"""Write a verified fix into the user's files: all or nothing, never over newer edits.

The fix's `original` texts are the files as the scratch copy saw them, so a save made while
the fix was computed makes the file differ and the fix is refused (StaleFixError). Every new
text is first written to a temp file beside its target; only when all are written are they
renamed into place, and a failed rename puts back the files already replaced (ApplyError).
Texts are encoded as their file declares (PEP 263, a UTF-8 BOM), so bytes outside the rewritten
function stay as they were.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import tempfile
import tokenize
from dataclasses import dataclass
from pathlib import Path

from cyclefix.errors import CyclefixError
from cyclefix.refine.types import FixResult


class StaleFixError(CyclefixError):
    """A file changed after the fix was computed; applying it would lose the user's edits."""


class ApplyError(CyclefixError):
    """The fix could not be written (an OS error); the user's files are as they were."""


def encoding_of(data: bytes) -> str:
    """The encoding Python reads a source file with: a BOM, a PEP 263 line, else UTF-8."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return encoding


def declared_encoding(text: str, path: Path | None = None) -> str:
    """How to write `text` so Python reads it back: its coding line, else UTF-8.

    A UTF-8 file that starts with a BOM (`path`, when it exists) keeps its BOM.
    """
    head = "".join(text.splitlines(keepends=True)[:2]).encode("utf-8", errors="replace")
    try:
        encoding = encoding_of(head)
    except SyntaxError:
        encoding = "utf-8"  # an unknown codec name: Python would refuse the file as well
    if encoding == "utf-8" and path is not None:
        with contextlib.suppress(OSError), path.open("rb") as handle:
            if handle.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
                return "utf-8-sig"
    return encoding


def write_atomic(path: Path, text: str, encoding: str | None = None) -> None:
    """Replace `path` by a fully written temp file in the same folder: never half-written.

    `encoding` None: the one the text declares (see declared_encoding).
    """
    data = text.encode(encoding or declared_encoding(text, path))
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_temp(path: Path, data: bytes) -> Path:
    """A temp file beside `path` holding `data`, synced, with `path`'s permissions and owner."""
    info = path.stat() if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".cyclefix", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, info.st_mode & 0o7777 if info is not None else 0o644)
        if info is not None:
            # Run as root (sudo) on a user's project, the file must stay the user's.
            with contextlib.suppress(OSError):
                os.chown(tmp, info.st_uid, info.st_gid)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


@dataclass(frozen=True)
class _Planned:
    path: Path  # as the fix names it (maybe a symlink)
    target: Path  # the file written: a symlink stays a link, its target gets the fix
    before: bytes  # the file's bytes now, checked equal to what the fix was computed on
    after: bytes


def _plan(result: FixResult) -> list[_Planned]:
    """Each change's current and new bytes; StaleFixError when a file is not what was fixed."""
    planned: list[_Planned] = []
    for change in result.changes:
        try:
            before = change.path.read_bytes()
        except OSError as exc:
            raise StaleFixError(
                f"cannot read {change.path} to apply the fix: {exc.strerror or exc}"
            ) from exc
        try:
            encoding = encoding_of(before)
            current = before.decode(encoding)
        except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
            raise StaleFixError(f"{change.path} can no longer be read as Python: {exc}") from exc
        if current != change.original:
            raise StaleFixError(
                f"{change.path} changed since the fix was computed; run the fix again"
            )
        try:
            after = change.fixed.encode(encoding)
        except UnicodeEncodeError as exc:
            raise ApplyError(
                f"the fix for {change.path} has characters its encoding ({encoding}) cannot hold"
            ) from exc
        planned.append(_Planned(change.path, change.path.resolve(), before, after))
    return planned


def apply_fix(result: FixResult) -> tuple[Path, ...]:
    """Write every change of a `fixed` result, all or none; refuse if any file changed since.

    StaleFixError: a file differs from what was fixed (nothing written). ApplyError: an OS error
    while writing; files already replaced are put back, so every file is as it was.
    """
    if result.status != "fixed" or not result.changes:
        raise CyclefixError(f"nothing to apply: the fix status is {result.status}")
    planned = _plan(result)
    temps: dict[Path, Path] = {}
    replaced: list[_Planned] = []
    try:
        for item in planned:
            temps[item.target] = _write_temp(item.target, item.after)
        for item in planned:
            os.replace(temps[item.target], item.target)
            del temps[item.target]
            replaced.append(item)
    except OSError as exc:
        for tmp in temps.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        not_restored = _put_back(replaced)
        where = getattr(exc, "filename", None) or ""
        reason = f"{exc.strerror or exc}{f': {where}' if where else ''}"
        if not_restored:
            names = ", ".join(str(p) for p in not_restored)
            raise ApplyError(
                f"could not apply the fix ({reason}); could not restore {names} either"
            ) from exc
        raise ApplyError(f"could not apply the fix ({reason}); no file was changed") from exc
    return tuple(item.path for item in planned)


def _put_back(replaced: list[_Planned]) -> list[Path]:
    """Write back the bytes of files already replaced; the paths that could not be restored."""
    failed: list[Path] = []
    for item in reversed(replaced):
        try:
            tmp = _write_temp(item.target, item.before)
            os.replace(tmp, item.target)
        except OSError:
            failed.append(item.path)
    return failed
