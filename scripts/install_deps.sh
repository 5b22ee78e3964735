#!/usr/bin/env bash
# Installs the Debian packages Janus builds and tests with. Safe to re-run:
# it does nothing when everything is already there.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libcli11-dev libgtest-dev libgmock-dev nlohmann-json3-dev
  libopenblas-dev libdnnl-dev zlib1g-dev gnuplot-nox
)
# Optional extras for the dataset and the PyTorch comparisons; never needed to build.
extras=(dataset-fashion-mnist)

missing=()
for p in "${packages[@]}" "${extras[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "janus: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
