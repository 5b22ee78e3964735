#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) and runs each for SECONDS.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (default 60 s, every target)
# Environment:
#   JANUS_FUZZ_BUILD   build directory (default build/fuzz)
#   JANUS_FUZZ_OUT     logs, new corpus entries and crash artifacts (default $JANUS_FUZZ_BUILD/runs)
#   JANUS_FUZZ_JOBS    build parallelism (default nproc)
# The seed corpora in fuzz/corpus/<target>/ are only read; what a run
# discovers goes to $JANUS_FUZZ_OUT/<target>/corpus. A crash, sanitizer
# report, leak, timeout or out-of-memory leaves its input in
# $JANUS_FUZZ_OUT/<target>/ (crash-*, leak-*, timeout-*, oom-*) and makes the
# script exit 1 after every target has run. Reproduce one with
#   $JANUS_FUZZ_BUILD/fuzz/fuzz_<target> $JANUS_FUZZ_OUT/<target>/crash-...
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
SECONDS_EACH=${1:-60}
shift || true
ALL="cifar10 idx iris_csv run_config model_config safetensors"
TARGETS=${*:-$ALL}
BUILD=${JANUS_FUZZ_BUILD:-build/fuzz}
OUT=${JANUS_FUZZ_OUT:-$BUILD/runs}
JOBS=${JANUS_FUZZ_JOBS:-$(nproc)}

CC=${CC:-clang}
CXX=${CXX:-clang++}
command -v "$CXX" > /dev/null || { echo "fuzz.sh: $CXX not found (apt-get install clang)" >&2; exit 2; }
probe=$(mktemp -d)
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe/p.cpp"
if ! "$CXX" -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" 2> "$probe/err"; then
  cat "$probe/err" >&2
  echo "fuzz.sh: $CXX cannot build libFuzzer targets (Debian: apt-get install clang libclang-rt-14-dev libomp-dev)" >&2
  rm -rf "$probe"; exit 2
fi
rm -rf "$probe"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  CC=$CC CXX=$CXX cmake -S . -B "$BUILD" -DJANUS_FUZZ=ON -DJANUS_CUDA=OFF -DJANUS_BUILD_TESTS=OFF \
    -DJANUS_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null || exit 2
fi
build_targets=()
for t in $TARGETS; do build_targets+=(--target "fuzz_$t"); done
cmake --build "$BUILD" -j"$JOBS" "${build_targets[@]}" || exit 2

# ASan: huge allocations throw std::bad_alloc (reported by libFuzzer as a
# crash: a reader must refuse an absurd size before allocating); leaks count.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
max_len() {
  case $1 in
    cifar10) echo 10000 ;;    # three 3073-byte records
    safetensors) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

status=0
summary=()
for t in $TARGETS; do
  bin="$BUILD/fuzz/fuzz_$t"
  dir="$OUT/$t"
  mkdir -p "$dir/corpus"
  dict=()
  case $t in run_config|model_config|safetensors) dict=(-dict="$SRC/fuzz/json.dict") ;; esac
  echo "=== fuzz_$t: ${SECONDS_EACH}s ==="
  "$bin" "$dir/corpus" "$SRC/fuzz/corpus/$t" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" \
    -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$dir/" \
    "${dict[@]}" > "$dir/log.txt" 2>&1
  rc=$?
  final=$(grep -E '^#[0-9]+.*(DONE|cov:)' "$dir/log.txt" | tail -n 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log.txt" | tail -n 1)
  line="fuzz_$t: rc $rc, ${execs:-?} executions, $(echo "$final" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+')"
  if [ $rc -ne 0 ] || ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* > /dev/null 2>&1; then
    status=1
    line="$line  FINDING: see $dir/log.txt"
    grep -m 3 -E 'ERROR|runtime error|terminate|Assertion|==[0-9]+==' "$dir/log.txt" | sed 's/^/    /'
  fi
  echo "$line"
  summary+=("$line")
done
echo
echo "=== fuzz summary (${SECONDS_EACH}s per target) ==="
printf '%s\n' "${summary[@]}"
exit $status
