#!/usr/bin/env bash
# Fresh-machine check: does a commit build, test and train on a bare Debian 12
# that has nothing but what the README asks for? (CI's first stage.)
#
#   scripts/fresh_machine_check.sh [--readme] [COMMIT]
#
# A minimal Debian 12 root is made with `mmdebstrap --variant=minbase` from
# this machine's apt sources (/etc/apt/sources.list.d/debian.sources); a clean
# copy of COMMIT (default HEAD; `git archive`, never the working files) goes
# to /src/janus inside it and the CIFAR-10 batches and Iris CSV to
# /src/shared/data (a copy: ../shared/data as seen from /src/janus), and the
# machine's local CA certificates (see below). Then,
# chrooted, one step after the other:
#   deps           bash scripts/install_deps.sh
#   configure-cpu  cmake -DJANUS_CUDA=OFF, tests on
#   configure-sim  cmake -DJANUS_CUDA=SIM, tests on
#   build-cpu      the whole CPU-only build
#   test-cpu       its whole suite with ctest; a skipped or not-run test fails
#                  the step, as a failed one does
#   train          janus train on CIFAR-10 (configs/cifar10.json, --max-steps 5)
#   info           janus info
#   smoke          scripts/smoke.sh (Iris, Fashion-MNIST, CIFAR-10: train,
#                  evaluate, predict)
# With --readme the steps are the README's quick-start commands instead:
#   readme-train   bash scripts/train.sh --epochs 1 --max-steps 5
#   readme-test    bash scripts/test.sh   (the whole SIM suite: long)
# With --gpu-check, the CPU-side rehearsal of scripts/gpu_check.sh: the root
# gets only what the GPU machine has (CMake, g++, Python; this machine's CUDA
# toolkit at /usr/local/cuda, bind-mounted read-only for that step alone) and
# the checkout's .gpu-deps/ (run scripts/gpu_deps.sh first), none of Janus's
# Debian packages:
#   gpu-tools      apt-get install cmake g++ make python3
#   gpu-check      JANUS_GPU_CHECK_REHEARSAL=1 bash scripts/gpu_check.sh: the
#                  carried packages unpacked, the nvcc build for sm_90 (long on
#                  2 cores: 30-60 min), janus info; the report is printed
#
# The first failing step stops the check, which then names it and exits 1.
# Each step's wall time is printed, and a table of them at the end.
#
# Needs: root, mmdebstrap, network access to the apt sources and to PyPI (the
# tests' Python environment, scripts/python_test_env.sh).
# Environment (all optional):
#   JANUS_FRESH_CACHE  downloaded .deb files kept between runs (default
#                      /var/cache/janus-fresh-machine/debs). Only package files
#                      are reused, never a prepared root: every run installs
#                      from a bare minbase system.
#   JANUS_FRESH_DATA   directory with cifar-10-batches-bin/ and iris.csv
#                      (default: ../shared/data, else ./data)
#   JANUS_FRESH_WORK   where the root is made (default /var/tmp)
#   JANUS_FRESH_JOBS   build and test parallelism (default nproc)
#
# Safety: mmdebstrap mounts /dev, /proc and /sys into the root for the steps
# and unmounts them itself; the root lives in a temporary directory that
# mmdebstrap deletes (its "null" output format). Should anything still be
# mounted under that directory afterwards (mmdebstrap killed, say), the exit
# trap unmounts it and deletes the directory only when nothing is mounted
# below it, and then with `rm -rf --one-file-system`.
set -euo pipefail

