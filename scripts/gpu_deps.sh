#!/usr/bin/env bash
# Prepares what scripts/gpu_check.sh needs on a GPU machine that has nvcc,
# CMake, PyTorch and cuDNN but no network and none of Janus's Debian
# dependencies. Run it HERE, on a Debian 12 machine with apt, before sending
# the repository to the GPU machine; it fills the ignored folder .gpu-deps/:
#
#   .gpu-deps/debs/   the Debian 12 packages Janus builds and tests with
#                     (oneDNN, OpenBLAS, GoogleTest, CLI11, nlohmann/json, zlib,
#                     and the OpenCL headers that Debian's oneDNN CMake
#                     package asks for), downloaded, not installed: the GPU
#                     machine unpacks them into its build folder (no root, no
#                     dpkg database touched)
#   .gpu-deps/data/   a slice of CIFAR-10 for the short GPU training:
#                     data_batch_1.bin (the first 5000 images of batch 1) and
#                     data_batch_5.bin (the first 1000 images of batch 5)
#
# Compressed .deb files keep the folder near 24 MiB, so that it travels with the
# repository (the GPU machine is reached with a copy of the working tree).
#   bash scripts/gpu_deps.sh [DATA_DIR]   (default: ./data, then ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  libdnnl2 libdnnl-dev
  libopenblas0-pthread libopenblas-dev libopenblas-pthread-dev libgfortran5
  libgtest-dev libgmock-dev libcli11-dev nlohmann-json3-dev
  zlib1g zlib1g-dev
  ocl-icd-opencl-dev ocl-icd-libopencl1 opencl-c-headers opencl-clhpp-headers
)
out=.gpu-deps
mkdir -p "$out/debs" "$out/data"
rm -f "$out"/debs/*.deb
# apt-get download writes into the current folder as the _apt user when it can.
chmod 777 "$out/debs"
(cd "$out/debs" && apt-get download "${packages[@]}" >/dev/null 2>&1) || {
  apt-get update -qq && (cd "$out/debs" && apt-get download "${packages[@]}" >/dev/null)
}
[ "$(ls "$out"/debs/*.deb | wc -l)" -eq "${#packages[@]}" ] ||
  { echo "gpu_deps.sh: expected ${#packages[@]} packages in $out/debs" >&2; exit 1; }

data=${1:-}
if [ -z "$data" ]; then
  for d in data ../shared/data; do
    [ -f "$d/cifar-10-batches-bin/data_batch_1.bin" ] && { data=$d/cifar-10-batches-bin; break; }
    [ -f "$d/data_batch_1.bin" ] && { data=$d; break; }
  done
fi
[ -n "$data" ] || { echo "gpu_deps.sh: no CIFAR-10 batches found (pass the folder of data_batch_N.bin)" >&2; exit 1; }
record=3073  # 1 label byte + 32*32*3 pixels
head -c $((record * 5000)) "$data/data_batch_1.bin" > "$out/data/data_batch_1.bin"
head -c $((record * 1000)) "$data/data_batch_5.bin" > "$out/data/data_batch_5.bin"
du -sh "$out" | sed 's/^/gpu_deps.sh: /'
