"""serve loads its model with the threads and gpuLayers settings, reloading when they change."""

from __future__ import annotations

from typing import Any

import pytest

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.session import models as model_holder


def test_model_holder_opens_with_threads_and_gpu_layers_and_reloads_on_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[tuple[str, dict[str, Any]]] = []

    def open_backend(spec: str, **kwargs: Any) -> ScriptedBackend:
        opened.append((spec, kwargs))
        return ScriptedBackend([], name=spec)

    monkeypatch.setattr(model_holder, "open_backend", open_backend)
    holder = model_holder.ModelHolder()
    first = holder.get("m", 2, 0)
    assert holder.get("m", 2, 0) is first  # same settings: kept loaded
    holder.get("m", 4, -1)
    assert opened == [
        ("m", {"n_threads": 2, "n_gpu_layers": 0}),
        ("m", {"n_threads": 4, "n_gpu_layers": -1}),
    ]
    holder.close()
