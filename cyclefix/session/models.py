"""The one loaded model: opened lazily on first need, kept, and used by one thread at a time."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from cyclefix.errors import CyclefixError
from cyclefix.refine import Backend, open_backend

logger = logging.getLogger(__name__)

# Opens a backend: open_backend's signature (spec, n_threads=..., n_gpu_layers=...).
Opener = Callable[..., Backend]
Hardware = tuple[int | None, int | None]


class ModelHolder:
    """Loads a backend by spec and keeps it until another spec (or hardware) is asked for.

    `lock` serializes generation: the llama.cpp context is not thread-safe, and one
    generation at a time keeps the machine responsive.
    """

    def __init__(self, opener: Opener | None = None) -> None:
        self.lock = threading.Lock()
        # None: this module's open_backend, looked up at each load (tests replace it).
        self._opener = opener
        self._spec: str | None = None
        # (threads, GPU layers) the loaded backend was opened with (settings threads, gpuLayers).
        self._hardware: Hardware = (None, None)
        self._backend: Backend | None = None

    def is_loaded(
        self, spec: str, n_threads: int | None = None, n_gpu_layers: int | None = None
    ) -> bool:
        return self._backend is not None and (self._spec, self._hardware) == (
            spec,
            (n_threads, n_gpu_layers),
        )

    def get(
        self, spec: str, n_threads: int | None = None, n_gpu_layers: int | None = None
    ) -> Backend:
        """The backend for `spec`, loading it (and closing another) if needed.

        Call with `lock` held. Raises ModelError (a CyclefixError) when it cannot load.
        """
        if self._backend is not None and self.is_loaded(spec, n_threads, n_gpu_layers):
            return self._backend
        self.close()
        logger.info("loading model %s", spec)
        opener = self._opener or open_backend
        kwargs: dict[str, Any] = {"n_threads": n_threads, "n_gpu_layers": n_gpu_layers}
        backend = opener(spec, **kwargs)
        self._spec, self._hardware, self._backend = spec, (n_threads, n_gpu_layers), backend
        logger.info("model %s loaded", backend.name)
        return backend

    @contextlib.contextmanager
    def hold(self, cancel: threading.Event | None = None, poll: float = 0.1) -> Iterator[bool]:
        """Hold `lock` for a generation; yields False (lock not held) once `cancel` is set first."""
        while not self.lock.acquire(timeout=poll):
            if cancel is not None and cancel.is_set():
                yield False
                return
        try:
            yield not (cancel is not None and cancel.is_set())
        finally:
            self.lock.release()

    def close(self) -> None:
        backend, self._backend, self._spec = self._backend, None, None
        if backend is not None:
            try:
                backend.close()
            except (CyclefixError, OSError) as exc:
                logger.warning("closing model failed: %s", exc)

    def close_when_free(self, timeout: float) -> bool:
        """Close the model once no generation holds it (a running one stops at its next token)."""
        if not self.lock.acquire(timeout=timeout):
            return False
        try:
            self.close()
        finally:
            self.lock.release()
        return True


def model_names() -> tuple[str, ...]:
    """The registry's model names, to offer in a chooser."""
    from cyclefix.models.registry import REGISTRY

    return tuple(REGISTRY)


def looks_like_registry_name(spec: str) -> bool:
    """A bare name such as "qwen2.5-coder-0.5b", not a path, URL or scripted spec."""
    return (
        bool(spec)
        and not any(c in spec for c in "/\\:")
        and not spec.endswith(".gguf")
        and not spec.startswith(".")
    )


def install_hint(spec: str, message: str) -> str:
    """The load error with how to install the model when the spec names a registry model."""
    if looks_like_registry_name(spec) and "cyclefix models install" not in message:
        return f"{message} (install it with: cyclefix models install {spec})"
    return message
