"""The one loaded model: opened lazily on first need, kept, and used by one thread at a time."""

from __future__ import annotations

import logging
import threading

from cyclefix.errors import CyclefixError
from cyclefix.refine import Backend, open_backend

logger = logging.getLogger(__name__)


class ModelHolder:
    """Loads a backend by spec and keeps it until another spec is asked for.

    `lock` serializes generation: the llama.cpp context is not thread-safe, and one
    generation at a time keeps the machine responsive.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._spec: str | None = None
        # (threads, GPU layers) the loaded backend was opened with (settings threads, gpuLayers).
        self._hardware: tuple[int | None, int | None] = (None, None)
        self._backend: Backend | None = None

    @property
    def loaded_spec(self) -> str | None:
        return self._spec

    def get(
        self, spec: str, n_threads: int | None = None, n_gpu_layers: int | None = None
    ) -> Backend:
        """The backend for `spec`, loading it (and closing another) if needed.

        Call with `lock` held. Raises ModelError (a CyclefixError) when it cannot load.
        """
        hardware = (n_threads, n_gpu_layers)
        if self._backend is not None and self._spec == spec and self._hardware == hardware:
            return self._backend
        self.close()
        logger.info("loading model %s", spec)
        backend = open_backend(spec, n_threads=n_threads, n_gpu_layers=n_gpu_layers)
        self._spec, self._hardware, self._backend = spec, hardware, backend
        logger.info("model %s loaded", backend.name)
        return backend

    def close(self) -> None:
        backend, self._backend, self._spec = self._backend, None, None
        if backend is not None:
            try:
                backend.close()
            except (CyclefixError, OSError) as exc:
                logger.warning("closing model failed: %s", exc)


def install_hint(spec: str, message: str) -> str:
    """The load error with how to install the model when the spec names a registry model."""
    looks_like_name = not (
        spec.endswith(".gguf") or ":" in spec or "/" in spec or spec.startswith(".")
    )
    if looks_like_name and "cyclefix models install" not in message:
        return f"{message} (install it with: cyclefix models install {spec})"
    return message
