"""What llama.cpp runs on: GPU layers, the device named for the user, the AMX crash check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclefix.models.errors import ModelError

# llama.cpp's n_gpu_layers for "every layer".
ALL_LAYERS = -1
# The one-liner that rebuilds llama-cpp-python with the safe flags (run from the repository).
SAFE_REBUILD = (
    'CMAKE_ARGS="$(sh scripts/llama-cmake-args.sh)" '
    "pip install --force-reinstall --no-cache-dir llama-cpp-python"
)


@dataclass(frozen=True)
class Device:
    """Where the model's layers run, as chosen for one load."""

    gpu_layers: int  # passed to Llama(n_gpu_layers=...): 0 CPU only, -1 all
    threads: int

    def describe(self) -> str:
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        if self.gpu_layers == 0:
            return f"CPU, {threads}"
        layers = "all layers" if self.gpu_layers == ALL_LAYERS else f"{self.gpu_layers} layers"
        return f"GPU ({layers}), CPU {threads}"


def supports_gpu_offload(llama_cpp_module: Any) -> bool:
    """Whether this llama.cpp build has a GPU backend (CUDA, Metal, Vulkan...) it can use."""
    probe = getattr(llama_cpp_module, "llama_supports_gpu_offload", None)
    return bool(probe()) if callable(probe) else False


def choose_device(llama_cpp_module: Any, gpu_layers: int | None, threads: int) -> Device:
    """`gpu_layers` as asked; None: every layer when the build can offload, else none."""
    if gpu_layers is None:
        gpu_layers = ALL_LAYERS if supports_gpu_offload(llama_cpp_module) else 0
    elif gpu_layers != 0 and not supports_gpu_offload(llama_cpp_module):
        raise ModelError(
            f"{gpu_layers if gpu_layers != ALL_LAYERS else 'all'} GPU layers were asked for, but "
            "this llama-cpp-python build has no GPU backend; rebuild it for CUDA or Metal (see "
            "the README's GPU section) or use --gpu-layers 0"
        )
    return Device(gpu_layers=gpu_layers, threads=threads)


def cpu_flags(cpuinfo: str) -> set[str]:
    """The instruction-set flags of the first processor in /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def repack_weights(device: Device, cpuinfo: str) -> bool:
    """Whether llama.cpp repacks the weights for its CPU kernels (its default): not for a model
    on the CPU of an AVX-512 machine, where its plain kernels read a prompt about 30% faster
    (1.5B, Q4_K_M; generation about 20% slower) and the load skips a copy of the weights:
    cyclefix reads far more tokens than it writes (benchmarks/RESULTS.md, model-side speed)."""
    return device.gpu_layers != 0 or "avx512f" not in cpu_flags(cpuinfo)


def read_cpuinfo(path: Path = Path("/proc/cpuinfo")) -> str:
    """/proc/cpuinfo's text; empty where there is none (not Linux)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def build_features(system_info: str) -> set[str]:
    """Features a llama.cpp build reports as on (`AVX2 = 1 | AMX_INT8 = 1 | ...`)."""
    features: set[str] = set()
    for part in system_info.replace("\n", "|").split("|"):
        name, _, value = part.rpartition("=")
        name = name.rpartition(":")[2].strip()
        if name and value.strip() == "1":
            features.add(name.upper())
    return features


def amx_crash_risk(cpuinfo: str, system_info: str) -> bool:
    """A CPU with AMX and a build that uses it: the first generated token crashes the process."""
    has_amx_cpu = any(flag.startswith("amx") for flag in cpu_flags(cpuinfo))
    uses_amx = any(feature.startswith("AMX") for feature in build_features(system_info))
    return has_amx_cpu and uses_amx


def check_safe_build(llama_cpp_module: Any, cpuinfo_path: Path = Path("/proc/cpuinfo")) -> None:
    """ModelError with the rebuild one-liner instead of a segfault on the first token."""
    cpuinfo = read_cpuinfo(cpuinfo_path)
    if not cpuinfo:
        return  # not Linux: no AMX check possible, llama.cpp's defaults apply
    info = getattr(llama_cpp_module, "llama_print_system_info", None)
    if not callable(info):
        return
    raw = info()
    system_info = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if amx_crash_risk(cpuinfo, system_info):
        raise ModelError(
            "this llama-cpp-python was built with AMX for this CPU, which crashes on the first "
            f"generated token; rebuild it without AMX: {SAFE_REBUILD}"
        )
