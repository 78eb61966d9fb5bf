"""GGUF header checks: a missing, foreign, truncated or garbled file is a one-line ModelError."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from fixtures.models.fakes import gguf_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cyclefix.models.errors import ModelError
from cyclefix.models.gguf_check import check_gguf_file, read_gguf_info

VALID = gguf_bytes()


def write(tmp_path: Path, data: bytes, name: str = "model.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def one_line_error(path: Path) -> str:
    with pytest.raises(ModelError) as caught:
        check_gguf_file(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_valid_file_passes_and_reports_its_header(tmp_path: Path) -> None:
    info = read_gguf_info(write(tmp_path, VALID))
    assert info.version == 3
    assert info.tensor_count == 2
    assert info.metadata["general.architecture"] == "fake"
    assert info.context_length() == 2048
    # Arrays (the vocabulary) are skipped, not kept.
    assert "tokenizer.ggml.tokens" not in info.metadata
    assert info.required_size == len(VALID) == info.file_size


def test_version_2_is_accepted(tmp_path: Path) -> None:
    check_gguf_file(write(tmp_path, gguf_bytes(version=2)))


def test_missing_file(tmp_path: Path) -> None:
    assert "not found" in one_line_error(tmp_path / "absent.gguf")


def test_directory_is_not_a_model(tmp_path: Path) -> None:
    assert "not a file" in one_line_error(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    assert "too short" in one_line_error(write(tmp_path, b""))


def test_wrong_magic(tmp_path: Path) -> None:
    message = one_line_error(write(tmp_path, b"PK\x03\x04" + VALID[4:]))
    assert "not a GGUF" in message


def test_text_file_with_gguf_name(tmp_path: Path) -> None:
    assert "not a GGUF" in one_line_error(write(tmp_path, b"version https://git-lfs\n" * 4))


def test_truncated_tensor_data(tmp_path: Path) -> None:
    message = one_line_error(write(tmp_path, VALID[:-10]))
    assert "truncated" in message
    assert f"{len(VALID) - 10} bytes" in message


def test_truncated_header(tmp_path: Path) -> None:
    message = one_line_error(write(tmp_path, VALID[:60]))
    assert "truncated" in message and "header" in message


def test_unsupported_version(tmp_path: Path) -> None:
    data = VALID[:4] + struct.pack("<I", 99) + VALID[8:]
    assert "unsupported GGUF version 99" in one_line_error(write(tmp_path, data))


def test_absurd_tensor_count(tmp_path: Path) -> None:
    data = VALID[:8] + struct.pack("<Q", 2**40) + VALID[16:]
    assert "implausible" in one_line_error(write(tmp_path, data))


def test_unknown_value_type(tmp_path: Path) -> None:
    # The first key is "general.architecture" (8-byte length + 20 bytes); its type follows.
    type_offset = 24 + 8 + len("general.architecture")
    data = VALID[:type_offset] + struct.pack("<I", 77) + VALID[type_offset + 4 :]
    assert "unknown metadata value type 77" in one_line_error(write(tmp_path, data))


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=0, max_value=len(VALID) - 1))
def test_every_truncation_is_caught(tmp_path: Path, cut: int) -> None:
    one_line_error(write(tmp_path, VALID[:cut], f"cut{cut}.gguf"))


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.integers(min_value=4, max_value=300), byte=st.integers(0, 255))
def test_garbled_header_never_escapes_as_another_exception(
    tmp_path: Path, position: int, byte: int
) -> None:
    data = bytearray(VALID)
    data[position] = byte
    path = write(tmp_path, bytes(data), "garbled.gguf")
    try:
        check_gguf_file(path)
    except ModelError as exc:
        assert "\n" not in str(exc)
