#!/usr/bin/env bash
# End-to-end test of the janus command-line tool (CTest label "cli").
#   tests/test_cli.sh PATH/TO/janus SOURCE_DIR
# Runs in a temporary directory: info, a smoke training run on the bundled
# Iris data, evaluate, predict (CSV format), exact resume, and bad usage
# (every failure must exit non-zero with a "janus: error:" message).
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
cli_test_setup cli-test "$1" "$2"
skip_without python3 gnuplot -- "python3: checkpoints and configs; gnuplot: a run's plots"

# ---- info and help -------------------------------------------------------------
expect_ok "info" -- "$JANUS" info
grep -q "^janus " out.txt || fail "info prints no version"
grep -q "cpu" out.txt || fail "info lists no cpu device"
for sub in train evaluate predict info; do expect_ok "$sub --help" -- "$JANUS" "$sub" --help; done

# ---- smoke training run --------------------------------------------------------
expect_ok "train iris (2 epochs)" -- "$JANUS" train --config "$CONFIG" --epochs 2 --name smoke --overwrite \
  --data-dir "$DATA" --experiments-dir exp -q
[ "$(grep -c '^epoch ' out.txt)" -eq 2 ] || fail "expected 2 epoch summary lines on stdout"
for f in config.json hyperparameters.json metrics.csv last.safetensors best.safetensors; do
  [ -s "exp/smoke/$f" ] || fail "exp/smoke/$f missing"
done
for f in loss.png accuracy.png; do [ -s "exp/smoke/$f" ] || fail "exp/smoke/$f missing"; done
[ "$(head -n 1 exp/smoke/metrics.csv)" = "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,partial" ] ||
  fail "metrics.csv header"
[ "$(wc -l < exp/smoke/metrics.csv)" -eq 3 ] || fail "metrics.csv should have 2 rows"

# ---- a graph model through the whole tool ---------------------------------------
# A residual block with BatchNorm and fan-out: every per-layer walk the trainer
# does (shape checks before training included) must follow "inputs".
python3 - "$CONFIG" residual.json <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["name"] = "residual"
c["model"]["layers"] = [
    {"type": "fully_connected", "name": "stem", "n_out": 16},
    {"type": "batchnorm", "name": "stem_bn"},
    {"type": "relu", "name": "stem_relu"},
    {"type": "fully_connected", "name": "branch", "n_out": 16},
    {"type": "batchnorm", "name": "branch_bn"},
    {"type": "relu", "name": "branch_relu"},
    {"type": "add", "name": "sum", "inputs": ["stem_relu", "branch_relu"]},
    {"type": "fully_connected", "name": "classifier", "n_out": 3, "activation": "softmax"}]
json.dump(c, open(sys.argv[2], "w"))
EOF
expect_ok "train a residual graph model" -- "$JANUS" train --config residual.json --epochs 2 --overwrite \
  --data-dir "$DATA" --experiments-dir exp -q
[ "$(grep -c '^epoch ' out.txt)" -eq 2 ] || fail "residual model: expected 2 epoch summary lines"
expect_ok "evaluate the residual model" -- "$JANUS" evaluate --run exp/residual --data-dir "$DATA"
grep -q "accuracy" out.txt || fail "evaluate of the residual model prints no accuracy"

expect_fail "run directory exists" "already exists" -- "$JANUS" train --config "$CONFIG" --epochs 2 --name smoke \
  --data-dir "$DATA" --experiments-dir exp -q

# ---- evaluate and predict ------------------------------------------------------
expect_ok "evaluate (validation split)" -- "$JANUS" evaluate --run exp/smoke --data-dir "$DATA"
grep -q "accuracy" out.txt || fail "evaluate prints no accuracy"
grep -q "confusion matrix" out.txt || fail "evaluate prints no confusion matrix"
expect_ok "evaluate --data" -- "$JANUS" evaluate --run exp/smoke --data "$DATA/iris.csv" --checkpoint last --json ev.json
grep -q "^samples   150" out.txt || fail "evaluate on iris.csv should see 150 samples"
[ -s ev.json ] || fail "evaluate --json wrote nothing"
# "best" falls back to last.safetensors and says so (a run that validated no epoch).
cp -r exp/smoke exp/nobest && rm exp/nobest/best.safetensors
expect_ok "evaluate a run without best.safetensors" -- "$JANUS" evaluate --run exp/nobest --data-dir "$DATA"
grep -q "note: .*no best.safetensors.*using last.safetensors" err.txt || fail "evaluate does not say best fell back to last"
# A checkpoint given by path without the run's standardizer is refused (its
# inputs would reach the model unstandardised), not evaluated into nonsense.
python3 - exp/smoke/last.safetensors foreign.safetensors << 'EOF' || fail "could not write the foreign checkpoint"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
assert "standardizer" in header["__metadata__"], "the run's checkpoint carries no standardizer"
del header["__metadata__"]["standardizer"]
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(h)) + h + raw[8 + n:])
EOF
expect_fail "evaluate a checkpoint without the run's standardizer" "no 'standardizer' metadata" -- \
  "$JANUS" evaluate --run exp/smoke --checkpoint foreign.safetensors --data-dir "$DATA"
