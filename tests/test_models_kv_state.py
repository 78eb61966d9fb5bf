"""Saved KV states of prompt openings: a changed model, setting, runtime or prompt never reuses
a stale state, and a damaged file is ignored with a note."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cyclefix.models.kv_state import (
    FILE_SUFFIX,
    DiskStates,
    MemoryStates,
    PrefixStates,
    RecentReads,
    SavedState,
    StateKey,
    common_prefix,
    default_state_dir,
    file_identity,
)

KEY = StateKey(model="/m.gguf:100:7", settings='{"n_ctx": 4096}', runtime="0.3.36")
OPENING = (151644, 8948, 198, 2610, 525, 458, 6203, 13027)
PROMPT = (*OPENING, 151645, 198, 151644, 872, 198, 25958)
STATE = SavedState(OPENING, b"kv-cells" * 100)


def saved_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{FILE_SUFFIX}"))


@pytest.fixture
def disk(tmp_path: Path) -> DiskStates:
    states = DiskStates(tmp_path / "kv")
    states.save(KEY, STATE)
    return states


def test_a_prompt_opening_with_the_saved_tokens_gets_the_state(disk: DiskStates) -> None:
    assert disk.longest(KEY, PROMPT, len(PROMPT)) == STATE
    assert disk.notes == []


def test_another_model_file_never_reuses_the_state(disk: DiskStates) -> None:
    other = StateKey("/m.gguf:100:8", KEY.settings, KEY.runtime)
    assert disk.longest(other, PROMPT, len(PROMPT)) is None


def test_other_context_settings_never_reuse_the_state(disk: DiskStates) -> None:
    other = StateKey(KEY.model, '{"n_ctx": 8192}', KEY.runtime)
    assert disk.longest(other, PROMPT, len(PROMPT)) is None


def test_another_llama_cpp_version_never_reuses_the_state(disk: DiskStates) -> None:
    other = StateKey(KEY.model, KEY.settings, "0.3.37")
    assert disk.longest(other, PROMPT, len(PROMPT)) is None


def test_a_changed_template_or_system_prompt_never_reuses_the_state(disk: DiskStates) -> None:
    changed = (*OPENING[:5], 999, *OPENING[6:], *PROMPT[len(OPENING) :])
    assert disk.longest(KEY, changed, len(changed)) is None


def test_a_state_as_long_as_the_limit_is_not_used(disk: DiskStates) -> None:
    # The prompt's last token must be evaluated again for its logits.
    assert disk.longest(KEY, OPENING, len(OPENING)) is None


def test_the_longest_matching_state_wins(disk: DiskStates) -> None:
    longer = SavedState(PROMPT[:10], b"more cells")
    disk.save(KEY, longer)
    disk.save(KEY, SavedState((*PROMPT[:10], 5, 6), b"other turn"))
    assert disk.longest(KEY, PROMPT, len(PROMPT)) == longer


def test_a_file_whose_bytes_changed_is_ignored_with_a_note_and_removed(disk: DiskStates) -> None:
    [path] = saved_files(disk.directory)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    assert disk.longest(KEY, PROMPT, len(PROMPT)) is None
    assert "checksum" in disk.notes[0]
    assert not path.exists()


def test_a_truncated_file_is_ignored_with_a_note(disk: DiskStates) -> None:
    [path] = saved_files(disk.directory)
    path.write_bytes(path.read_bytes()[:-10])
    assert disk.longest(KEY, PROMPT, len(PROMPT)) is None
    assert "truncated" in disk.notes[0]


def test_a_file_that_is_not_a_state_is_ignored_with_a_note(disk: DiskStates) -> None:
    [path] = saved_files(disk.directory)
    path.write_bytes(b"\x00garbage")
    assert disk.longest(KEY, PROMPT, len(PROMPT)) is None
    assert "not a cyclefix KV state" in disk.notes[0]


def test_a_file_renamed_to_another_key_is_not_trusted(disk: DiskStates) -> None:
    other = StateKey(KEY.model, KEY.settings, "0.3.37")
    [path] = saved_files(disk.directory)
    path.rename(disk.path_for(other, OPENING))
    assert disk.longest(other, PROMPT, len(PROMPT)) is None
    assert "another model or settings" in disk.notes[0]


def test_saving_leaves_only_whole_files(tmp_path: Path) -> None:
    states = DiskStates(tmp_path)
    states.save(KEY, STATE)
    assert [p.name for p in tmp_path.iterdir()] == [states.path_for(KEY, OPENING).name]


def test_a_folder_that_cannot_be_written_gives_a_note_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    states = DiskStates(blocker / "kv")
    states.save(KEY, STATE)
    assert states.notes and "could not save" in states.notes[0]


def test_old_states_are_evicted_to_stay_under_the_size_bound(tmp_path: Path) -> None:
    states = DiskStates(tmp_path, max_bytes=2500)
    for i in range(3):
        states.save(KEY, SavedState((i, *OPENING), bytes(1000)))
        path = states.path_for(KEY, (i, *OPENING))
        os.utime(path, (1000 + i, 1000 + i))  # saved one after another
    states.save(KEY, SavedState((9, *OPENING), bytes(1000)))
    kept = {p.name for p in saved_files(tmp_path)}
    assert states.path_for(KEY, (0, *OPENING)).name not in kept
    assert states.path_for(KEY, (9, *OPENING)).name in kept
    assert sum(p.stat().st_size for p in saved_files(tmp_path)) <= 2500


def test_a_rewritten_model_file_has_another_identity(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF one")
    before = file_identity(model)
    model.write_bytes(b"GGUF two")
    os.utime(model, ns=(1, 1))
    assert file_identity(model) != before


def test_memory_keeps_the_newest_states_up_to_its_capacity() -> None:
    memory = MemoryStates(capacity=2)
    for first in (1, 2, 3):
        memory.put(SavedState((first, *OPENING), b"x"))
    assert memory.longest((1, *PROMPT), 100) is None
    assert memory.longest((3, *PROMPT), 100) == SavedState((3, *OPENING), b"x")


def test_a_state_read_from_disk_is_kept_in_memory(disk: DiskStates) -> None:
    states = PrefixStates(KEY, disk.directory)
    assert states.longest(PROMPT, len(PROMPT)) == STATE
    for path in saved_files(disk.directory):
        path.unlink()
    assert states.longest(PROMPT, len(PROMPT)) == STATE


def test_a_state_llama_cpp_refused_is_forgotten_and_its_file_removed(disk: DiskStates) -> None:
    states = PrefixStates(KEY, disk.directory)
    found = states.longest(PROMPT, len(PROMPT))
    assert found is not None
    states.unusable(found)
    assert states.longest(PROMPT, len(PROMPT)) is None
    assert "refused" in states.notes[0]


def test_the_state_folder_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CYCLEFIX_KV_STATE_DIR", "off")
    assert default_state_dir() is None
    monkeypatch.setenv("CYCLEFIX_KV_STATE_DIR", str(tmp_path))
    assert default_state_dir() == tmp_path
    monkeypatch.delenv("CYCLEFIX_KV_STATE_DIR")
    assert default_state_dir() is not None and default_state_dir() != tmp_path


def test_common_prefix_counts_the_shared_opening() -> None:
    assert common_prefix(PROMPT, OPENING) == len(OPENING)
    assert common_prefix((1, 2, 3), (1, 5, 3)) == 1


def test_the_recent_read_sharing_the_most_leading_tokens_is_the_best() -> None:
    reads = RecentReads(capacity=3)
    reads.put(SavedState((1, 2, 3, 4), b"a"))
    reads.put(SavedState((1, 2, 9, 9, 9), b"b"))
    assert reads.best((1, 2, 3, 7)) == (SavedState((1, 2, 3, 4), b"a"), 3)
    assert reads.best((1, 2, 9, 9, 5)) == (SavedState((1, 2, 9, 9, 9), b"b"), 4)
    assert reads.best((5, 1)) is None
    assert reads.holds((1, 2, 3, 4)) and not reads.holds((1, 2, 3))


def test_recent_reads_keep_the_newest_within_their_count_and_bytes() -> None:
    reads = RecentReads(capacity=2, max_bytes=10)
    for first in (1, 2, 3):
        reads.put(SavedState((first, 0), b"xxxx"))
    assert reads.best((1, 0)) is None and reads.best((3, 0)) is not None
    reads.put(SavedState((4, 0), b"y" * 8))  # with the newest read before it: over 10 bytes
    assert reads.best((3, 0)) is None and reads.bytes == 8
    reads.put(SavedState((5, 0), b"z" * 11))  # larger than all the room: never kept
    assert reads.best((5, 0)) is None and reads.best((4, 0)) is not None


def test_a_forgotten_read_is_never_offered_again() -> None:
    reads = RecentReads()
    state = SavedState((1, 2), b"a")
    reads.put(state)
    reads.forget(state)
    assert reads.best((1, 2)) is None
