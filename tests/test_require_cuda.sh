#!/usr/bin/env bash
# JANUS_REQUIRE_CUDA and the reporting of CUDA runtime errors, on the
# simulator told (JANUS_SIM_DEVICES) to have no device or a driver that is
# older than the runtime:
#   - `janus info` prints the CUDA runtime's error, not just "no device";
#   - a parity test skips with that reason, and fails with JANUS_REQUIRE_CUDA=1;
#   - `janus info` with a device present lists it and the CUDA libraries.
# Usage: test_require_cuda.sh JANUS_BINARY TEST_PARITY_OPS_BINARY
set -uo pipefail
JANUS=$1
PARITY=$2
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset JANUS_REQUIRE_CUDA

JANUS_SIM_DEVICES=cudaErrorInsufficientDriver "$JANUS" info > "$tmp/info.txt" 2>&1 || fail "janus info failed"
grep -q "driver version is insufficient" "$tmp/info.txt" || { cat "$tmp/info.txt"; fail "info hides the driver error"; }
grep -q "cudaErrorInsufficientDriver" "$tmp/info.txt" || { cat "$tmp/info.txt"; fail "info omits the error name"; }

JANUS_SIM_DEVICES=0 "$JANUS" info > "$tmp/info0.txt" 2>&1 || fail "janus info failed with no device"
grep -q "no device usable: .*no CUDA-capable device" "$tmp/info0.txt" || { cat "$tmp/info0.txt"; fail "info: no reason"; }

"$JANUS" info > "$tmp/info1.txt" 2>&1 || fail "janus info failed"
grep -q "cuda:0" "$tmp/info1.txt" || { cat "$tmp/info1.txt"; fail "info lists no cuda:0"; }
grep -q "^  CUDA " "$tmp/info1.txt" || { cat "$tmp/info1.txt"; fail "info prints no CUDA library line"; }

filter=--gtest_filter=Parity.CountCorrect
# Without the requirement: skipped, with the runtime's reason.
JANUS_SIM_DEVICES=cudaErrorInsufficientDriver "$PARITY" $filter > "$tmp/skip.txt" 2>&1 ||
  { cat "$tmp/skip.txt"; fail "the parity test failed instead of skipping"; }
grep -q "SKIPPED" "$tmp/skip.txt" || { cat "$tmp/skip.txt"; fail "the parity test did not skip"; }
grep -q "driver version is insufficient" "$tmp/skip.txt" || { cat "$tmp/skip.txt"; fail "the skip gives no reason"; }

# With it: the same test fails, naming the requirement and the reason.
for setting in 0 cudaErrorInsufficientDriver; do
  if JANUS_REQUIRE_CUDA=1 JANUS_SIM_DEVICES=$setting "$PARITY" $filter > "$tmp/req.txt" 2>&1; then
    cat "$tmp/req.txt"; fail "JANUS_REQUIRE_CUDA=1 with JANUS_SIM_DEVICES=$setting: the test passed"
  fi
  grep -q "JANUS_REQUIRE_CUDA" "$tmp/req.txt" || { cat "$tmp/req.txt"; fail "the failure does not name JANUS_REQUIRE_CUDA"; }
done
# And passes where a device exists.
JANUS_REQUIRE_CUDA=1 "$PARITY" $filter > "$tmp/ok.txt" 2>&1 || { cat "$tmp/ok.txt"; fail "required CUDA, device present: failed"; }
grep -q "SKIPPED" "$tmp/ok.txt" && fail "skipped although a device exists"

# Device "auto" may not fall back to the CPU when CUDA is required.
if JANUS_REQUIRE_CUDA=1 JANUS_SIM_DEVICES=0 "$JANUS" info > "$tmp/auto.txt" 2>&1; then
  grep -q "auto ->        unavailable: JANUS_REQUIRE_CUDA" "$tmp/auto.txt" ||
    { cat "$tmp/auto.txt"; fail "device auto fell back to the CPU although CUDA is required"; }
fi

# The CLI test scripts' CUDA parts (cli_common.sh's cuda_device_present): with
# no device they run only their CPU checks, but with JANUS_REQUIRE_CUDA=1 the
# missing device is a failure that names the requirement, never a pass.
src=$(cd "$(dirname "$0")/.." && pwd)
for script in test_cli_cuda_graph test_cli_precision; do
  if JANUS_REQUIRE_CUDA=1 JANUS_SIM_DEVICES=0 bash "$src/tests/$script.sh" "$JANUS" "$src" > "$tmp/$script.txt" 2>&1; then
    cat "$tmp/$script.txt"; fail "$script passed with JANUS_REQUIRE_CUDA=1 and no CUDA device"
  fi
  grep -q "JANUS_REQUIRE_CUDA=1, but janus info lists no cuda:0" "$tmp/$script.txt" ||
    { cat "$tmp/$script.txt"; fail "$script: the failure does not name JANUS_REQUIRE_CUDA"; }
done
echo "test_require_cuda: all checks passed"
