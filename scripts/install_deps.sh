#!/usr/bin/env bash
# Installs every Debian 12 (bookworm) package that Janus's build, its tests,
# the smoke runs (scripts/smoke.sh) and the main job (scripts/train.sh) need,
# starting from a bare system: CI's first stage runs it in a minimal Debian
# root made with mmdebstrap (scripts/fresh_machine_check.sh), so a package
# that is only here by accident shows up there. Safe to re-run: it does
# nothing when everything is already there.
#
# Not installed here: the CUDA toolkit (NVIDIA's, at /usr/local/cuda; only for
# -DJANUS_CUDA=ON), PyTorch (bench/compare_pytorch.py and
# tests/golden/generate.py, never needed to build or test), clang's libFuzzer
# runtime (scripts/fuzz.sh; CI installs it for its fuzzing stage). Python's
# safetensors, which Debian does not package, is put by CTest in a virtual
# environment under the build folder (scripts/python_test_env.sh).
set -euo pipefail

packages=(
  # compilers and build tools (CMakeLists.txt: C and C++, CMake >= 3.25)
  cmake make gcc g++
  # find_package: nlohmann_json, ZLIB, BLAS (OpenBLAS), OpenMP (libgomp comes
  # with gcc), dnnl; apps/: CLI11; tests/: GTest, GMock
  nlohmann-json3-dev zlib1g-dev libopenblas-dev libdnnl-dev libcli11-dev libgtest-dev libgmock-dev
  # Debian's dnnl CMake package calls find_package(OpenCL) (its GPU runtime),
  # which only libdnnl-dev's Recommends bring; installs here skip Recommends
  ocl-icd-opencl-dev
  # `janus train` draws loss.png and accuracy.png with gnuplot
  gnuplot-nox
  # Fashion-MNIST (configs/fashion_mnist.json, smoke runs, data tests)
  dataset-fashion-mnist
  # the tests: shell tests write configs and read checkpoints with python3;
  # the safetensors check runs in a venv (python3-venv) on Debian's numpy
  python3 python3-venv python3-numpy
  # HTTPS downloads: PyPI (the tests' venv), scripts/download_cifar10.sh (curl)
  ca-certificates curl
  # tools the scripts and tests call (awk, gzip, cmp/diff); Debian always has
  # them (Essential or Priority: required), listed so nothing is assumed
  mawk gzip diffutils coreutils
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "janus: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo > /dev/null || { echo "janus: installing packages needs root: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
