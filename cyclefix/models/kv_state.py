"""Saved KV states of prompt prefixes: kept in memory by a loaded model, on disk across processes.

Every refinement prompt opens with the same tokens (the system message and the next turn's
header). Their KV state is saved once, so a fresh `cyclefix fix` process and a prompt after an
unrelated one both skip evaluating them. A state holds for exactly one model file, one set of
context settings, one llama-cpp-python version and one token sequence: a file says all four,
and anything that differs, or does not read back whole, is not used.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import hashlib
import json
import logging
import os
import struct
import tempfile
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

# $CYCLEFIX_KV_STATE_DIR: where saved states live; "off" saves none.
STATE_DIR_ENV = "CYCLEFIX_KV_STATE_DIR"
FILE_MAGIC = b"CYCLEFIX-KV-STATE/1\n"
FILE_SUFFIX = ".kvstate"
# All saved states together stay under this; the least recently used go first.
DEFAULT_MAX_BYTES = 256 << 20
# States kept in memory by one loaded model (each a few MB).
MEMORY_STATES = 4
# Whole prompts read lately, kept by one loaded model (RecentReads), and their bytes at most:
# 28 KB a token for the 1.5B model, so a 2,000-token prompt of a real library is 57 MB.
RECENT_READS = 3
RECENT_READS_BYTES = 384 << 20

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StateKey:
    """What a KV state depends on besides its tokens."""

    model: str  # identity of the weights: model (and adapter) path, size, mtime
    settings: str  # context settings that shape the cache: n_ctx, batch sizes, KV types
    runtime: str  # llama-cpp-python's version: the state's byte layout is its own

    def digest(self) -> str:
        text = json.dumps([self.model, self.settings, self.runtime])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_identity(path: Path) -> str:
    """A file as it is now: real path, size and mtime (as the install stamps check)."""
    info = path.stat()
    return f"{path.resolve()}:{info.st_size}:{info.st_mtime_ns}"


def default_state_dir() -> Path | None:
    """$CYCLEFIX_KV_STATE_DIR ("off": None), else kv-states in the user cache."""
    override = os.environ.get(STATE_DIR_ENV, "").strip()
    if override.lower() == "off":
        return None
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("cyclefix")) / "kv-states"


def _token_bytes(tokens: Sequence[int]) -> bytes:
    return array("i", tokens).tobytes()


def _tokens_digest(tokens: Sequence[int]) -> str:
    return hashlib.sha256(_token_bytes(tokens)).hexdigest()


@dataclass(frozen=True)
class SavedState:
    tokens: tuple[int, ...]
    data: bytes  # llama.cpp's sequence state of exactly these tokens


class MemoryStates:
    """The last few prefix states of one loaded model, newest last."""

    def __init__(self, capacity: int = MEMORY_STATES) -> None:
        self._states: collections.OrderedDict[tuple[int, ...], bytes] = collections.OrderedDict()
        self.capacity = capacity

    def put(self, state: SavedState) -> None:
        self._states[state.tokens] = state.data
        self._states.move_to_end(state.tokens)
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)

    def longest(self, tokens: Sequence[int], shorter_than: int) -> SavedState | None:
        """The longest kept state whose tokens begin `tokens` and number under `shorter_than`."""
        best: SavedState | None = None
        for saved, data in self._states.items():
            n = len(saved)
            longer = best is None or n > len(best.tokens)
            if n < shorter_than and longer and tuple(tokens[:n]) == saved:
                best = SavedState(saved, data)
        if best is not None:
            self._states.move_to_end(best.tokens)
        return best


class RecentReads:
    """Whole prompts one loaded model read lately, newest last: a later prompt that shares more
    of one than the cache holds starts from it (a round that shows the code under test again
    after one that showed an attempt, a suspect's next turn after another's)."""

    def __init__(self, capacity: int = RECENT_READS, max_bytes: int = RECENT_READS_BYTES) -> None:
        self._states: collections.OrderedDict[tuple[int, ...], bytes] = collections.OrderedDict()
        self.capacity = capacity
        self.max_bytes = max_bytes

    def put(self, state: SavedState) -> None:
        if len(state.data) > self.max_bytes:
            return
        self._states[state.tokens] = state.data
        self._states.move_to_end(state.tokens)
        while len(self._states) > self.capacity or self.bytes > self.max_bytes:
            self._states.popitem(last=False)

    @property
    def bytes(self) -> int:
        return sum(len(data) for data in self._states.values())

    def holds(self, tokens: Sequence[int]) -> bool:
        return tuple(tokens) in self._states

    def best(self, tokens: Sequence[int]) -> tuple[SavedState, int] | None:
        """The kept read that shares the most leading tokens with `tokens`, and how many."""
        best: tuple[SavedState, int] | None = None
        for saved, data in self._states.items():
            shared = common_prefix(saved, tokens)
            if shared and (best is None or shared > best[1]):
                best = (SavedState(saved, data), shared)
        return best

    def forget(self, state: SavedState) -> None:
        self._states.pop(state.tokens, None)


class DiskStates:
    """Prefix states saved as files, named by key digest, token count and token digest."""

    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        # One line each about a state that could not be used or saved; read by the caller.
        self.notes: list[str] = []

    def _name(self, key: StateKey, tokens: Sequence[int]) -> str:
        return f"{key.digest()[:24]}-{len(tokens)}-{_tokens_digest(tokens)[:24]}{FILE_SUFFIX}"

    def _note(self, text: str) -> None:
        self.notes.append(text)
        _log.info("%s", text)

    def longest(self, key: StateKey, tokens: Sequence[int], shorter_than: int) -> SavedState | None:
        """The longest saved state for `key` whose tokens begin `tokens`, under `shorter_than`."""
        stem = key.digest()[:24]
        try:
            names = [p.name for p in self.directory.glob(f"{stem}-*{FILE_SUFFIX}")]
        except OSError:
            return None
        lengths: set[int] = set()
        for name in names:
            count = name[len(stem) + 1 :].partition("-")[0]
            if count.isdigit() and 0 < int(count) < shorter_than and int(count) <= len(tokens):
                lengths.add(int(count))
        for n in sorted(lengths, reverse=True):
            path = self.directory / self._name(key, tokens[:n])
            if path.name in names:
                state = self._read(path, key, tokens[:n])
                if state is not None:
                    return state
        return None

    def _read(self, path: Path, key: StateKey, tokens: Sequence[int]) -> SavedState | None:
        try:
            with path.open("rb") as handle:
                if handle.read(len(FILE_MAGIC)) != FILE_MAGIC:
                    raise ValueError("not a cyclefix KV state")
                header = json.loads(handle.readline())
                body = handle.read()
            if not isinstance(header, dict) or header.get("key") != key.digest():
                raise ValueError("saved for another model or settings")
            n, size = int(header["tokens"]), int(header["bytes"])
            if len(body) != 4 * n + size:
                raise ValueError("truncated")
            if hashlib.sha256(body).hexdigest() != header.get("sha256"):
                raise ValueError("its contents do not match its checksum")
            saved = tuple(struct.unpack(f"={n}i", body[: 4 * n]))
            if saved != tuple(tokens):
                raise ValueError("saved for other tokens")
        except FileNotFoundError:
            return None  # evicted by another process meanwhile
        except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
            self.discard(path, f"ignored the saved KV state {path.name}: {exc}")
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: evicted last
        return SavedState(saved, body[4 * n :])

    def discard(self, path: Path, why: str) -> None:
        """Note `why` a state file is unusable and remove it, so it is not read again."""
        self._note(why)
        with contextlib.suppress(OSError):
            path.unlink()

    def path_for(self, key: StateKey, tokens: Sequence[int]) -> Path:
        return self.directory / self._name(key, tokens)

    def save(self, key: StateKey, state: SavedState) -> None:
        """Write `state` atomically (a reader sees the whole file or none), then evict old ones."""
        body = _token_bytes(state.tokens) + state.data
        header = {
            "key": key.digest(),
            "tokens": len(state.tokens),
            "bytes": len(state.data),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        if len(body) > self.max_bytes:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(FILE_MAGIC + json.dumps(header).encode("ascii") + b"\n" + body)
                os.replace(tmp, self.path_for(key, state.tokens))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            self._note(f"could not save a KV state in {self.directory}: {exc}")
            return
        self.evict()

    def evict(self) -> None:
        """Remove the least recently used states until all fit in max_bytes."""
        files: list[tuple[float, int, Path]] = []
        try:
            for path in self.directory.glob(f"*{FILE_SUFFIX}"):
                with contextlib.suppress(FileNotFoundError):
                    info = path.stat()
                    files.append((info.st_mtime, info.st_size, path))
        except OSError:
            return
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files, key=lambda f: f[0]):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
            total -= size


def common_prefix(a: Iterable[int], b: Iterable[int]) -> int:
    """How many leading tokens `a` and `b` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class PrefixStates:
    """One loaded model's saved prefix states: the ones in memory first, then the files."""

    def __init__(self, key: StateKey, directory: Path | None) -> None:
        self.key = key
        self.memory = MemoryStates()
        self.disk = DiskStates(directory) if directory is not None else None

    @property
    def notes(self) -> list[str]:
        return self.disk.notes if self.disk is not None else []

    def longest(self, tokens: Sequence[int], shorter_than: int) -> SavedState | None:
        """The longest saved state that begins `tokens`, under `shorter_than` tokens."""
        best = self.memory.longest(tokens, shorter_than)
        if self.disk is not None and (best is None or len(best.tokens) < shorter_than - 1):
            found = self.disk.longest(self.key, tokens, shorter_than)
            if found is not None and (best is None or len(found.tokens) > len(best.tokens)):
                self.memory.put(found)
                best = found
        return best

    def save(self, state: SavedState) -> None:
        self.memory.put(state)
        if self.disk is not None:
            self.disk.save(self.key, state)

    def unusable(self, state: SavedState) -> None:
        """llama.cpp refused `state`: forget it, and remove its file."""
        self.memory = MemoryStates(self.memory.capacity)
        if self.disk is not None:
            path = self.disk.path_for(self.key, state.tokens)
            self.disk.discard(path, f"ignored the saved KV state {path.name}: llama.cpp refused it")


