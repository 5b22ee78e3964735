#!/usr/bin/env bash
# End-to-end test of --precision (CTest label "cli"):
#   tests/test_cli_precision.sh PATH/TO/janus SOURCE_DIR
# On Iris (dense layers: the bf16 GEMMs): a bf16 run differs from the fp32
# run (bf16 is really used), resumes bit-exactly, its checkpoint holds fp32
# weights that evaluate in fp32 and in bf16; on a CUDA device (GPU or
# simulator) tf32 and bf16 train and change the weights, bf16 with bfloat16
# activations that evaluate and predict; tf32 is refused on
# the CPU and an unknown precision is refused in a config, each with a clear
# message.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
cli_test_setup precision-test "$1" "$2"
train() { "$JANUS" train --config "$CONFIG" --device cpu --epochs 4 --data-dir "$DATA" --experiments-dir exp -q "$@" > out.txt 2> err.txt; }
# The tensors of safetensors files, byte for byte, and their dtypes.
tensors() { python3 "$SRC/tests/safetensors_tensors.py" "$@"; }

train --name fp32 || { fail "fp32 training"; cat err.txt >&2; }
train --name bf16 --precision bf16 || { fail "bf16 training"; cat err.txt >&2; }
grep -q "precision bf16" out.txt || fail "bf16 training does not say its precision"
grep -q '"precision": "bf16"' exp/bf16/config.json && ok "config.json records precision bf16" ||
  fail "config.json lacks \"precision\": \"bf16\""
if tensors differ exp/fp32/last.safetensors exp/bf16/last.safetensors; then
  ok "bf16 weights differ from fp32 weights (bf16 arithmetic was used)"
else
  fail "bf16 run has the fp32 run's weights"
fi
tensors f32 exp/bf16/last.safetensors && ok "bf16 checkpoint holds F32 master weights" ||
  fail "bf16 checkpoint holds non-F32 tensors"

# Resume: interrupted after 9 steps, continued from the config.json's precision.
train --name part --precision bf16 --max-steps 9 || { fail "bf16 --max-steps"; cat err.txt >&2; }
"$JANUS" train --name part --resume --data-dir "$DATA" --experiments-dir exp -q > out.txt 2> err.txt ||
  { fail "bf16 resume"; cat err.txt >&2; }
if diff <(cut -d, -f1-6 exp/bf16/metrics.csv) <(cut -d, -f1-6 exp/part/metrics.csv) > /dev/null &&
  tensors equal exp/bf16/last.safetensors exp/part/last.safetensors; then
  ok "resumed bf16 run equals the uninterrupted one (metrics and weights)"
else
  fail "resumed bf16 run differs"
fi

# Evaluation of the bf16 run in fp32 (the default) and in bf16.
"$JANUS" evaluate --run exp/bf16 --device cpu --data "$DATA/iris.csv" --checkpoint last > fp32.txt 2> err.txt ||
  { fail "fp32 evaluation of the bf16 run"; cat err.txt >&2; }
grep -q "precision  fp32" fp32.txt && grep -q "^samples   150" fp32.txt && ok "bf16 run evaluates in fp32" ||
  fail "fp32 evaluation output"
"$JANUS" evaluate --run exp/bf16 --device cpu --data "$DATA/iris.csv" --checkpoint last --precision bf16 > bf16.txt 2> err.txt ||
  { fail "bf16 evaluation"; cat err.txt >&2; }
grep -q "precision  bf16" bf16.txt && ok "bf16 run evaluates in bf16" || fail "bf16 evaluation output"
"$JANUS" predict --run exp/bf16 --device cpu --data "$DATA/iris.csv" --out p.csv --precision bf16 > /dev/null 2> err.txt &&
  [ "$(wc -l < p.csv)" -eq 151 ] && ok "predict --precision bf16" || fail "predict --precision bf16"

# CUDA (a GPU or the simulator): fp32, tf32 and bf16 all train, and the two
# reduced modes change the weights (their arithmetic was used).
if cuda_device_present; then
  # bf16 stores the activations in bfloat16 on CUDA (the run line says so); fp32 and tf32 do not.
  for p in fp32 tf32 bf16; do
    "$JANUS" train --config "$CONFIG" --device cuda --epochs 2 --data-dir "$DATA" --experiments-dir exp -q \
      --name cuda-$p --precision $p > out.txt 2> err.txt || { fail "cuda $p training"; cat err.txt >&2; }
    if grep -q "activations bfloat16" out.txt; then stored=bf16; else stored=fp32; fi
    [ "$stored" = "$([ $p = bf16 ] && echo bf16 || echo fp32)" ] && ok "cuda $p run stores $stored activations" ||
      fail "cuda $p run stores $stored activations"
  done
  for p in tf32 bf16; do
    tensors differ exp/cuda-fp32/last.safetensors exp/cuda-$p/last.safetensors &&
      ok "cuda $p weights differ from cuda fp32 weights" || fail "cuda $p run has the fp32 run's weights"
  done
  tensors f32 exp/cuda-bf16/last.safetensors && ok "cuda bf16 checkpoint holds F32 master weights" ||
    fail "cuda bf16 checkpoint holds non-F32 tensors"
  # --check-numerics sums every layer's (bf16) output.
  "$JANUS" train --config "$CONFIG" --device cuda --epochs 1 --data-dir "$DATA" --experiments-dir exp -q \
    --name cuda-checked --precision bf16 --check-numerics > out.txt 2> err.txt &&
    ok "cuda bf16 training with --check-numerics" || { fail "cuda bf16 --check-numerics"; cat err.txt >&2; }
  # Evaluation and prediction with bf16 activations: float32 outputs to the caller.
  "$JANUS" evaluate --run exp/cuda-bf16 --device cuda --data "$DATA/iris.csv" --checkpoint last --precision bf16 \
    > eval.txt 2> err.txt && grep -q "^samples   150" eval.txt && ok "cuda bf16 evaluation" ||
    { fail "cuda bf16 evaluation"; cat err.txt >&2; }
  "$JANUS" predict --run exp/cuda-bf16 --device cuda --data "$DATA/iris.csv" --out pc.csv --precision bf16 \
    > /dev/null 2> err.txt && [ "$(wc -l < pc.csv)" -eq 151 ] && ok "cuda predict --precision bf16" ||
    { fail "cuda predict --precision bf16"; cat err.txt >&2; }
else
  ok "no CUDA device in this build: CUDA precisions not exercised here"
fi

# Refusals: non-zero exit (not a signal) and a message naming the problem (expect_fail).
expect_fail "tf32 on the CPU" "no TF32 arithmetic" -- "$JANUS" train --config "$CONFIG" --name t --device cpu \
  --precision tf32 --data-dir "$DATA" --experiments-dir exp -q
[ ! -e exp/t/last.safetensors ] || fail "a refused tf32 run wrote a checkpoint"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["precision"]="fp16"; json.dump(c, open("fp16.json","w"))' "$CONFIG"
expect_fail "unknown precision in a config" "precision: unknown precision 'fp16'" -- "$JANUS" train --config fp16.json \
  --name u --data-dir "$DATA" --experiments-dir exp -q
expect_fail "bf16 on cpu:reference" "reference device" -- "$JANUS" evaluate --run exp/bf16 --data "$DATA/iris.csv" \
  --device cpu:reference --precision bf16

exit $FAILED
