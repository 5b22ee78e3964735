#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine:
#   1. installs the build dependencies (apt),
#   2. builds Janus with the CUDA backend compiled for the CPU simulator
#      (-DJANUS_CUDA=SIM), so the CUDA kernels run and are compared with the
#      CPU backend by the parity suite,
#   3. runs every test with ctest (unit, golden, gradcheck, model, errors,
#      parity, cli, ...).
# On a machine with a GPU, pass JANUS_CUDA=ON to run the same suite on it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_deps.sh
mode="${JANUS_CUDA:-SIM}"
# On a GPU machine every GPU test must run: with JANUS_REQUIRE_CUDA=1 a test
# that would skip for want of a CUDA device fails, with the CUDA runtime's error.
if [ "$mode" = ON ]; then export JANUS_REQUIRE_CUDA=1; fi
build="build/test-${mode,,}"
cmake -S . -B "$build" -DJANUS_CUDA="$mode" -DCMAKE_BUILD_TYPE=Release ${JANUS_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "$@"