def state_key(llama: Any, model_path: Path, lora_path: Path | None, lora_scale: float) -> StateKey:
    """The key of a loaded Llama's states: its weights, the settings that shape its cache."""
    import llama_cpp

    model = file_identity(model_path)
    if lora_path is not None:
        model += f"+{file_identity(lora_path)}*{lora_scale}"
    params = llama.context_params
    settings = {
        name: int(getattr(params, name))
        for name in ("n_ctx", "n_batch", "n_ubatch", "flash_attn_type", "type_k", "type_v")
        if hasattr(params, name)
    }
    settings["n_gpu_layers"] = int(llama.model_params.n_gpu_layers)
    if hasattr(llama.model_params, "use_extra_bufts"):  # weights repacked: other kernels
        settings["weight_repack"] = int(llama.model_params.use_extra_bufts)
    return StateKey(model, json.dumps(settings, sort_keys=True), llama_cpp.__version__)


def snapshot(llama: Any) -> bytes:
    """llama.cpp's state of sequence 0: the KV cache of the tokens evaluated so far."""
    import llama_cpp

    ctx = llama._ctx.ctx
    size = llama_cpp.llama_state_seq_get_size(ctx, 0)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
    return ctypes.string_at(buffer, written)


def restore(llama: Any, state: SavedState) -> bool:
    """Put `state` into the cache in place of what it held; False (cache empty) if refused."""
    import llama_cpp

    llama._ctx.kv_cache_seq_rm(-1, 0, -1)
    llama.n_tokens = 0
    buffer = (ctypes.c_uint8 * len(state.data)).from_buffer_copy(state.data)
    if not state.data or llama_cpp.llama_state_seq_set_data(
        llama._ctx.ctx, buffer, len(state.data), 0
    ) != len(state.data):
        llama._ctx.kv_cache_seq_rm(-1, 0, -1)
        return False
    n = len(state.tokens)
    llama.input_ids[:n] = state.tokens
    llama.n_tokens = n
    # No logits come with a restored state: the next call must evaluate at least one token.
    llama._requires_eval = True
    return True
