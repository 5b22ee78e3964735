# The preamble the end-to-end shell tests of the `janus` tool share. Sourced,
# not run:
#   source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
#   cli_test_setup NAME PATH/TO/janus SOURCE_DIR
# (scripts with other arguments call cli_work_dir NAME alone).
#
# cli_test_setup sets JANUS and SRC (absolute paths), DATA (the datasets
# bundled with the sources), CONFIG (the Iris config), makes WORK and enters it.
# cli_work_dir NAME makes WORK, a fresh temporary directory removed when the
# script exits, without entering it.
# FAILED is 0 until fail is called; a script ends with `exit $FAILED`.
#   fail MESSAGE            counts a failure (stderr), the script goes on
#   ok MESSAGE              reports a passed check
#   skip_without TOOL... -- WHY
#                           exits 77 when a tool is missing: CTest's
#                           SKIP_RETURN_CODE for these tests (apps/ and
#                           tests/CMakeLists.txt), so the test is reported
#                           skipped, never passed
#   expect_ok DESCRIPTION -- command...
#                           the command exits 0 (else its output is shown);
#                           stdout and stderr are left in $WORK/out.txt, err.txt
#   expect_fail DESCRIPTION PATTERN -- command...
#                           non-zero exit, not a signal, and stderr matches
#                           PATTERN (grep)
#   cuda_device_present     whether `$JANUS info` lists cuda:0 (a GPU or the
#                           simulator); where it does not, a script runs only
#                           its CPU checks, except with JANUS_REQUIRE_CUDA=1
#                           (the GPU check; scripts/test.sh on a CUDA build),
#                           where that is a failure, named with info's reason
set -u

cli_work_dir() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/janus-$1.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
}

cli_test_setup() {
  JANUS=$(realpath "$2")
  SRC=$(realpath "$3")
  DATA="$SRC/datasets"
  CONFIG="$SRC/configs/iris.json"
  cli_work_dir "$1"
  cd "$WORK" || exit 1
}

FAILED=0
fail() { echo "FAIL: $*" >&2; FAILED=1; }
ok() { echo "ok: $*"; }

cuda_device_present() {
  "$JANUS" info 2> /dev/null | grep -q '^  cuda:0' && return 0
  if [ "${JANUS_REQUIRE_CUDA:-0}" = 1 ]; then
    fail "JANUS_REQUIRE_CUDA=1, but janus info lists no cuda:0: $("$JANUS" info 2>&1 | grep -m1 -E 'no device usable|unavailable')"
  fi
  return 1
}

skip_without() {
  local tools=()
  while [ "$1" != "--" ]; do tools+=("$1"); shift; done
  shift
  local tool
  for tool in "${tools[@]}"; do
    command -v "$tool" > /dev/null || { echo "SKIP: $tool is needed ($*); scripts/install_deps.sh installs it"; exit 77; }
  done
}

expect_ok() {
  local what=$1; shift; shift
  if "$@" > "$WORK/out.txt" 2> "$WORK/err.txt"; then ok "$what"; else
    fail "$what (exit $?)"; cat "$WORK/out.txt" "$WORK/err.txt" >&2; fi
}

expect_fail() {
  local what=$1 pattern=$2; shift 3
  "$@" > "$WORK/out.txt" 2> "$WORK/err.txt"
  local rc=$?
  if [ $rc -eq 0 ]; then fail "$what: exit 0"; return; fi
  if [ $rc -ge 128 ]; then fail "$what: killed by a signal (exit $rc)"; return; fi
  if ! grep -q -- "$pattern" "$WORK/err.txt"; then fail "$what: stderr lacks '$pattern'"; cat "$WORK/err.txt" >&2; return; fi
  ok "$what (exit $rc: $(head -n 1 "$WORK/err.txt"))"
}
