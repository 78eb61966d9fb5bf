"""Write a verified fix into the user's files: all or nothing, never over newer edits."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import tokenize
from pathlib import Path

from cyclefix.errors import CyclefixError
from cyclefix.refine.types import FixResult


class StaleFixError(CyclefixError):
    """A file changed after the fix was computed; applying it would lose the user's edits."""


def write_atomic(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Replace `path` by a fully written temp file in the same folder: never half-written."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".cyclefix", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def apply_fix(result: FixResult) -> tuple[Path, ...]:
    """Write every change of a `fixed` result; refuse if any file differs from what was fixed."""
    if result.status != "fixed" or not result.changes:
        raise CyclefixError(f"nothing to apply: the fix status is {result.status}")
    encodings: list[str] = []
    for change in result.changes:
        try:
            data = change.path.read_bytes()
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
            current = data.decode(encoding)
        except (OSError, SyntaxError, UnicodeDecodeError, LookupError) as exc:
            raise StaleFixError(f"cannot read {change.path} to apply the fix: {exc}") from exc
        if current != change.original:
            raise StaleFixError(
                f"{change.path} changed since the fix was computed; run the fix again"
            )
        encodings.append(encoding)
    written: list[Path] = []
    for change, encoding in zip(result.changes, encodings, strict=True):
        write_atomic(change.path, change.fixed, encoding)
        written.append(change.path)
    return tuple(written)
