#!/bin/sh
# Print CMAKE_ARGS for building llama-cpp-python on this CPU.
# GGML_NATIVE=ON picks up AMX on some Xeons and crashes on the first token
# (ggml_backend_amx_mul_mat), so we turn native off and enable exactly the
# instruction sets /proc/cpuinfo reports: a flag the CPU lacks means SIGILL.
set -eu
if [ "$(uname -s)" != "Linux" ] || [ ! -r /proc/cpuinfo ]; then
  # macOS (Metal) and others: llama.cpp's own defaults are right there.
  exit 0
fi
case "$(uname -m)" in
  x86_64|amd64) ;;
  *) exit 0 ;;
esac
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { case "$flags" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
args="-DGGML_NATIVE=OFF"
on() { if has "$1"; then args="$args -D$2=ON"; else args="$args -D$2=OFF"; fi; }
on avx GGML_AVX
on avx2 GGML_AVX2
on fma GGML_FMA
on f16c GGML_F16C
on bmi2 GGML_BMI2
on avx_vnni GGML_AVX_VNNI
on avx512f GGML_AVX512
on avx512vbmi GGML_AVX512_VBMI
on avx512_vnni GGML_AVX512_VNNI
on avx512_bf16 GGML_AVX512_BF16
# AMX stays off even where the CPU reports it: it is the crash above.
args="$args -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
# CUDA is opt-in (CYCLEFIX_CUDA=1): a CUDA build takes far longer and needs a GPU to be useful.
if [ "${CYCLEFIX_CUDA:-0}" = 1 ]; then args="$args -DGGML_CUDA=ON"; fi
echo "$args"