# ---- one step, run by mmdebstrap as a customize hook: --step NAME ROOT --------
if [ "${1:-}" = --step ]; then
  name=$2 root=$3
  case $name in
    deps)          cmd='bash scripts/install_deps.sh' ;;
    configure-cpu) cmd='cmake -S . -B build/cpu -DJANUS_CUDA=OFF -DJANUS_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=Release' ;;
    configure-sim) cmd='cmake -S . -B build/sim -DJANUS_CUDA=SIM -DJANUS_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=Release' ;;
    build-cpu)     cmd='cmake --build build/cpu -j"$JOBS"' ;;
    # ctest lists skipped tests as "(Skipped)" and tests it could not start
    # as "(Not Run)"/"(Disabled)": on a fresh machine with every dependency
    # installed there must be none.
    test-cpu)      cmd='ctest --test-dir build/cpu -j"$JOBS" --output-on-failure 2>&1 | tee /tmp/ctest-cpu.log
                        if grep -E "\((Skipped|Not Run|Disabled)\)" /tmp/ctest-cpu.log; then
                          echo "fresh machine: the tests above did not run; their reasons:"
                          grep -h -A1 -E "^SKIP: |: Skipped$" build/cpu/Testing/Temporary/LastTest.log || true
                          exit 1
                        fi' ;;
    train)         cmd='OMP_WAIT_POLICY=passive build/cpu/janus train --config configs/cifar10.json --epochs 1 --max-steps 5 --name fresh
                        test -s experiments/fresh/last.safetensors' ;;
    info)          cmd='build/cpu/janus info' ;;
    smoke)         cmd='bash scripts/smoke.sh build/cpu/janus' ;;
    readme-train)  cmd='bash scripts/train.sh --epochs 1 --max-steps 5' ;;
    readme-test)   cmd='bash scripts/test.sh' ;;
    gpu-tools)     cmd='apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cmake g++ make python3 > /dev/null' ;;
    gpu-check)     cmd='rc=0; JANUS_GPU_CHECK_REHEARSAL=1 bash scripts/gpu_check.sh > /tmp/gpu-check.log 2>&1 || rc=$?
                        cat gpu_check_report.md; exit $rc'
                   # The toolkit, read-only, for this step only; unmounted
                   # whatever happens (a bind mount must never outlive the
                   # step: the root is deleted afterwards).
                   mkdir -p "$root/usr/local/cuda"
                   mount --bind /usr/local/cuda "$root/usr/local/cuda"
                   trap 'umount "$root/usr/local/cuda" || umount -l "$root/usr/local/cuda"' EXIT
                   mount -o remount,bind,ro "$root/usr/local/cuda" ;;
    *) echo "fresh_machine_check: unknown step $name" >&2; exit 2 ;;
  esac
  echo
  echo "=== fresh machine: $name ($(date +%T)) ==="
  start=$(date +%s)
  # A login's environment on a new machine, not this script's.
  rc=0
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb JOBS="$JANUS_FRESH_JOBS" \
    /bin/bash -c "set -euo pipefail; cd /src/janus; $cmd" || rc=$?
  seconds=$(($(date +%s) - start))
  date +%s > "$JANUS_FRESH_CLOCK"
  printf '%-14s %4d s  %s\n' "$name" "$seconds" "$([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)")" >> "$JANUS_FRESH_TIMES"
  if [ $rc -ne 0 ]; then
    echo "$name" > "$JANUS_FRESH_FAILED"
    echo "=== fresh machine: step '$name' FAILED (exit $rc) after $seconds s ==="
    exit 1
  fi
  echo "=== fresh machine: $name ok ($seconds s) ==="
  exit 0
fi

# ---- a time mark, run by mmdebstrap as a customize hook: --mark NAME -----------
# (the time since the previous mark or step: making the minbase root, copying)
if [ "${1:-}" = --mark ]; then
  now=$(date +%s)
  printf '%-14s %4d s  ok\n' "$2" $((now - $(cat "$JANUS_FRESH_CLOCK"))) >> "$JANUS_FRESH_TIMES"
  echo "$now" > "$JANUS_FRESH_CLOCK"
  exit 0
fi

