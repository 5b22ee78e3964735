#!/usr/bin/env bash
# Makes the Python environment some tests need: Debian's python3 and numpy
# (scripts/install_deps.sh) plus the PyPI packages of
# tests/python-requirements.txt (safetensors: Debian 12 does not package it),
# in a virtual environment at DIR. CTest runs this as the fixture test
# setup.python_env with DIR = BUILD/python-env, so the environment belongs to
# the build folder and goes with it.
#   scripts/python_test_env.sh DIR
# The packages are pinned by version and by the SHA-256 of their wheels
# (pip --require-hashes, wheels only: nothing is compiled). The venv sees the
# system's site-packages (--system-site-packages) for numpy. Re-running is
# cheap: an environment made from the same requirements is kept.
# Exit status: 0 ready; 77 (CTest: skipped) when python3, its venv module or
# PyPI is missing, with the reason, and the tests that need the environment
# then skip and say so; 1 on any other failure (a wrong hash, say).
set -uo pipefail
dir=$1
req=$(realpath "$(dirname "$0")/../tests/python-requirements.txt")
# Debian's interpreter, whatever python3 comes first on PATH (a pyenv, say):
# its dist-packages hold python3-numpy.
python=/usr/bin/python3
skip() { echo "SKIP: $*"; exit 77; }

want=$(sha256sum < "$req" | cut -d' ' -f1)
if [ -x "$dir/bin/python3" ] && [ "$(cat "$dir/requirements.sha256" 2> /dev/null)" = "$want" ] &&
   "$dir/bin/python3" -c "import safetensors.numpy" 2> /dev/null; then
  echo "python test environment $dir is ready ($("$dir/bin/python3" -c 'import safetensors; print("safetensors", safetensors.__version__)'))"
  exit 0
fi
[ -x "$python" ] || skip "$python is not installed (Debian: python3; scripts/install_deps.sh installs it)"
"$python" -c "import ensurepip, numpy" 2> /dev/null ||
  skip "$python lacks the venv module or numpy (Debian: python3-venv python3-numpy; scripts/install_deps.sh installs them)"

rm -rf "$dir"
"$python" -m venv --system-site-packages "$dir" || { echo "python_test_env: could not make a venv at $dir"; exit 1; }
if ! "$dir/bin/python3" -m pip install --disable-pip-version-check --no-input --quiet \
       --require-hashes --only-binary=:all: --no-deps -r "$req"; then
  # Tell an unreachable package index (an offline machine: skip) from a real
  # failure (a hash that does not match, say).
  index=${PIP_INDEX_URL:-https://pypi.org/simple}
  rm -rf "$dir"
  if ! why=$("$python" -c "
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1] + '/safetensors/', timeout=20)
except Exception as e:
    print(e); sys.exit(1)" "$index"); then
    skip "the package index $index cannot be reached ($why), so the tests' Python packages ($req) cannot be installed"
  fi
  echo "python_test_env: pip could not install $req into $dir"
  exit 1
fi
"$dir/bin/python3" -c "import safetensors.numpy" || { echo "python_test_env: safetensors does not import in $dir"; exit 1; }
echo "$want" > "$dir/requirements.sha256"
echo "python test environment $dir made ($("$dir/bin/python3" -c 'import safetensors; print("safetensors", safetensors.__version__)'))"
