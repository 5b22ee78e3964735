#!/usr/bin/env bash
# Crash-safe training runs (CTest label "errors").
#   tests/test_crash_safe.sh PATH/TO/janus SOURCE_DIR
# A run killed with SIGKILL, in the middle of an epoch or in the middle of a
# checkpoint write, then resumed with --resume, must end with exactly the
# parameters, optimizer state, best checkpoint and metrics of an
# uninterrupted run with the same seed; the previous good checkpoint must
# survive a kill during a write, and the leftover temporary file must not
# disturb the resume. The kills use the test-only hooks of
# src/core/test_hooks.hpp (JANUS_TEST_KILL_AT, JANUS_TEST_HOLD_CHECKPOINT_WRITE).
# Nothing here depends on timing: a kill from outside lands while the run is
# held inside a checkpoint write (a handshake through a file), never within a
# window of a fixed length, and every wait polls with a generous deadline.
# A NaN (learning rate 1e30 on a ReLU network) must stop training with a
# message naming the step and, with --check-numerics, the first layer.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
cli_test_setup crash "$1" "$2"
skip_without python3 -- to compare checkpoints

EPOCHS=8   # iris: 90 training samples, batch 16 -> 6 steps per epoch, 48 steps
# configs/iris.json with the numbers this test counts on pinned
python3 -c "
import json, sys
c = json.load(open(sys.argv[1]))
c['batch_size'] = 16
c['dataset'].pop('folds', None); c['dataset'].pop('fold', None)
c['dataset'].update(validation_fraction=0.2, test_fraction=0.2)
c['seed'] = 0
json.dump(c, open('iris.json', 'w'))" "$SRC/configs/iris.json"
CONFIG=$WORK/iris.json
train() { "$JANUS" train --config "$CONFIG" --data-dir "$DATA" --experiments-dir exp -q "$@"; }

