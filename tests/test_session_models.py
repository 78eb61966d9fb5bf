"""The model holder: one backend kept loaded, used by one generation at a time."""

from __future__ import annotations

import threading
from typing import Any

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import Backend
from cyclefix.session.models import ModelHolder, install_hint


def _holder(opened: list[str]) -> ModelHolder:
    def opener(spec: str, **_hardware: Any) -> Backend:
        opened.append(spec)
        return ScriptedBackend([], name=spec)

    return ModelHolder(opener)


def test_the_backend_is_kept_until_another_spec_is_asked_for() -> None:
    opened: list[str] = []
    holder = _holder(opened)
    first = holder.get("a")
    assert holder.get("a") is first and holder.is_loaded("a")
    holder.get("b")
    assert opened == ["a", "b"] and not holder.is_loaded("a")


def test_hold_gives_up_when_cancelled_while_another_generation_runs() -> None:
    holder = _holder([])
    cancel = threading.Event()
    cancel.set()
    with holder.lock, holder.hold(cancel, poll=0.01) as held:
        assert held is False


def test_hold_holds_the_lock_when_free() -> None:
    holder = _holder([])
    with holder.hold(threading.Event()) as held:
        assert held is True and holder.lock.locked()
    assert not holder.lock.locked()


def test_install_hint_names_the_command_for_registry_names_only() -> None:
    assert "cyclefix models install qwen" in install_hint("qwen", "not installed")
    assert install_hint("./x.gguf", "missing") == "missing"
