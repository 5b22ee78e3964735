#!/usr/bin/env bash
# The one-shot GPU check: everything Janus can learn about its CUDA backend on
# a machine with an NVIDIA GPU, in one command, into one report file.
#
#   bash scripts/gpu_deps.sh          # here, on a Debian machine with apt: fills .gpu-deps/
#   bash scripts/gpu_check.sh         # on the GPU machine (nvcc, CMake, cuDNN, PyTorch; no network)
#
# Steps (each under its own time limit, so that one slow step cannot eat the
# others; the whole check is sized for under 9 minutes on an H200 machine):
#   1. the machine: nvidia-smi, nvcc, compilers, PyTorch
#   2. Janus's dependencies unpacked from .gpu-deps/debs into BUILD/deps-root
#   3. the nvcc build for the GPU's own architecture (sm_90 on H100/H200)
#   4. `janus info`, then the whole test suite on the GPU with
#      JANUS_REQUIRE_CUDA=1 (a CUDA-unavailable skip is a failure)
#   5. compute-sanitizer memcheck and racecheck over the parity tests of the
#      convolution, BatchNorm, pooling and reduction kernels (implicit GEMM)
#   6. `janus bench` on the GPU with each convolution path (cuDNN, implicit GEMM),
#      and bench_igemm_variants (the implicit-GEMM kernel's variants per pass)
#   7. a short CIFAR-10 training on the GPU (the default model and ResNet-9),
#      and the default model again with --cuda-graph (the step as a CUDA
#      graph) and in bf16 (--precision bf16), each timed
#   8. the same networks in PyTorch on the same GPU (ResNet-9 of
#      configs/cifar10_resnet.json included): Janus / PyTorch throughput
# The report (markdown) goes to $JANUS_GPU_REPORT, default gpu_check_report.md
# at the repository root, and is copied into $OUT when that is set. Exit
# status: 0 when every step passed, 1 otherwise (the report says which).
#
# Rehearsal without a GPU (JANUS_GPU_CHECK_REHEARSAL=1; what
# `scripts/fresh_machine_check.sh --gpu-check` runs in a bare Debian root with
# only the GPU machine's tools): steps 1-3 exactly as on the GPU machine (the
# machine's tools, the carried packages unpacked, the nvcc build for sm_90),
# without the time limits, which are sized for a 16-core machine; then
# `janus info`, which must name the CUDA runtime's error. The steps that need
# a GPU (4 onwards) are listed in the report as not run. Exit status 0 when
# all of that passed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
deps=$root/.gpu-deps
build=${JANUS_GPU_BUILD:-$root/build/gpu-check}
report=${JANUS_GPU_REPORT:-$root/gpu_check_report.md}
logs=$build/check-logs
# The packages are unpacked inside the build folder, never into .gpu-deps (which travels).
droot=$build/deps-root
mkdir -p "$build" "$logs"
jobs=$(nproc)
start=$(date +%s)
failed=()