# same_run A B: tensors (parameters and optimizer state) of last and best
# checkpoints equal bit for bit, training state equal, metrics equal but for
# the time column (the 7th; the 8th, "partial", is compared).
cat > compare.py << 'PY'
import json, struct, sys
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    d = b[8 + n:]
    meta = h.pop("__metadata__", {})
    return {k: (v["dtype"], v["shape"], d[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items()}, meta
a, b = sys.argv[1], sys.argv[2]
bad = []
for name in ("last.safetensors", "best.safetensors"):
    ta, ma = load(f"{a}/{name}")
    tb, mb = load(f"{b}/{name}")
    if set(ta) != set(tb):
        bad.append(f"{name}: tensor names differ")
    bad += [f"{name}: tensor {k} differs" for k in sorted(ta) if k in tb and ta[k] != tb[k]]
    ra, rb = json.loads(ma["janus_run"]), json.loads(mb["janus_run"])
    ra.pop("run_name", None); rb.pop("run_name", None)
    if ra != rb:
        bad.append(f"{name}: training state {ra} != {rb}")
def metrics(d):
    return [",".join(l.split(",")[:6] + l.split(",")[7:]) for l in open(f"{d}/metrics.csv").read().split("\n") if l]
if metrics(a) != metrics(b):
    bad.append(f"metrics.csv differ:\n{metrics(a)}\n{metrics(b)}")
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
same_run() {
  if python3 compare.py "$1" "$2" > cmp.txt 2>&1; then ok "$3: equals the uninterrupted run bit for bit"
  else fail "$3: differs from the uninterrupted run"; cat cmp.txt >&2; fi
}
epochs_done() { python3 - "$1" << 'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(json.loads(b[8:8 + n])["__metadata__"]["janus_run"])["epochs_done"])
PY
}
# killed NAME ENV=VALUE...: the run must die by SIGKILL (exit 137)
killed() {
  local name=$1; shift
  env "$@" "$JANUS" train --config "$CONFIG" --data-dir "$DATA" --experiments-dir exp -q \
    --epochs $EPOCHS --name "$name" > /dev/null 2> "$name.err" &
  wait $!   # (in the background: no "Killed" notice from bash)
  local rc=$?
  [ $rc -eq 137 ] || { fail "$name: expected death by SIGKILL (137), got exit $rc"; cat "$name.err" >&2; return 1; }
}
resume() {
  local name=$1
  if train --resume --name "$name" > "$name.resume.txt" 2>&1; then ok "$name: resumed"
  else fail "$name: resume failed"; cat "$name.resume.txt" >&2; return 1; fi
}

train --epochs $EPOCHS --name full > /dev/null 2>&1 || fail "uninterrupted run"

# ---- SIGKILL in the middle of an epoch ----------------------------------------------
# Step 22 is the 4th step of epoch 4: last.safetensors must hold epoch 3.
if killed mid_epoch JANUS_TEST_KILL_AT=step:22; then
  [ "$(epochs_done exp/mid_epoch/last.safetensors)" = 3 ] && ok "mid_epoch: last.safetensors holds epoch 3" ||
    fail "mid_epoch: last.safetensors should hold epoch 3"
  resume mid_epoch && same_run exp/full exp/mid_epoch "killed at step 22, resumed"
fi
# killed in the first epoch: nothing to resume from, and the message says so
if killed first_epoch JANUS_TEST_KILL_AT=step:3; then
  if train --resume --name first_epoch > out.txt 2>&1; then fail "resume without a checkpoint succeeded"
  elif grep -q "no last.safetensors" out.txt; then ok "killed in epoch 1: --resume says there is no checkpoint"
  else fail "killed in epoch 1: unclear resume message"; cat out.txt >&2; fi
fi

# ---- per-parameter options (frozen layer, lr_mult, decay_mult): killed, resumed --------
# A frozen middle layer, lr and decay multipliers, AdamW decaying every parameter: the
# resumed run equals the uninterrupted one bit for bit, and the frozen layer is in every
# checkpoint, unchanged from epoch to epoch, without optimizer state.
python3 -c "
import json, sys
c = json.load(open(sys.argv[1]))
layers = c['model']['layers']
layers.insert(1, {'type': 'fully_connected', 'n_out': 8, 'activation': 'tanh', 'trainable': False})
layers[0].update(lr_mult=0.5, parameters={'b': {'decay_mult': 1.0}})
layers[2]['parameters'] = {'W': {'lr_mult': 2.0}}
c['optimizer'] = {'type': 'adamw', 'weight_decay': 0.01, 'weight_decay_applies_to': 'all'}
json.dump(c, open('options.json', 'w'))" "$CONFIG"
PLAIN_CONFIG=$CONFIG
CONFIG=$WORK/options.json
if train --epochs $EPOCHS --name opt_full > opt_full.txt 2>&1; then
  if killed opt_mid JANUS_TEST_KILL_AT=step:22; then
    # epoch 3 (the killed run's last checkpoint) against epoch 8
    python3 - exp/opt_mid/last.safetensors exp/opt_full/last.safetensors << 'PY' &&
import json, struct, sys
def load(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
early, late = load(sys.argv[1]), load(sys.argv[2])
for k in ("fully_connected_1.W", "fully_connected_1.b"):
    assert k in late and early[k] == late[k], k + " missing or changed"
for k in ("fully_connected_0.W", "fully_connected_2.W"):
    assert early[k] != late[k], k + " did not train"
assert not any(k.startswith("optimizer.fully_connected_1.") for k in late), "optimizer state for a frozen layer"
assert any(k.startswith("optimizer.fully_connected_0.") for k in late)
PY
      ok "options: the frozen layer is in the checkpoints, equal at epochs 3 and 8, without optimizer state" ||
      fail "options: frozen layer in the checkpoints"
    resume opt_mid && same_run exp/opt_full exp/opt_mid "options: killed at step 22, resumed"
  fi
else
  fail "options: uninterrupted run"; cat opt_full.txt >&2
fi
CONFIG=$PLAIN_CONFIG

# ---- SIGKILL half-way through a checkpoint write ------------------------------------
# Writes go: [best], last for each epoch; kill inside several of them.
for n in 2 3 5 8; do
  name=ckpt_$n
  killed $name JANUS_TEST_KILL_AT=checkpoint:$n || continue
  ls exp/$name/*.safetensors.tmp.* > /dev/null 2>&1 && ok "$name: a partial temporary file was left" ||
    fail "$name: no partial temporary file (did the kill land inside the write?)"
  if [ -f exp/$name/last.safetensors ]; then
    "$JANUS" evaluate --run exp/$name --checkpoint last --data-dir "$DATA" > /dev/null 2> eval.err &&
      ok "$name: last.safetensors is intact (epoch $(epochs_done exp/$name/last.safetensors))" ||
      { fail "$name: last.safetensors is damaged"; cat eval.err >&2; }
    resume $name && same_run exp/full exp/$name "killed inside checkpoint write $n, resumed"
  else
    ok "$name: killed inside the first checkpoint write: no last.safetensors yet"
  fi
done

# ---- an outside kill -9 while a checkpoint is being written --------------------------
# JANUS_TEST_HOLD_CHECKPOINT_WRITE=$HOLD: half-way through each checkpoint write
# the run writes the temporary file's path into $HOLD and waits until the test
# removes $HOLD; the test signals it while it is held, so the signal always
# lands inside the write.
HOLD=$WORK/hold
# held_write PID: waits (up to 120 s) until PID holds a write; prints its temporary file
held_write() {
  local _
  for _ in $(seq 1200); do
    [ -f "$HOLD" ] && { cat "$HOLD"; return 0; }
    kill -0 "$1" 2> /dev/null || return 1
    sleep 0.1
  done
  return 1
}
rm -f "$HOLD"
JANUS_TEST_HOLD_CHECKPOINT_WRITE=$HOLD "$JANUS" train --config "$CONFIG" --data-dir "$DATA" \
  --experiments-dir exp -q --epochs $EPOCHS --name outside > /dev/null 2>&1 &
pid=$!
held=
while tmp=$(held_write $pid); do  # let writes go on until one is held after a complete checkpoint
  if [ -f exp/outside/last.safetensors ]; then held=$tmp; break; fi
  rm -f "$HOLD"
done
kill -9 $pid 2> /dev/null
wait $pid 2> /dev/null
if [ -n "$held" ] && [ -f "$held" ] && [ -f exp/outside/last.safetensors ]; then
  ok "outside kill -9 landed during a checkpoint write ($(basename "$held") left behind)"
  resume outside && same_run exp/full exp/outside "kill -9 from outside during a write, resumed"
else
  fail "outside kill: no write was held after a complete checkpoint"
fi

# ---- SIGINT / SIGTERM: stop at a step boundary with a resumable checkpoint -----------
# The signal is sent by the process itself after step 22 (the 4th step of epoch 4,
# JANUS_TEST_KILL_SIGNAL): training stops after that step, last.safetensors holds it
# (mid-epoch), the message says how to continue, the exit status is 128 + the signal,
# and the resumed run equals the uninterrupted one bit for bit.
for sig in INT TERM; do
  name=sig$sig
  JANUS_TEST_KILL_AT=step:22 JANUS_TEST_KILL_SIGNAL=$sig "$JANUS" train --config "$CONFIG" --data-dir "$DATA" \
    --experiments-dir exp -q --epochs $EPOCHS --name $name > $name.out 2>&1
  rc=$?
  want=$([ $sig = INT ] && echo 130 || echo 143)
  [ $rc -eq $want ] && ok "SIG$sig: exit status $want" || { fail "SIG$sig: exit $rc, expected $want"; cat $name.out >&2; }
  grep -q "interrupted by SIG$sig: stopped after step 22; the checkpoint exp/$name/last.safetensors holds it; continue with: janus train --resume --name $name" $name.out &&
    ok "SIG$sig: says where the checkpoint is and how to resume" || { fail "SIG$sig: message"; cat $name.out >&2; }
  python3 - exp/$name/last.safetensors << 'PY' && ok "SIG$sig: last.safetensors holds step 22 (mid-epoch)" || fail "SIG$sig: checkpoint is not step 22"
import json, struct, sys
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]
st = json.loads(json.loads(b[8:8 + n])["__metadata__"]["janus_run"])
assert st["step"] == 22 and st["epochs_done"] == 3 and "partial" in st, st
PY
  # metrics.csv: epochs 1-3 complete, then epoch 4's first 4 steps, marked partial (column 8)
  [ "$(cut -d, -f1,8 exp/$name/metrics.csv | tr '\n' ' ')" = "epoch,partial 1,0 2,0 3,0 4,1 " ] &&
    ok "SIG$sig: metrics.csv marks epoch 4's row partial" ||
    { fail "SIG$sig: metrics.csv does not mark the partial epoch"; cat exp/$name/metrics.csv >&2; }
  resume $name && same_run exp/full exp/$name "SIG$sig at step 22, resumed"
done
# A second SIGINT while the first is being handled (inside step 22's checkpoint write,
# held) ends the process at once; the previous checkpoint (epoch 3) stays intact and resumable.
rm -f "$HOLD"
JANUS_TEST_KILL_AT=step:22 JANUS_TEST_KILL_SIGNAL=INT JANUS_TEST_HOLD_CHECKPOINT_WRITE=$HOLD "$JANUS" train \
  --config "$CONFIG" --data-dir "$DATA" --experiments-dir exp -q --epochs $EPOCHS --name sig2 > sig2.out 2>&1 &
pid=$!
held=
while tmp=$(held_write $pid); do  # let writes go on until step 22's is held
  if grep -q 'step\\":22' "$tmp"; then held=$tmp; break; fi
  rm -f "$HOLD"
done
[ -n "$held" ] || fail "second SIGINT: step 22's checkpoint write was never held"
kill -INT $pid 2> /dev/null
wait $pid
rc=$?
rm -f "$HOLD"
[ $rc -eq 130 ] && ok "second SIGINT: the process ends at once (status 130)" || fail "second SIGINT: exit $rc"
grep -q "interrupted by" sig2.out && fail "second SIGINT: the first stop completed anyway"
[ "$(epochs_done exp/sig2/last.safetensors)" = 3 ] && ok "second SIGINT: last.safetensors is still epoch 3's" ||
  fail "second SIGINT: last.safetensors is not epoch 3's"
resume sig2 && same_run exp/full exp/sig2 "second SIGINT during the write, resumed"

# ---- numerical faults ----------------------------------------------------------------
python3 -c "
import json, sys
c = json.load(open(sys.argv[1]))
c['schedule']['lr'] = 1e30
c['model']['layers'][0]['activation'] = 'relu'
json.dump(c, open('nan.json', 'w'))" "$CONFIG"
nan_run() {  # nan_run NAME FLAGS...: must fail with one clear message, no signal
  local name=$1; shift
  "$JANUS" train --config nan.json --data-dir "$DATA" --experiments-dir exp -q --epochs 3 --name "$name" "$@" \
    > "$name.out" 2> "$name.err"
  local rc=$?
  if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then fail "$name: exit $rc (expected a clean failure)"; cat "$name.err" >&2; return 1; fi
  [ "$(grep -c '^janus: error: ' "$name.err")" -eq 1 ] || { fail "$name: expected one error line"; cat "$name.err" >&2; return 1; }
}
if nan_run nan; then
  grep -q "at step 1 (epoch 1, batch 2 of 6)" nan.err && ok "NaN loss: $(grep '^janus: error' nan.err)" ||
    { fail "NaN loss: the message does not name the step"; cat nan.err >&2; }
fi
if nan_run nan_checked --check-numerics; then
  grep -q "first in the output of layer 'fully_connected_1'.*at step 1 (epoch 1, batch 2 of 6)" nan_checked.err &&
    ok "--check-numerics: $(grep '^janus: error' nan_checked.err)" ||
    { fail "--check-numerics: the message does not name the layer and step"; cat nan_checked.err >&2; }
fi
# A NaN after complete epochs keeps the last good checkpoint: train 2 good
# epochs, then resume with the learning rate raised to 1e30 in the run's config.
train --epochs 2 --name nan_late > /dev/null 2>&1 || fail "nan_late: first two epochs"
cp exp/nan_late/last.safetensors good.safetensors
python3 -c "
import json
p = 'exp/nan_late/config.json'
c = json.load(open(p))
c['schedule']['lr'] = 1e30
c['model']['layers'][0]['activation'] = 'relu'
c['epochs'] = 4
json.dump(c, open(p, 'w'))"
# (the activation change keeps parameter shapes, so the checkpoint still loads)
if train --resume --name nan_late --check-numerics > nan_late.out 2> nan_late.err; then
  fail "nan_late: training with lr 1e30 succeeded"
else
  grep -q "epoch 3" nan_late.err && grep -q "last good checkpoint is exp/nan_late/last.safetensors" nan_late.err &&
    ok "NaN in epoch 3: $(grep '^janus: error' nan_late.err | cut -c1-200)..." ||
    { fail "nan_late: message"; cat nan_late.err >&2; }
  cmp -s good.safetensors exp/nan_late/last.safetensors && ok "NaN in epoch 3: last.safetensors is still the epoch-2 checkpoint" ||
    fail "nan_late: last.safetensors changed"
fi
exit $FAILED
