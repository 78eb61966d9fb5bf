"""llama.cpp in this process: how many threads to run, importing it, and its log lines."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cyclefix.models.errors import ModelError

LLAMA_CPP_INSTALL_HINT = (
    "llama-cpp-python is not installed; install it with `pip install llama-cpp-python` "
    "(see the README for the build flags)"
)
# ChatML, the prompt format of the Qwen family; used only for a GGUF without its own template.


def count_physical_cores(cpuinfo: str) -> int | None:
    """Unique (physical id, core id) pairs in /proc/cpuinfo text; None if it names no cores."""
    cores: set[tuple[str, str]] = set()
    physical_id = core_id = ""
    for line in [*cpuinfo.splitlines(), ""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical_id = value.strip()
        elif key == "core id":
            core_id = value.strip()
        elif not line.strip():
            # A blank line ends one logical processor's block.
            if core_id:
                cores.add((physical_id, core_id))
            physical_id = core_id = ""
    return len(cores) or None


def default_thread_count() -> int:
    """Physical cores (hyperthreads slow llama.cpp down), at most the CPUs this process may use."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    try:
        physical = count_physical_cores(Path("/proc/cpuinfo").read_text())
    except OSError:
        physical = None
    counts = [n for n in (physical, allowed) if n]
    return min(counts) if counts else os.cpu_count() or 1


@contextlib.contextmanager
def model_params_amended(llama_cpp_module: Any, **fields: Any) -> Iterator[None]:
    """While a Llama loads: its model parameters with `fields` set. llama-cpp-python builds
    them from llama_model_default_params() and takes no argument for some fields (weight
    repacking), so the defaults are amended for the load."""
    bindings = llama_cpp_module.llama_cpp
    defaults = bindings.llama_model_default_params

    def amended() -> Any:
        params = defaults()
        for name, value in fields.items():
            setattr(params, name, value)
        return params

    with _LOADING:
        bindings.llama_model_default_params = amended
        try:
            yield
        finally:
            bindings.llama_model_default_params = defaults


# One amended load at a time: the defaults are the module's.
_LOADING = threading.Lock()


def import_llama_cpp() -> Any:
    """The llama_cpp module, or a one-line ModelError saying how to install it."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelError(LLAMA_CPP_INSTALL_HINT) from exc
    return llama_cpp


class _LlamaLog:
    """Receives llama.cpp's log lines instead of stderr; keeps the recent ones for messages."""

    def __init__(self) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=64)
        self.callback: Any = None

    def install(self, llama_cpp_module: Any) -> None:
        if self.callback is not None:
            return

        def receive(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            line = text.decode("utf-8", errors="replace").strip()
            if line:
                self.lines.append(line)

        # Kept on self: ctypes must not garbage-collect a callback llama.cpp still holds.
        self.callback = llama_cpp_module.llama_log_callback(receive)
        llama_cpp_module.llama_log_set(self.callback, ctypes.c_void_p(0))

    def last_error(self) -> str:
        """The latest line that reports an error, without its 'function_name: ' prefix."""
        # Level numbers differ between ggml versions; the text says "error" in all of them.
        for line in reversed(self.lines):
            if "error" in line.lower():
                return re.sub(r"^\w+: ", "", line)
        return "no details from llama.cpp"


_LOG = _LlamaLog()