expect_ok "evaluate the run's own checkpoint by path" -- "$JANUS" evaluate --run exp/smoke \
  --checkpoint exp/smoke/last.safetensors --data-dir "$DATA"

expect_ok "predict" -- "$JANUS" predict --run exp/smoke --data "$DATA/iris.csv" --out preds.csv
[ "$(head -n 1 preds.csv)" = "Id,Category" ] || fail "predictions.csv header"
[ "$(wc -l < preds.csv)" -eq 151 ] || fail "predictions.csv should have 150 rows"
awk -F, 'NR > 1 && ($1 != NR - 2 || $2 !~ /^[0-2]$/) { bad = 1 } END { exit bad }' preds.csv ||
  fail "predictions.csv rows must be 'Id,Category' with Id from 0 and Category 0..2"

# ---- resume reproduces an uninterrupted run ------------------------------------
"$JANUS" train --config "$CONFIG" --epochs 4 --name full --data-dir "$DATA" --experiments-dir exp -q > /dev/null 2>&1 ||
  fail "train 4 epochs"
"$JANUS" train --config "$CONFIG" --epochs 4 --name part --max-steps 9 --data-dir "$DATA" --experiments-dir exp -q \
  > /dev/null 2>&1 || fail "train with --max-steps"
# 8 steps per epoch: step 9 is inside epoch 2, whose row says it is partial (column 8)
[ "$(cut -d, -f1,8 exp/part/metrics.csv | tr '\n' ' ')" = "epoch,partial 1,0 2,1 " ] &&
  ok "--max-steps inside epoch 2: metrics.csv marks that row partial" ||
  { fail "--max-steps: metrics.csv does not mark the partial epoch"; cat exp/part/metrics.csv >&2; }
# stopped inside epoch 1: its one row is partial; the plots (complete epochs only) wait, without a warning
expect_ok "--max-steps inside epoch 1" -- "$JANUS" train --config "$CONFIG" --epochs 4 --name part1 --max-steps 3 \
  --data-dir "$DATA" --experiments-dir exp -q
[ "$(cut -d, -f1,8 exp/part1/metrics.csv | tr '\n' ' ')" = "epoch,partial 1,1 " ] && ! grep -q warning err.txt &&
  [ ! -e exp/part1/loss.png ] && ok "--max-steps inside epoch 1: a partial row, no plot, no warning" ||
  { fail "--max-steps inside epoch 1: metrics.csv or plots"; cat exp/part1/metrics.csv err.txt >&2; }
expect_ok "resume" -- "$JANUS" train --name part --resume --data-dir "$DATA" --experiments-dir exp -q
# every column but the wall time (7), "partial" included: the resumed epoch 2 is complete
if diff <(cut -d, -f1-6,8 exp/full/metrics.csv) <(cut -d, -f1-6,8 exp/part/metrics.csv) > /dev/null; then
  ok "resumed metrics equal the uninterrupted run's"
else
  fail "resumed metrics differ"; diff exp/full/metrics.csv exp/part/metrics.csv >&2
fi
if python3 - exp/full/last.safetensors exp/part/last.safetensors << 'EOF'; then
import json, struct, sys
def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    d = b[8 + n:]
    return {k: d[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
sys.exit(0 if tensors(sys.argv[1]) == tensors(sys.argv[2]) else 1)
EOF
  ok "resumed weights equal the uninterrupted run's"
else
  fail "resumed weights differ"
fi

# ---- bad usage -----------------------------------------------------------------
python3 - "$CONFIG" << 'EOF' || fail "writing badkey.json"
import json, sys
c = json.load(open(sys.argv[1]))
c["batch_sise"] = 3
json.dump(c, open("badkey.json", "w"))
EOF
expect_fail "unknown config key" "unknown key 'batch_sise'" -- "$JANUS" train --config badkey.json --name x \
  --data-dir "$DATA" --experiments-dir exp
grep -q "badkey.json" err.txt || fail "unknown-key message does not name the file"
expect_fail "missing data dir" "(from --data-dir): no such directory" -- "$JANUS" train --config "$CONFIG" --name x \
  --data-dir "$WORK/nonexistent" --experiments-dir exp
expect_fail "unknown device" "unknown device" -- "$JANUS" train --config "$CONFIG" --name x --device tpu \
  --data-dir "$DATA" --experiments-dir exp
expect_fail "missing config file" "cannot open" -- "$JANUS" train --config nope.json
expect_fail "evaluate a missing run" "does not exist" -- "$JANUS" evaluate --run exp/nope
expect_fail "predict a missing file" "no such file" -- "$JANUS" predict --run exp/smoke --data nope.csv
expect_fail "no subcommand" "subcommand" -- "$JANUS"
expect_fail "unknown flag" "not expected" -- "$JANUS" train --bogus
[ -d exp/x ] && fail "a failed run left exp/x behind"

exit $FAILED
