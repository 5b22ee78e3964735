#!/usr/bin/env bash
# The installed package as a downstream project sees it: installs this build
# of Janus into a temporary prefix (cmake --install), configures and builds
# examples/residual_cnn against it with find_package(Janus) alone, and runs
# it (a few SGD steps on CIFAR-10, or on synthetic images when the data is
# absent; it says which), which saves a checkpoint, loads it back through the
# registered custom layer type and exits non-zero unless the predictions
# are identical.
#   test_install_example.sh BUILD_DIR SOURCE_DIR [STEPS]
set -euo pipefail
build=$1 source=$2 steps=${3:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/janus-install-example.XXXXXX")
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/lib/cmake/Janus/JanusConfig.cmake" || { echo "no JanusConfig.cmake installed"; exit 1; }
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$source/examples/residual_cnn" -B "$work/example" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" > "$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/example" -j2 > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
mkdir -p "$work/run"
"$work/example/residual_cnn" --steps "$steps" --out "$work/run" | grep -v '^[ {}]'
test -f "$work/run/residual_cnn.safetensors" || { echo "no checkpoint written"; exit 1; }
echo "installed package: find_package(Janus) build and run of examples/residual_cnn passed"
