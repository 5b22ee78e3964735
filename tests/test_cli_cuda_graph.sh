#!/usr/bin/env bash
# End-to-end test of --cuda-graph / "cuda_graph" (CTest label "cli"):
#   tests/test_cli_cuda_graph.sh PATH/TO/janus SOURCE_DIR
# On a CUDA device (GPU or simulator), Iris trained with the training step
# recorded as a CUDA graph ends with the same epoch line and the same weights,
# byte for byte, as without; the smaller last batch of each epoch falls back
# to the uncaptured step, said once on stderr; the config key does what the
# flag does and is written to the run's config.json; on the CPU the option
# only says that the device cannot record graphs. Without a CUDA device (a
# CPU-only build) the CPU and config checks still run; the CUDA ones are
# said not to.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
cli_test_setup cuda-graph-test "$1" "$2"
skip_without python3 -- compares checkpoints
# The tensors of two checkpoints are equal, byte for byte (tests/safetensors_tensors.py).
same_tensors() { python3 "$SRC/tests/safetensors_tensors.py" equal "$@"; }
train() { "$JANUS" train --config "$1" --epochs 3 --data-dir "$DATA" --experiments-dir exp -q "${@:2}"; }

# The CUDA checks: on a GPU or the simulator.
if cuda_device_present; then
  train "$CONFIG" --device cuda --name plain > plain.txt 2> plain_err.txt || { fail "training without graphs"; cat plain_err.txt >&2; }
  train "$CONFIG" --device cuda --name graph --cuda-graph > graph.txt 2> graph_err.txt ||
    { fail "training with --cuda-graph"; cat graph_err.txt >&2; }
  # The epoch lines (the run line names the option, the times differ).
  strip() { grep '^epoch' "$1" | sed -E 's/ [0-9.]+ ?s( |$)/ /g'; }
  if [ -n "$(strip plain.txt)" ] && [ "$(strip plain.txt | tail -1)" = "$(strip graph.txt | tail -1)" ]; then
    ok "same final epoch line with and without --cuda-graph: $(strip graph.txt | tail -1)"
  else
    fail "final epoch lines differ:"; tail -2 plain.txt graph.txt >&2
  fi
  same_tensors exp/plain/last.safetensors exp/graph/last.safetensors &&
    ok "same weights, byte for byte" || fail "the weights differ with --cuda-graph"
  grep -q 'CUDA graphs' graph.txt && ok "the run line names CUDA graphs" || fail "no 'CUDA graphs' on the run line"
  # Iris: 120 training samples at batch 16 leave a last batch of 8 every epoch.
  n=$(grep -c 'cuda-graph: batch' graph_err.txt)
  [ "$n" = 1 ] && ok "the smaller last batch falls back, said once" ||
    { fail "expected one fallback line, got $n"; cat graph_err.txt >&2; }
  grep -q '"cuda_graph": true' exp/graph/config.json && ok "config.json records cuda_graph" ||
    fail "config.json lacks \"cuda_graph\": true"

  # The config key alone does what the flag does.
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["cuda_graph"]=True; json.dump(c, open("graph.json","w"))' "$CONFIG"
  train graph.json --device cuda --name key > key.txt 2> key_err.txt || { fail "training with \"cuda_graph\": true"; cat key_err.txt >&2; }
  same_tensors exp/plain/last.safetensors exp/key/last.safetensors && grep -q 'CUDA graphs' key.txt &&
    ok "\"cuda_graph\": true in the config" || fail "\"cuda_graph\": true did not behave as --cuda-graph"
else
  ok "no CUDA device (GPU or simulator) in this build: the recording itself is not exercised here"
fi

# A non-boolean is refused naming the key.
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["cuda_graph"]="yes"; json.dump(c, open("bad.json","w"))' "$CONFIG"
if train bad.json --device cpu --name bad > /dev/null 2> bad_err.txt; then fail "\"cuda_graph\": \"yes\" accepted"
elif grep -q "'cuda_graph' must be true or false" bad_err.txt; then ok "a non-boolean cuda_graph is refused"
else fail "unclear refusal of \"cuda_graph\": \"yes\""; cat bad_err.txt >&2; fi
# On the CPU: the option is said to do nothing, and training goes on.
train "$CONFIG" --device cpu --name cpu --cuda-graph > cpu.txt 2> cpu_err.txt || { fail "cpu training with --cuda-graph"; cat cpu_err.txt >&2; }
grep -q 'cannot record CUDA graphs' cpu_err.txt && ok "on the CPU the option says it does nothing" ||
  { fail "no note on the CPU"; cat cpu_err.txt >&2; }
exit $FAILED