say() { echo "$*" | tee -a "$report"; }
section() { say ""; say "## $* ($(( $(date +%s) - start )) s)"; }
# step NAME LIMIT_S CMD...: runs CMD under a time limit, its output in $logs/NAME.log;
# the report gets the status and the log's last lines.
# The whole check keeps to $JANUS_GPU_DEADLINE seconds (default 540): a step
# gets at most what is left, and none starts with under 15 s left.
deadline=$(( start + ${JANUS_GPU_DEADLINE:-540} ))
rehearsal=${JANUS_GPU_CHECK_REHEARSAL:-0}
step() {
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s) rc
  local left=$(( deadline - t0 ))
  if [ "$rehearsal" = 1 ]; then limit=86400; left=86400; fi
  if [ $left -lt 15 ]; then say "- \`$name\`: NOT RUN (the check's time is spent)"; failed+=("$name"); return 1; fi
  [ $limit -gt $left ] && limit=$left
  timeout --kill-after=10 "$limit" "$@" >"$logs/$name.log" 2>&1
  rc=$?
  local dt=$(( $(date +%s) - t0 ))
  if [ $rc -eq 0 ]; then say "- \`$name\`: ok (${dt} s)"; else
    [ $rc -eq 124 ] && say "- \`$name\`: TIMED OUT after ${limit} s" || say "- \`$name\`: FAILED, exit $rc (${dt} s)"
    failed+=("$name")
  fi
  { echo '```'; tail -n "${TAIL_LINES:-25}" "$logs/$name.log"; echo '```'; } >>"$report"
  return $rc
}
finish() {
  section "Summary"
  if [ ${#failed[@]} -eq 0 ]; then say "All steps passed."; else say "Failed steps: ${failed[*]}"; fi
  say "Total wall time: $(( $(date +%s) - start )) s"
  if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
    cp "$report" "$OUT/" 2>/dev/null
    tar -czf "$OUT/gpu_check_logs.tar.gz" -C "$build" check-logs 2>/dev/null
  fi
  [ ${#failed[@]} -eq 0 ]
}

: >"$report"
say "# Janus GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

# ---- 1. the machine ----------------------------------------------------------
section "1. Machine"
[ "$rehearsal" = 1 ] && say "REHEARSAL without a GPU (JANUS_GPU_CHECK_REHEARSAL=1): steps 1-3 and janus info only, no time limits"
export JANUS_GPU_CHECK_REHEARSAL=$rehearsal
TAIL_LINES=40 step machine 60 bash -c '
  if [ "$JANUS_GPU_CHECK_REHEARSAL" = 1 ]; then echo "no GPU: a rehearsal"
  else nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; fi
  command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
  nvcc --version | tail -n 2; cmake --version | head -n 1; ${CXX:-g++} --version | head -n 1
  echo "cores: $(nproc)"
  [ "$JANUS_GPU_CHECK_REHEARSAL" = 1 ] && exit 0
  python3 -c "import torch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"cudnn\", torch.backends.cudnn.version(), torch.cuda.get_device_name(0))"'
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
arch=${arch:-90}
say "CUDA architecture built for: sm_$arch"

# ---- 2. dependencies ---------------------------------------------------------
section "2. Dependencies from .gpu-deps"
if ! ls "$deps"/debs/*.deb >/dev/null 2>&1; then
  say "no .gpu-deps/debs: run \`bash scripts/gpu_deps.sh\` on a Debian machine first"
  failed+=(deps); finish; exit 1
fi
unpack() {
  rm -rf "$droot" && mkdir -p "$droot"
  for f in "$deps"/debs/*.deb; do
    if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$f" "$droot"
    else (d=$(mktemp -d) && cd "$d" && ar x "$f" && tar -xf data.tar.* -C "$droot" && rm -rf "$d"); fi
  done
  # The symlinks Debian's alternatives system would make for OpenBLAS.
  local lib=$droot/usr/lib/x86_64-linux-gnu
  ln -sf openblas-pthread/libopenblas.so.0 "$lib/libopenblas.so.0"
  ln -sf openblas-pthread/libblas.so.3 "$lib/libblas.so.3"
  ln -sf openblas-pthread/liblapack.so.3 "$lib/liblapack.so.3"
  ls "$droot/usr/lib/x86_64-linux-gnu" | head -n 40
}
export deps droot; export -f unpack
step unpack 120 bash -c unpack || { finish; exit 1; }
lib=$droot/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$lib:$lib/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# cuDNN: beside the toolkit, in the system, or in PyTorch's pip wheel.
cudnn_root=${CUDNN_ROOT:-}
if [ -z "$cudnn_root" ]; then
  for d in /usr/local/cuda /usr /usr/local/cudnn; do
    if [ -f "$d/include/cudnn.h" ] || [ -f "$d/include/x86_64-linux-gnu/cudnn.h" ]; then cudnn_root=$d; break; fi
  done
fi
if [ -z "$cudnn_root" ]; then
  cudnn_root=$(python3 -c "import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__) if nvidia.cudnn.__file__ else list(nvidia.cudnn.__path__)[0])" 2>/dev/null || true)
fi
if [ -n "$cudnn_root" ] && [ ! -e "$cudnn_root/lib/libcudnn.so" ] && ls "$cudnn_root"/lib/libcudnn.so.* >/dev/null 2>&1; then
  # pip's wheel ships only libcudnn.so.9: give the linker an unversioned name.
  mkdir -p "$build/cudnn/lib"
  ln -sf "$(ls "$cudnn_root"/lib/libcudnn.so.* | head -n 1)" "$build/cudnn/lib/libcudnn.so"
  ln -sfn "$cudnn_root/include" "$build/cudnn/include"
  export LD_LIBRARY_PATH=$cudnn_root/lib:$LD_LIBRARY_PATH
  cudnn_root=$build/cudnn
fi
say "cuDNN prefix: ${cudnn_root:-not found}"

# ---- 3. the build ------------------------------------------------------------
section "3. nvcc build (JANUS_CUDA=ON, sm_$arch)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
step configure 180 cmake -S "$root" -B "$build" "${generator[@]}" -DJANUS_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" -DJANUS_CUDNN_ROOT="$cudnn_root" \
  -DCMAKE_PREFIX_PATH="$droot/usr;$lib/cmake" -DCMAKE_LIBRARY_PATH="$lib;$lib/openblas-pthread" \
  -DCMAKE_INCLUDE_PATH="$droot/usr/include;$droot/usr/include/x86_64-linux-gnu" \
  -DBLAS_LIBRARIES="$lib/openblas-pthread/libopenblas.so" \
  -DOpenCL_LIBRARY="$lib/libOpenCL.so" -DOpenCL_INCLUDE_DIR="$droot/usr/include" \
  || { finish; exit 1; }
step build 270 cmake --build "$build" -j"$jobs" || { finish; exit 1; }
janus=$build/janus

# ---- 4. the suite on the GPU -------------------------------------------------
if [ "$rehearsal" = 1 ]; then
  section "4. janus info without a GPU (rehearsal)"
  # With no GPU, info must say that no CUDA device is usable and why (the
  # runtime's error), and with JANUS_REQUIRE_CUDA=1 refuse the CPU fallback:
  # what the GPU machine relies on to turn silent skips into failures.
  JANUS_REQUIRE_CUDA=1 "$build/janus" info >"$logs/info.log" 2>&1; info_rc=$?
  { echo '```'; tail -n 25 "$logs/info.log"; echo '```'; } >>"$report"
  if grep -q "no device usable: ." "$logs/info.log" && grep -q "unavailable: JANUS_REQUIRE_CUDA" "$logs/info.log"; then
    say "- \`info\`: ok (exit $info_rc; no device usable, the runtime's error named, no CPU fallback)"
  else say "- \`info\`: FAILED (exit $info_rc; without a GPU it must name the CUDA error and refuse the CPU fallback)"; failed+=(info); fi
  say "- not run in a rehearsal (they need a GPU): the suite on the GPU, compute-sanitizer, janus bench, training, PyTorch"
  finish; exit
fi
section "4. janus info and the whole suite on the GPU (JANUS_REQUIRE_CUDA=1)"
export JANUS_REQUIRE_CUDA=1
step info 30 "$janus" info
OMP_NUM_THREADS=2 JANUS_NUM_THREADS=2 TAIL_LINES=60 step ctest 180 ctest --test-dir "$build" -j"$jobs" --output-on-failure --timeout 170
grep -E "tests passed|Skipped|Failed|\*\*\*" "$logs/ctest.log" | head -n 60 >"$logs/ctest-summary.log"
say "- ctest summary: $(grep -E 'tests passed' "$logs/ctest.log" | tail -n 1)"
say "- skipped: $(grep -E '\(Skipped\)' "$logs/ctest.log" | sed 's/^[[:space:]]*[0-9]* - //; s/ (Skipped).*//' | tr '\n' ' ')"
say "- failed: $(grep -E '\(Failed\)|\(Timeout\)|\(SEGFAULT\)|Exception' "$logs/ctest.log" | grep -v Passed | sed 's/^[[:space:]]*[0-9]* - //' | tr '\n' ' ')"

# ---- 5. compute-sanitizer ----------------------------------------------------
section "5. compute-sanitizer over every kernel parity test (implicit GEMM)"
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ -n "$sanitizer" ]; then
  # Every op of test_parity_ops with Janus's own convolution kernel (cuDNN's
  # kernels are NVIDIA's to check); the whole-model parity tests are too slow
  # under the sanitizer for this check's time.
  export JANUS_CONV_ALGO=implicit_gemm
  for tool in memcheck racecheck; do
    TAIL_LINES=12 step "$tool" 90 "$sanitizer" --tool "$tool" --error-exitcode 3 "$build/tests/test_parity_ops" --gtest_brief=1
  done
  unset JANUS_CONV_ALGO
else
  say "compute-sanitizer not found: skipped"; failed+=(sanitizer)
fi

# ---- 6. janus bench ----------------------------------------------------------
section "6. janus bench on the GPU, each convolution path"
for algo in cudnn implicit_gemm; do
  JANUS_CUDNN_LOG=1 JANUS_CONV_ALGO=$algo TAIL_LINES=45 step "bench-$algo" 45 "$janus" bench --device cuda \
    --model-config configs/cifar10.json --config bench/configs/spec_cnn.json --batch 512 \
    --iters 20 --repeats 3 --warmup 3 --json "$logs/bench-$algo.json"
done
# The implicit-GEMM kernel's variants pass by pass: the first kernel (v1), fp32, tf32, bf16.
TAIL_LINES=80 step igemm-variants 60 "$build/bench_igemm_variants" --batch 512 --reps 20

# ---- 7. short training -------------------------------------------------------
section "7. short CIFAR-10 training on the GPU (default model 3 epochs, ResNet-9 4 epochs, of 5000 images)"
python3 - "$root/configs/cifar10.json" "$build/cifar10_gpu_check.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["name"] = "cifar10_gpu_check"
c["dataset"]["train"] = [1]       # .gpu-deps/data holds 5000 images of batch 1
c["dataset"]["validation"] = [5]  # and 1000 of batch 5
c["epochs"] = 3
json.dump(c, open(sys.argv[2], "w"), indent=2)
EOF
step train 60 "$janus" train --config "$build/cifar10_gpu_check.json" --device cuda --data-dir "$deps/data" \
  --experiments-dir "$build/experiments" --overwrite --quiet
# The same training with the step recorded and replayed as a CUDA graph
# (--cuda-graph, not yet run on a GPU before this check): the step times above
# compare the two, and the final epoch lines should agree (bit-identical on
# the simulator; on a GPU the same kernels run, so they should here too).
step train-cuda-graph 60 "$janus" train --config "$build/cifar10_gpu_check.json" --device cuda --data-dir "$deps/data" \
  --experiments-dir "$build/experiments" --name cifar10_gpu_check_graph --cuda-graph --overwrite --quiet
say "- last epoch without / with --cuda-graph:"
{ echo '```'; grep -h '^epoch' "$logs/train.log" | tail -n 1; grep -h '^epoch' "$logs/train-cuda-graph.log" | tail -n 1
  grep -h 'cuda-graph:' "$logs/train-cuda-graph.log"; echo '```'; } >>"$report" 2>/dev/null
# The same training in bf16 (issue 14: bf16 activations and bf16 tensor cores,
# never run on a GPU before this check): its step time against the fp32 run's,
# and its final epoch line (close to fp32's, not equal).
step train-bf16 45 "$janus" train --config "$build/cifar10_gpu_check.json" --device cuda --data-dir "$deps/data" \
  --experiments-dir "$build/experiments" --name cifar10_gpu_check_bf16 --precision bf16 --overwrite --quiet
say "- last epoch fp32 / bf16:"
{ echo '```'; grep -h '^epoch' "$logs/train.log" | tail -n 1; grep -h '^epoch' "$logs/train-bf16.log" | tail -n 1
  echo '```'; } >>"$report" 2>/dev/null
step evaluate 20 "$janus" evaluate --run "$build/experiments/cifar10_gpu_check" --device cuda --data-dir "$deps/data"
# The residual network (issue 13's ResNet-9) on the same 5000 images: it proves
# the graph (add nodes, fan-out gradients) trains on the GPU and gives its
# time per epoch; the accuracy of the full recipe needs all 50,000 images,
# which do not fit the transfer to the GPU machine.
python3 - "$root/configs/cifar10_resnet.json" "$build/cifar10_resnet_gpu_check.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["name"] = "cifar10_resnet_gpu_check"
c["dataset"]["train"] = [1]
c["dataset"]["validation"] = [5]
c["epochs"] = 4
json.dump(c, open(sys.argv[2], "w"), indent=2)
EOF
step train-resnet9 60 "$janus" train --config "$build/cifar10_resnet_gpu_check.json" --device cuda \
  --data-dir "$deps/data" --experiments-dir "$build/experiments" --overwrite

# ---- 8. PyTorch on the same GPU ----------------------------------------------
section "8. Janus / PyTorch throughput on the same GPU (SPEC CNN, default CIFAR model, ResNet-9)"
TAIL_LINES=40 step compare-pytorch 110 python3 bench/compare_pytorch.py --device cuda --janus "$janus" \
  --only spec_cnn,cifar10,cifar10_resnet --batch 512 --iters 20 --repeats 3 --warmup 3 --rounds 1 --no-rss

finish
