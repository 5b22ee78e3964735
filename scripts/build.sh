#!/usr/bin/env bash
# Builds the janus tool (Release) and prints the path of the binary on its
# last line. The backend is chosen for the machine: the real CUDA backend
# when nvcc and an NVIDIA GPU are present, else CPU only. Override with
# JANUS_CUDA=OFF|ON|SIM.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
mode="${JANUS_CUDA:-}"
if [ -z "$mode" ]; then
  mode=OFF
  if [ -x /usr/local/cuda/bin/nvcc ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    mode=ON
  fi
fi
build="build/release-${mode,,}"
cmake -S . -B "$build" -DJANUS_CUDA="$mode" -DCMAKE_BUILD_TYPE=Release -DJANUS_BUILD_TESTS=OFF >&2
cmake --build "$build" -j"$(nproc)" --target janus_cli janus_bench >&2
echo "$PWD/$build/janus"
