"""Check a GGUF file's header and length before llama.cpp sees it (it may abort on a bad one)."""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

from cyclefix.models.errors import ModelError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
# Far above any real model; a bigger count means the header is garbage.
MAX_COUNT = 1 << 20
MAX_DIMS = 8

# GGUF metadata value types -> struct format of the fixed-size ones.
_SCALAR_FORMATS: dict[int, str] = {
    0: "<B",  # uint8
    1: "<b",  # int8
    2: "<H",  # uint16
    3: "<h",  # int16
    4: "<I",  # uint32
    5: "<i",  # int32
    6: "<f",  # float32
    7: "<?",  # bool
    10: "<Q",  # uint64
    11: "<q",  # int64
    12: "<d",  # float64
}
_TYPE_STRING = 8
_LENGTH = struct.Struct("<Q")  # a string's length prefix
_TYPE_ARRAY = 9

# ggml tensor type -> (elements per block, bytes per block); types not listed only get the
# weaker check that their data starts inside the file.
_GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    9: (32, 36),  # Q8_1
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    20: (32, 18),  # IQ4_NL
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    30: (1, 2),  # BF16
}

MetadataValue = int | float | bool | str


@dataclass(frozen=True)
class GGUFInfo:
    version: int
    tensor_count: int
    # Scalar and string metadata; arrays (the vocabulary) are skipped.
    metadata: dict[str, MetadataValue] = field(repr=False)
    # Offset of the first tensor byte, and the length the tensors say the file must have.
    data_offset: int
    required_size: int
    file_size: int

    def context_length(self) -> int | None:
        arch = self.metadata.get("general.architecture")
        value = self.metadata.get(f"{arch}.context_length") if isinstance(arch, str) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Truncated(Exception):
    """The header claims more bytes than the file has."""


class _Corrupt(Exception):
    """The header holds values no GGUF writer produces."""


class _Reader:
    def __init__(self, buffer: mmap.mmap) -> None:
        self.buffer = buffer
        self.offset = 0

    def unpack(self, fmt: str) -> int | float | bool:
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.buffer):
            raise _Truncated
        (value,) = struct.unpack_from(fmt, self.buffer, self.offset)
        self.offset += size
        result: int | float | bool = value
        return result

    def uint(self, fmt: str) -> int:
        return int(self.unpack(fmt))

    def skip(self, size: int) -> None:
        if self.offset + size > len(self.buffer):
            raise _Truncated
        self.offset += size

    def string(self) -> str:
        length = self.uint("<Q")
        if self.offset + length > len(self.buffer):
            raise _Truncated
        raw = bytes(self.buffer[self.offset : self.offset + length])
        self.offset += length
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        self.skip(self.uint("<Q"))

    def skip_strings(self, count: int) -> None:
        """Skip `count` strings: a vocabulary's 150,000 in one tight loop."""
        buffer, offset, end = self.buffer, self.offset, len(self.buffer)
        length_at = _LENGTH.unpack_from
        for _ in range(count):
            if offset + 8 > end:
                raise _Truncated
            offset += 8 + length_at(buffer, offset)[0]
        if offset > end:
            raise _Truncated
        self.offset = offset

    def value(self, value_type: int) -> MetadataValue | None:
        """Read one metadata value; arrays are skipped and give None."""
        if value_type in _SCALAR_FORMATS:
            return self.unpack(_SCALAR_FORMATS[value_type])
        if value_type == _TYPE_STRING:
            return self.string()
        if value_type == _TYPE_ARRAY:
            element_type = self.uint("<I")
            count = self.uint("<Q")
            if element_type in _SCALAR_FORMATS:
                self.skip(count * struct.calcsize(_SCALAR_FORMATS[element_type]))
            elif element_type == _TYPE_STRING:
                self.skip_strings(count)
            else:
                # Nested arrays do not occur in model files.
                raise _Corrupt(f"unsupported array element type {element_type}")
            return None
        raise _Corrupt(f"unknown metadata value type {value_type}")


def read_gguf_info(path: Path) -> GGUFInfo:
    """Parse the header of the GGUF at `path`; ModelError (one line) if it is not a sound GGUF.
    The file as it is now (size, mtime) is parsed once per process."""
    try:
        stat = path.stat()
    except OSError:
        stat = None
    if stat is not None and path.is_file():
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        cached = _PARSED.get(key)
        if cached is None:
            cached = _PARSED[key] = _read_gguf_info(path)
        return cached
    return _read_gguf_info(path)


# Headers parsed so far, by file path, size and mtime.
_PARSED: dict[tuple[str, int, int], GGUFInfo] = {}


def _read_gguf_info(path: Path) -> GGUFInfo:
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}")
    file_size = path.stat().st_size
    if file_size < 24:
        raise ModelError(f"{path} is not a GGUF model file ({file_size} bytes, too short)")
    try:
        with (
            path.open("rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer,
        ):
            return _parse(path, buffer, file_size)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror or exc}") from exc


def check_gguf_file(path: Path) -> None:
    """Raise ModelError (one line) unless `path` is a complete, well-formed GGUF file."""
    read_gguf_info(path)


def _parse(path: Path, buffer: mmap.mmap, file_size: int) -> GGUFInfo:
    magic = bytes(buffer[:4])
    if magic != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF model file (starts with {magic!r}, not b'GGUF')")
    reader = _Reader(buffer)
    reader.skip(4)
    try:
        version = reader.uint("<I")
        if version not in SUPPORTED_VERSIONS:
            raise _Corrupt(f"unsupported GGUF version {version}")
        tensor_count = reader.uint("<Q")
        kv_count = reader.uint("<Q")
        if tensor_count > MAX_COUNT or kv_count > MAX_COUNT:
            raise _Corrupt(f"implausible counts ({tensor_count} tensors, {kv_count} keys)")
        metadata: dict[str, MetadataValue] = {}
        for _ in range(kv_count):
            key = reader.string()
            value = reader.value(reader.uint("<I"))
            if value is not None:
                metadata[key] = value
        alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise _Corrupt(f"bad alignment {alignment!r}")
        tensor_ends: list[int] = []
        for _ in range(tensor_count):
            reader.skip_string()
            n_dims = reader.uint("<I")
            if n_dims > MAX_DIMS:
                raise _Corrupt(f"tensor with {n_dims} dimensions")
            elements = 1
            for _ in range(n_dims):
                elements *= reader.uint("<Q")
            ggml_type = reader.uint("<I")
            offset = reader.uint("<Q")
            block = _GGML_BLOCKS.get(ggml_type)
            nbytes = 0 if block is None else -(-elements // block[0]) * block[1]
            tensor_ends.append(offset + nbytes)
    except _Truncated:
        raise ModelError(
            f"{path} is a truncated GGUF file: its header runs past the end ({file_size} bytes)"
        ) from None
    except _Corrupt as exc:
        raise ModelError(f"{path} is a corrupt GGUF file: {exc}") from None
    data_offset = -(-reader.offset // alignment) * alignment
    required_size = data_offset + max(tensor_ends, default=0)
    if file_size < required_size:
        raise ModelError(
            f"{path} is a truncated GGUF file: {file_size} bytes, its tensors need {required_size}"
        )
    return GGUFInfo(
        version=version,
        tensor_count=tensor_count,
        metadata=metadata,
        data_offset=data_offset,
        required_size=required_size,
        file_size=file_size,
    )
