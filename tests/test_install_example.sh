#!/usr/bin/env bash
# The installed package as a downstream project sees it: installs this build
# of Janus into a temporary prefix (cmake --install), configures and builds
# examples/residual_cnn against it with find_package(Janus) alone, and runs
# it (a few SGD steps on CIFAR-10, or on synthetic images when the data is
# absent; it says which), which saves a checkpoint, loads it back through the
# registered custom layer type and exits non-zero unless the predictions
# are identical. Then checks that nlohmann/json stays out of Janus::janus
# and that the optional component nlohmann_json works.
#   test_install_example.sh BUILD_DIR SOURCE_DIR [STEPS]
set -euo pipefail
build=$1 source=$2 steps=${3:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/janus-install-example.XXXXXX")
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/lib/cmake/Janus/JanusConfig.cmake" || { echo "no JanusConfig.cmake installed"; exit 1; }
# nlohmann/json is private: Janus::janus must not name it (only the optional
# component's target file may).
if grep -l nlohmann "$work"/prefix/lib/cmake/Janus/JanusTargets*.cmake; then
  echo "the exported Janus::janus depends on nlohmann/json; it should be private"
  exit 1
fi
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$source/examples/residual_cnn" -B "$work/example" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" > "$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/example" -j2 > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
mkdir -p "$work/run"
"$work/example/residual_cnn" --steps "$steps" --out "$work/run" | grep -v '^[ {}]'
test -f "$work/run/residual_cnn.safetensors" || { echo "no checkpoint written"; exit 1; }

# The optional component nlohmann_json: Janus::nlohmann_json and the opt-in
# header, both ways of the conversion.
mkdir -p "$work/component"
cat > "$work/component/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(janus_component_check LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 17)
find_package(Janus REQUIRED COMPONENTS nlohmann_json)
add_executable(component_check main.cpp)
target_link_libraries(component_check PRIVATE Janus::nlohmann_json)
CMAKE
cat > "$work/component/main.cpp" <<'CPP'
#include <janus/janus.hpp>
#include <janus/nlohmann_json.hpp>
int main() {
  const nlohmann::json cfg = {{"type", "dense"}, {"name", "fc"}, {"n_out", 3}};
  const nlohmann::json back = janus::make_layer(cfg, 0)->config();
  return back.at("n_out") == 3 && back.at("name") == "fc" ? 0 : 1;
}
CPP
cmake -S "$work/component" -B "$work/component/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" > "$work/component.log" 2>&1 &&
  cmake --build "$work/component/build" >> "$work/component.log" 2>&1 &&
  "$work/component/build/component_check" ||
  { cat "$work/component.log"; echo "find_package(Janus COMPONENTS nlohmann_json) did not build and run"; exit 1; }
echo "installed package: find_package(Janus) build and run of examples/residual_cnn passed;" \
  "the component nlohmann_json builds and runs"
