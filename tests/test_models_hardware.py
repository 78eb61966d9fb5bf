"""Where the model runs: GPU layers passed to llama.cpp, the device named, the AMX check."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cyclefix.models import llama as llama_mod
from cyclefix.models.errors import ModelError
from cyclefix.models.hardware import (
    ALL_LAYERS,
    SAFE_REBUILD,
    amx_crash_risk,
    build_features,
    check_safe_build,
    choose_device,
    repack_weights,
)

CPU_AMX = "processor : 0\nflags : fpu avx2 avx512f amx_bf16 amx_tile amx_int8\n"
CPU_PLAIN = "processor : 0\nflags : fpu avx2 avx512f\n"
BUILD_NATIVE = "CPU : SSE3 = 1 | AVX2 = 1 | AMX_INT8 = 1 | OPENMP = 1 | "
BUILD_SAFE = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | OPENMP = 1 | "


def fake_llama_cpp(gpu: bool, system_info: str = BUILD_SAFE) -> Any:
    return SimpleNamespace(
        llama_supports_gpu_offload=lambda: gpu,
        llama_print_system_info=lambda: system_info.encode(),
        llama_cpp=SimpleNamespace(
            llama_model_default_params=lambda: SimpleNamespace(use_extra_bufts=True)
        ),
    )


def test_every_layer_goes_to_the_gpu_by_default_when_llama_cpp_can_offload() -> None:
    device = choose_device(fake_llama_cpp(gpu=True), None, 8)
    assert device.gpu_layers == ALL_LAYERS
    assert device.describe() == "GPU (all layers), CPU 8 threads"


def test_a_cpu_only_build_keeps_every_layer_on_the_cpu() -> None:
    device = choose_device(fake_llama_cpp(gpu=False), None, 2)
    assert device.gpu_layers == 0 and device.describe() == "CPU, 2 threads"


def test_gpu_layers_asked_of_a_cpu_only_build_is_an_error_saying_how_to_rebuild() -> None:
    with pytest.raises(ModelError, match="no GPU backend"):
        choose_device(fake_llama_cpp(gpu=False), 20, 2)
    assert choose_device(fake_llama_cpp(gpu=True), 20, 2).describe().startswith("GPU (20 layers)")


def test_build_features_reads_llama_cpp_system_info() -> None:
    assert build_features(BUILD_NATIVE) == {"SSE3", "AVX2", "AMX_INT8", "OPENMP"}


def test_amx_crash_risk_needs_an_amx_cpu_and_an_amx_build() -> None:
    assert amx_crash_risk(CPU_AMX, BUILD_NATIVE)
    assert not amx_crash_risk(CPU_AMX, BUILD_SAFE)
    assert not amx_crash_risk(CPU_PLAIN, BUILD_NATIVE)


def test_check_safe_build_prints_the_rebuild_one_liner(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPU_AMX)
    with pytest.raises(ModelError) as error:
        check_safe_build(fake_llama_cpp(False, BUILD_NATIVE), cpuinfo)
    assert SAFE_REBUILD in str(error.value)
    check_safe_build(fake_llama_cpp(False, BUILD_SAFE), cpuinfo)  # no error
    check_safe_build(fake_llama_cpp(False, BUILD_NATIVE), tmp_path / "missing")  # not Linux


def loading_into(module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """LlamaCppBackend loads with the fake llama_cpp `module` (its Llama() raises to stop)."""
    monkeypatch.setattr(llama_mod, "import_llama_cpp", lambda: module)
    quiet_log = SimpleNamespace(install=lambda module: None, last_error=lambda: "stopped")
    monkeypatch.setattr(llama_mod, "_LOG", quiet_log)
    monkeypatch.setattr(
        llama_mod, "read_gguf_info", lambda path: SimpleNamespace(context_length=lambda: 4096)
    )


def test_llama_gets_n_gpu_layers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def llama(**kwargs: Any) -> Any:
        seen.update(kwargs)
        raise ValueError("stop after the arguments are known")

    module = fake_llama_cpp(gpu=True)
    module.Llama = llama
    loading_into(module, monkeypatch)
    with pytest.raises(ModelError):
        llama_mod.LlamaCppBackend(tmp_path / "m.gguf", n_threads=3)
    assert seen["n_gpu_layers"] == ALL_LAYERS and seen["n_threads"] == 3
    with pytest.raises(ModelError):
        llama_mod.LlamaCppBackend(tmp_path / "m.gguf", n_threads=3, n_gpu_layers=0)
    assert seen["n_gpu_layers"] == 0


def test_weights_are_not_repacked_for_the_cpu_of_an_avx512_machine() -> None:
    cpu = choose_device(fake_llama_cpp(gpu=False), None, 2)
    assert not repack_weights(cpu, CPU_PLAIN)
    assert repack_weights(cpu, "processor : 0\nflags : fpu avx2 fma\n")
    assert repack_weights(cpu, "")  # no /proc/cpuinfo: llama.cpp's default
    assert repack_weights(choose_device(fake_llama_cpp(gpu=True), None, 2), CPU_PLAIN)


def test_llama_loads_with_the_repacking_chosen_and_the_defaults_stay(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = fake_llama_cpp(gpu=False)
    repacked: list[bool] = []

    def llama(**kwargs: Any) -> Any:
        repacked.append(module.llama_cpp.llama_model_default_params().use_extra_bufts)
        raise ValueError("stop after the parameters are known")

    module.Llama = llama
    loading_into(module, monkeypatch)
    monkeypatch.setattr(llama_mod, "read_cpuinfo", lambda: CPU_PLAIN)
    for asked in (None, True, False):
        with pytest.raises(ModelError):
            llama_mod.LlamaCppBackend(tmp_path / "m.gguf", n_threads=2, weight_repack=asked)
    assert repacked == [False, True, False]
    assert module.llama_cpp.llama_model_default_params().use_extra_bufts


def test_one_thread_is_singular() -> None:
    assert choose_device(fake_llama_cpp(gpu=False), 0, 1).describe() == "CPU, 1 thread"