# ---- the check ----------------------------------------------------------------
# All of it in one function, which bash reads whole before running it: the
# script may change on disk while a check runs (a checkout moving on).
main() {
readme=0 gpu=0
if [ "${1:-}" = --readme ]; then readme=1; shift; fi
if [ "${1:-}" = --gpu-check ]; then gpu=1; shift; fi
commit=${1:-HEAD}
local self
self=$(realpath "$0")
cd "$(dirname "$self")/.."
[ "$(id -u)" -eq 0 ] || { echo "fresh_machine_check: needs root (chroot, mounts)" >&2; exit 2; }
command -v mmdebstrap > /dev/null || { echo "fresh_machine_check: needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 2; }
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
[ -f "$sources" ] || { echo "fresh_machine_check: no apt sources at /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list" >&2; exit 2; }
data=${JANUS_FRESH_DATA:-}
if [ -z "$data" ]; then
  for d in ../shared/data ./data; do [ -d "$d/cifar-10-batches-bin" ] && { data=$d; break; }; done
fi
for f in cifar-10-batches-bin/data_batch_1.bin cifar-10-batches-bin/data_batch_5.bin iris.csv; do
  [ -f "${data:-.}/$f" ] || { echo "fresh_machine_check: no $f in ${data:-../shared/data or ./data} (set JANUS_FRESH_DATA)" >&2; exit 2; }
done
sha=$(git rev-parse --verify "$commit^{commit}")
cache=${JANUS_FRESH_CACHE:-/var/cache/janus-fresh-machine/debs}
mkdir -p "$cache"
work=$(mktemp -d "${JANUS_FRESH_WORK:-/var/tmp}/janus-fresh.XXXXXX")

# Unmount whatever is still mounted below $work (deepest first), then delete
# it without ever crossing into another file system.
cleanup() {
  local m left
  for m in $(awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount "$m" 2> /dev/null || umount -l "$m" || true
  done
  left=$(awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo)
  if [ -n "$left" ]; then
    echo "fresh_machine_check: still mounted, so $work is NOT deleted (unmount, then rm -rf --one-file-system):" >&2
    echo "$left" >&2
    return
  fi
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP   # (so that a stopped check cleans up too)

git archive --format=tar --prefix=janus/ "$sha" > "$work/src.tar"
cp "$self" "$work/fresh_machine_check.sh"   # the hooks run this copy, whatever happens to the checkout
export JANUS_FRESH_TIMES=$work/times JANUS_FRESH_FAILED=$work/failed JANUS_FRESH_CLOCK=$work/clock
export JANUS_FRESH_JOBS=${JANUS_FRESH_JOBS:-$(nproc)}
: > "$JANUS_FRESH_TIMES"

if [ $readme -eq 1 ]; then
  steps=(readme-train readme-test)
elif [ $gpu -eq 1 ]; then
  [ -n "$(ls .gpu-deps/debs/*.deb 2>/dev/null)" ] ||
    { echo "fresh_machine_check --gpu-check: no .gpu-deps/debs (run bash scripts/gpu_deps.sh first)" >&2; exit 2; }
  steps=(gpu-tools gpu-check)
else
  steps=(deps configure-cpu configure-sim build-cpu test-cpu train info smoke)
fi
step_hooks=()
for s in "${steps[@]}"; do
  step_hooks+=(--customize-hook="bash '$work/fresh_machine_check.sh' --step $s \"\$1\"")
  # keep the downloaded packages as soon as they are there
  if [ "$s" = deps ] || [ "$s" = readme-train ]; then
    step_hooks+=(--customize-hook="sync-out /var/cache/apt/archives '$cache'"
                 --customize-hook="bash '$work/fresh_machine_check.sh' --mark cache-debs")
  fi
done

echo "fresh machine: commit $sha ($(git log -1 --format=%s "$sha" | cut -c1-72))"
echo "fresh machine: Debian 12 minbase from $sources; packages cached in $cache; data from $data"
start=$(date +%s)
echo "$start" > "$JANUS_FRESH_CLOCK"
rc=0
# TMPDIR: mmdebstrap makes the root in a temporary directory there (null
# format: deleted when it ends) and the exit trap looks there for leftovers.
# The first customize hook empties mmdebstrap's own apt settings
# (00mmdebstrap: no Recommends), which a real fresh machine does not have;
# mmdebstrap deletes the file at the end. The machine's own CA certificates
# (/usr/local/share/ca-certificates: a TLS-inspecting proxy's, say) are site
# network settings like its apt sources and resolv.conf: with them the root
# reaches PyPI over HTTPS as this machine does (Debian's ca-certificates,
# which install_deps.sh installs, adds them to the trust store).
TMPDIR=$work mmdebstrap --variant=minbase --mode=root --format=null \
  --skip=essential/unlink \
  --setup-hook="mkdir -p \"\$1/var/cache/apt/archives\"" \
  --setup-hook="sync-in '$cache' /var/cache/apt/archives/" \
  --customize-hook="bash '$work/fresh_machine_check.sh' --mark minbase-root" \
  --customize-hook=": > \"\$1/etc/apt/apt.conf.d/00mmdebstrap\"" \
  --customize-hook="mkdir -p \"\$1/src/shared\" && tar -x -C \"\$1/src\" -f '$work/src.tar'" \
  --customize-hook="cp -r '$(realpath "$data")' \"\$1/src/shared/data\"" \
  --customize-hook="[ $gpu -eq 0 ] || cp -r '$PWD/.gpu-deps' \"\$1/src/janus/.gpu-deps\"" \
  --customize-hook="[ ! -d /usr/local/share/ca-certificates ] || cp -r /usr/local/share/ca-certificates/. \"\$1/usr/local/share/ca-certificates/\"" \
  --customize-hook="bash '$work/fresh_machine_check.sh' --mark copy-in" \
  "${step_hooks[@]}" \
  bookworm /dev/null "$sources" || rc=$?
end=$(date +%s)
total=$((end - start))
printf '%-14s %4d s  (after the last step: caching, unmounting, deleting the root)\n' wind-down $((end - $(cat "$JANUS_FRESH_CLOCK"))) >> "$JANUS_FRESH_TIMES"

echo
echo "=== fresh machine: step times (whole check $((total / 60)) min $((total % 60)) s, minbase root and copies included) ==="
cat "$JANUS_FRESH_TIMES"
if [ -s "$JANUS_FRESH_FAILED" ]; then
  echo "fresh machine: FAILED at step '$(cat "$JANUS_FRESH_FAILED")' (commit $sha)"
  exit 1
fi
if [ $rc -ne 0 ]; then
  echo "fresh machine: FAILED: mmdebstrap exit $rc before or after the steps (making the minbase root, copying, caching)"
  exit 1
fi
echo "fresh machine: all steps passed (commit $sha)"
}
main "$@"
exit
