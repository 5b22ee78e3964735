#!/usr/bin/env bash
# Hostile inputs to the real `janus` binary (CTest label "errors").
#   tests/test_cli_hostile.sh PATH/TO/janus SOURCE_DIR
# Each case must end with exactly one "janus: error: ..." line naming the
# problem and a non-zero exit status: never a signal, an abort, a sanitizer
# report, an uncaught exception or a huge allocation. (tests/test_cli.sh
# covers the basic bad usages: a top-level unknown key, a missing data
# directory, an unknown device name, missing files, bad flags.)
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
cli_test_setup hostile "$1" "$2"
skip_without python3 -- to write the configs

# A 4 GiB address-space limit makes a reader that allocates before checking
# fail loudly (not under AddressSanitizer, which reserves terabytes of shadow).
VLIMIT=4194304
grep -q __asan_init "$JANUS" && VLIMIT=unlimited
# Under ASan an impossible allocation must fail as in a normal build (bad_alloc), not abort.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1"

# expect_error DESCRIPTION PATTERN -- command...   (60 s timeout, $VLIMIT KiB of address space)
expect_error() {
  local what=$1 pattern=$2; shift 3
  ( ulimit -v $VLIMIT 2> /dev/null; exec timeout -s KILL 60 "$@" ) > out.txt 2> err.txt
  local rc=$?
  if [ $rc -eq 0 ]; then fail "$what: exit 0"; cat out.txt >&2; return; fi
  if [ $rc -ge 124 ]; then fail "$what: killed, timed out or crashed (exit $rc)"; tail -n 5 err.txt >&2; return; fi
  local n
  n=$(grep -c '^janus: error: ' err.txt)
  if [ "$n" -ne 1 ]; then fail "$what: expected one 'janus: error:' line, got $n"; cat err.txt >&2; return; fi
  # (JSON syntax errors keep nlohmann's parse_error text: it gives the line and column)
  if grep -qE 'terminate called|Sanitizer|runtime error|std::bad_alloc|basic_string|stoi|stoll|nlohmann|json\.exception\.(type|out_of_range|invalid_iterator|other)' err.txt; then
    fail "$what: internal failure leaked to the message"; cat err.txt >&2; return
  fi
  if ! grep -q -- "$pattern" err.txt; then fail "$what: message lacks '$pattern'"; cat err.txt >&2; return; fi
  ok "$what -> $(grep '^janus: error: ' err.txt | cut -c1-220)"
}
TRAIN=("$JANUS" train --experiments-dir exp -q --overwrite)

# ---- small image data: CIFAR-10 batches of 4 records, Fashion-MNIST IDX ---------
mkdir -p cifar
record() { printf "\\x0$1"; head -c 3072 /dev/zero | tr '\0' "\\$(printf '%03o' $((40 + $1 * 20)))"; }
for b in 1 2 3 4 5; do
  for l in 0 1 2 3; do record $(((l + b) % 10)); done > cifar/data_batch_$b.bin
done
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
mkdir -p fmnist
{ be32 $((0x801)); be32 8; printf '\x01\x01\x02\x02\x03\x03\x04\x04'; } > fmnist/labels
{ be32 $((0x803)); be32 8; be32 28; be32 28; head -c $((8 * 28 * 28)) /dev/zero; } > fmnist/images

cat > cifar.json << 'JSON'
{"name": "c", "dataset": {"name": "cifar10", "train": [1], "validation": [2]},
 "model": {"layers": [{"type": "conv2d", "n_out": 2, "kernel": 3, "activation": "relu"},
                      {"type": "maxpool2d", "kernel": 2},
                      {"type": "flatten"},
                      {"type": "fully_connected", "n_out": 10, "activation": "softmax"}]},
 "batch_size": 4, "epochs": 1}
JSON
# with_change BASE.json OUT.json 'python expression on c'
with_change() {
  python3 -c "import json,sys; c=json.load(open(sys.argv[1])); $3; json.dump(c, open(sys.argv[2], 'w'))" "$1" "$2"
}
# bad_config BASE.json 'python change on c' DESCRIPTION EXPECTED_TEXT DATA_DIR: `janus train`
# on BASE.json with the change applied must fail with EXPECTED_TEXT in its one error line.
bad_config() {
  with_change "$1" bad_config.json "$2"
  expect_error "$3" "$4" -- "${TRAIN[@]}" --config bad_config.json --data-dir "$5"
}
cp "$SRC/configs/iris.json" iris.json

expect_ok "the small CIFAR-10 set trains (sanity)" -- "${TRAIN[@]}" --config cifar.json --data-dir cifar --name c_ok
expect_ok "iris trains (sanity)" -- "${TRAIN[@]}" --config iris.json --data-dir "$DATA" --name iris_ok --epochs 1

# ---- unknown keys below the top level ---------------------------------------------
bad_config iris.json 'c["dataset"]["standardise"] = True' "unknown dataset key" "unknown key 'standardise'" "$DATA"
bad_config cifar.json 'c["model"]["layers"][0]["kernal"] = 3' "unknown layer option" "unknown option 'kernal'" cifar
bad_config iris.json 'c["optimizer"]["momentun"] = 0.9' "unknown optimizer key" "momentun" "$DATA"
bad_config iris.json 'c["schedule"]["gama"] = 0.1' "unknown schedule key" "gama" "$DATA"
bad_config iris.json 'c["model"]["dropout"] = 0.5' "unknown model key" "unknown key 'dropout'" "$DATA"
bad_config iris.json 'c["model"]["layers"][0]["parameters"] = {"w": {"trainable": False}}' "unknown parameter name" \
  "layer 'fully_connected_0' (fully_connected): 'parameters' names 'w', which is not a parameter of this layer (its parameters: W, b)" "$DATA"
bad_config iris.json 'c["optimizer"]["weight_decay_applies_to"] = "biases"' "unknown weight decay rule" \
  "'weight_decay_applies_to' is \"biases\"" "$DATA"

# ---- wrong types and values ----------------------------------------------------------
bad_config iris.json 'c["epochs"] = "ten"' "epochs as a string" "'epochs' must be an integer" "$DATA"
bad_config iris.json 'c["batch_size"] = 1.5' "fractional batch size" "'batch_size' must be an integer" "$DATA"
bad_config iris.json 'c["model"]["layers"] = {"type": "dense"}' "layers as an object" "'layers' must be a non-empty array" "$DATA"
bad_config iris.json 'c["model"]["layers"][0]["n_out"] = "16"' "n_out as a string" "n_out" "$DATA"
bad_config iris.json 'c["dataset"] = ["iris"]' "dataset as a list" "must be a JSON object" "$DATA"
bad_config iris.json 'c["schedule"]["lr"] = "fast"' "learning rate as a string" "lr" "$DATA"
bad_config iris.json 'c["dataset"]["validation_fraction"] = 2' "validation fraction 2" "validation_fraction" "$DATA"
for case in 'c["dataset"]["folds"] = 1|between 2 and' 'c["dataset"]["fold"] = 10|must be below' \
            'c["dataset"]["folds"] = 200|200 folds for' 'c["dataset"]["test_fraction"] = 0.2|not both' \
            'del c["dataset"]["folds"]|needs' 'c["dataset"]["folds"] = 2; c["dataset"]["validation_fraction"] = 0.6|below'; do
  with_change iris.json folds.json "${case%%|*}"
  expect_error "cross-validation: ${case%%|*}" "${case#*|}" -- "${TRAIN[@]}" --config folds.json --data-dir "$DATA"
done
bad_config iris.json 'c["seed"] = -1' "negative seed" "'seed' must be at least 0" "$DATA"
bad_config iris.json 'c["schedule"]["type"] = 7' "schedule type as a number" "type" "$DATA"
bad_config iris.json 'c["optimizer"] = "adam"' "optimizer as a string" "optimizer" "$DATA"
bad_config iris.json 'c["model"]["layers"][0]["activation"] = "swish"' "unknown activation" "swish" "$DATA"
bad_config iris.json 'c["batch_size"] = 10**30' "batch size beyond 64 bits" "batch_size" "$DATA"
head -c 100 iris.json > truncated.json
expect_error "truncated JSON" "not valid JSON" -- "${TRAIN[@]}" --config truncated.json --data-dir "$DATA"
: > empty.json
expect_error "empty config file" "not valid JSON" -- "${TRAIN[@]}" --config empty.json --data-dir "$DATA"
echo '[1, 2]' > array.json
expect_error "config is an array" "must be a JSON object" -- "${TRAIN[@]}" --config array.json --data-dir "$DATA"
mkdir -p adir
expect_error "config is a directory" "is a directory" -- "${TRAIN[@]}" --config adir --data-dir "$DATA"

# ---- impossible layer combinations -----------------------------------------------
bad_config cifar.json 'c["model"]["layers"][0].update(kernel=40, pad="valid")' "kernel larger than the (unpadded) input" "larger than" cifar
bad_config cifar.json 'c["model"]["layers"][0].update(kernel=[3, 50], pad=2)' "kernel larger than the padded input" "kernel" cifar
bad_config cifar.json 'c["model"]["layers"][1].update(kernel=64)' "pooling window larger than its input" "window" cifar
bad_config cifar.json 'c["model"]["layers"][1].update(kernel=2, stride=2); c["model"]["layers"][1:1] = [{"type": "maxpool2d", "kernel": 2} for _ in range(6)]' "pooling that leaves no output" "pool" cifar
bad_config cifar.json 'del c["model"]["layers"][2]' "dense layer on images without flatten" "expects (batch, features)" cifar
bad_config iris.json 'c["model"]["layers"].insert(0, {"type": "conv2d", "n_out": 2, "kernel": 3})' "convolution on dense data" "expects NHWC" "$DATA"
bad_config cifar.json 'c["model"]["layers"][0].update(groups=2)' "conv2d groups not dividing the 3 input channels" "'groups' = 2 must divide both the input channels C = 3" cifar
bad_config iris.json 'c["model"]["layers"][-1]["n_out"] = 5' "output size does not match the classes" "3 classes" "$DATA"
bad_config cifar.json 'c["model"]["layers"][1].update(kernel=2, pad=2)' "pooling padding not below the window" "padding" cifar
bad_config cifar.json 'c["model"]["layers"][0].update(stride=0)' "stride 0" "stride" cifar

# found by fuzz/fuzz_run_config and fuzz_model_config: huge numbers must not wrap or overflow
bad_config cifar.json 'c["model"]["layers"][1]["stride"] = 2.3e78' "stride 2.3e78" "'stride' must be an integer in range" cifar
bad_config cifar.json 'c["model"]["layers"][0]["kernel"] = 77777777777774' "kernel 77777777777774" "'kernel' must be a positive integer" cifar
bad_config cifar.json 'c["model"]["layers"][0]["n_out"] = 2**40' "conv n_out 2^40" "n_out = 1099511627776 is more output channels" cifar

# ---- devices that do not exist -----------------------------------------------------
for dev in cuda:9 gpu cuda:x cuda:99999999999 "cuda:-1" CPU; do
  expect_error "--device '$dev'" "device" -- "${TRAIN[@]}" --config iris.json --data-dir "$DATA" --device "$dev" --name d
done
bad_config iris.json 'c["device"] = "cuda:9"' "config device cuda:9" "cuda:9" "$DATA"

# ---- data directories and files ------------------------------------------------------
mkdir -p empty_dir
expect_error "CIFAR-10 config, data directory without batches" "data_batch_1.bin" -- \
  "${TRAIN[@]}" --config cifar.json --data-dir empty_dir
with_change cifar.json d1.json 'c["dataset"]["train"] = [1, 2, 3]'
mkdir -p partial && cp cifar/data_batch_1.bin partial/
expect_error "CIFAR-10 batch 2 missing" "data_batch_2.bin" -- "${TRAIN[@]}" --config d1.json --data-dir partial
bad_config iris.json 'c["dataset"]["train"] = ["no_such.csv"]' "iris file missing" "no_such.csv" "$DATA"
touch afile
expect_error "--data-dir is a file" "afile" -- "${TRAIN[@]}" --config iris.json --data-dir afile
printf 'a,b,c,d,species\n5.1,3.5,nan,0.2,setosa\n' > nan.csv
bad_config iris.json 'c["dataset"]["train"] = ["'"$WORK"'/nan.csv"]' "iris CSV with a NaN" "not a finite number" "$DATA"
printf 'a,b,c,d,species\n5.1,3.5,1.4,setosa\n' > short.csv
bad_config iris.json 'c["dataset"]["train"] = ["'"$WORK"'/short.csv"]' "iris CSV row with a missing field" "line 2" "$DATA"
cp cifar/data_batch_1.bin bad_label.bin && printf '\x0c' | dd of=bad_label.bin bs=1 seek=3073 conv=notrunc 2> /dev/null
bad_config cifar.json 'c["dataset"]["train"] = ["'"$WORK"'/bad_label.bin"]' "CIFAR-10 label 12" "label 12" cifar
head -c 5000 cifar/data_batch_1.bin > short.bin
bad_config cifar.json 'c["dataset"]["train"] = ["'"$WORK"'/short.bin"]' "CIFAR-10 file cut inside a record" "not a multiple" cifar

# ---- absurd sizes: refused before allocating -----------------------------------------
mkdir -p huge
for b in 1 2; do truncate -s $((3073 * (1 << 28))) huge/data_batch_$b.bin; done   # sparse, ~825 GB each
start=$(date +%s)
expect_error "sparse CIFAR-10 batch of 268M records" "GiB of memory" -- "${TRAIN[@]}" --config cifar.json --data-dir huge
[ $(($(date +%s) - start)) -lt 30 ] || fail "the huge CIFAR-10 file took $(($(date +%s) - start)) s to refuse"
truncate -s 64G huge/data_batch_1.bin
expect_error "sparse 64 GiB CIFAR-10 file, not whole records" "not a multiple" -- "${TRAIN[@]}" --config cifar.json --data-dir huge
rm -f huge/*

with_change cifar.json fm.json 'c["dataset"] = {"name": "fashion_mnist", "train": ["'"$WORK"'/fmnist/images", "'"$WORK"'/fmnist/labels"], "validation_fraction": 0.5}; c["model"]["layers"][0]["kernel"] = 3'
expect_ok "the small Fashion-MNIST set trains (sanity)" -- "${TRAIN[@]}" --config fm.json --name fm_ok
{ be32 $((0x803)); be32 2; be32 32768; be32 32768; head -c 64 /dev/zero; } > idx_2g
with_change fm.json fm1.json 'c["dataset"]["train"] = ["'"$WORK"'/idx_2g", "'"$WORK"'/fmnist/labels"]'
expect_error "IDX header claiming 2 GiB (plain)" "header says" -- "${TRAIN[@]}" --config fm1.json
gzip -c idx_2g > idx_2g.gz
with_change fm.json fm2.json 'c["dataset"]["train"] = ["'"$WORK"'/idx_2g.gz", "'"$WORK"'/fmnist/labels"]'
expect_error "IDX header claiming 2 GiB (gzip)" "cannot hold that much" -- "${TRAIN[@]}" --config fm2.json
{ be32 $((0x801)); be32 $((0x7fffffff)); printf '\x01'; } > labels_2g
with_change fm.json fm3.json 'c["dataset"]["train"] = ["'"$WORK"'/fmnist/images", "'"$WORK"'/labels_2g"]'
expect_error "IDX labels header claiming 2^31 labels" "header says" -- "${TRAIN[@]}" --config fm3.json
{ be32 $((0x803)); be32 8; be32 28; be32 28; head -c 1000 /dev/zero; } > idx_trunc
gzip -c idx_trunc > idx_trunc.gz
with_change fm.json fm4.json 'c["dataset"]["train"] = ["'"$WORK"'/idx_trunc.gz", "'"$WORK"'/fmnist/labels"]'
expect_error "gzip IDX with too few pixels" "truncated" -- "${TRAIN[@]}" --config fm4.json
printf '\x1f\x8b\x08\x00garbage-not-deflate' > idx_badgz
with_change fm.json fm5.json 'c["dataset"]["train"] = ["'"$WORK"'/idx_badgz", "'"$WORK"'/fmnist/labels"]'
expect_error "corrupt gzip stream" "idx" -- "${TRAIN[@]}" --config fm5.json

# ---- damaged checkpoints ---------------------------------------------------------------
ckpt=exp/iris_ok/last.safetensors
cp -r exp/iris_ok exp/flip
size=$(stat -c %s "$ckpt")
printf '\xff' | dd of=exp/flip/last.safetensors bs=1 seek=$((size - 3)) conv=notrunc 2> /dev/null
expect_error "evaluate: checkpoint with a flipped byte" "checksum" -- "$JANUS" evaluate --run exp/flip --checkpoint last --data-dir "$DATA"
expect_error "resume: checkpoint with a flipped byte" "checksum" -- "$JANUS" train --experiments-dir exp -q --resume --name flip --data-dir "$DATA" --epochs 3
cp -r exp/iris_ok exp/cut && head -c $((size / 2)) "$ckpt" > exp/cut/last.safetensors
expect_error "evaluate: truncated checkpoint" "exp/cut/last.safetensors" -- "$JANUS" evaluate --run exp/cut --checkpoint last --data-dir "$DATA"
cp -r exp/iris_ok exp/empty && : > exp/empty/last.safetensors
expect_error "resume: empty checkpoint" "truncated" -- "$JANUS" train --experiments-dir exp -q --resume --name empty --data-dir "$DATA" --epochs 3
cp -r exp/iris_ok exp/hdr && { printf '\xff\xff\xff\xff\xff\xff\xff\x7f'; tail -c +9 "$ckpt"; } > exp/hdr/last.safetensors
expect_error "checkpoint header length 2^63" "header claims" -- "$JANUS" predict --run exp/hdr --checkpoint last --data "$DATA/iris.csv" --out p.csv
echo '{"name": "iris_ok", "epochs": "x"}' > exp/cut/config.json
expect_error "resume: run config.json damaged" "config.json" -- "$JANUS" train --experiments-dir exp -q --resume --name cut --data-dir "$DATA"

# ==== issue 12: hostile inputs, round two ==================================================
# (1) a CSV value beyond float32's range is refused with file, line and field, in training and predict
sed '2s/^[^,]*/1e39/' "$DATA/iris.csv" > big.csv
bad_config iris.json 'c["dataset"]["train"] = ["'"$WORK"'/big.csv"]' "iris CSV value 1e39 (beyond float32)" \
  "big.csv line 2: field 1 (sepal_length) is out of float32 range" "$DATA"
expect_error "predict: CSV value 1e39" "line 2: field 1 (sepal_length) is out of float32 range" -- \
  "$JANUS" predict --run exp/iris_ok --data big.csv --out p.csv
sed '3s/^[^,]*/-3.5e38/' "$DATA/iris.csv" > big2.csv
expect_error "predict: CSV value -3.5e38" "out of float32 range" -- "$JANUS" predict --run exp/iris_ok --data big2.csv --out p.csv
# (9) RFC 4180: quoted fields (embedded comma, doubled quote, line break), CRLF, a BOM and a last
# record without line end are read; a quote left open, text after a closing quote and a bare
# quote inside a field are refused, naming the line
{ printf '\xef\xbb\xbfsepal_length,sepal_width,"petal_length","petal_width",species\r\n'
  tail -n +2 "$DATA/iris.csv" | sed -e 's/,setosa$/,"setosa, ""wild"""/' -e 's/,virginica$/,"virgi\nnica"/' -e 's/$/\r/'
  printf '5.0,3.3,1.4,0.2,"setosa, ""wild"""'; } > rfc.csv
with_change iris.json rfc.json 'c["dataset"]["train"] = ["'"$WORK"'/rfc.csv"]; c["epochs"] = 1'
expect_ok "RFC 4180 CSV (quotes, CRLF, BOM, no final line end) trains" -- "${TRAIN[@]}" --config rfc.json --data-dir "$DATA" --name rfc
grep -q '"setosa, \\"wild\\""' exp/rfc/hyperparameters.json && grep -q '"virgi\\nnica"' exp/rfc/hyperparameters.json &&
  ok "RFC 4180 CSV: quoted class names read exactly" || fail "RFC 4180 CSV: class names not read exactly"
printf 'a,b,c,d,species\n5.1,3.5,1.4,0.2,"setosa\n' > open_quote.csv
expect_error "CSV quote never closed" "line 2: a quoted field is never closed" -- "$JANUS" predict --run exp/iris_ok --data open_quote.csv --out p.csv
printf 'a,b,c,d,species\n5.1,3.5,1.4,0.2,"setosa"x\n' > after_quote.csv
expect_error "CSV text after a closing quote" "line 2: field 5 has text after its closing quote" -- "$JANUS" predict --run exp/iris_ok --data after_quote.csv --out p.csv
printf 'a,b,c,d,species\n5.1,3"5,1.4,0.2,setosa\n' > bare_quote.csv
expect_error "CSV bare quote in a field" "line 2: field 2 holds a quote" -- "$JANUS" predict --run exp/iris_ok --data bare_quote.csv --out p.csv
printf 'a,b,c,d,species\n5.1,3.5,1.4,0.2,setosa\n"4.9",3.0,1.4,0.2,setosa\n\n' > quoted_num.csv
expect_ok "CSV quoted number and empty trailing line" -- "$JANUS" predict --run exp/iris_ok --data quoted_num.csv --out p.csv

# (3) every numeric optimizer and schedule field is checked against its domain when the config is read
for case in 'c["schedule"] = {"type": "cosine", "lr": 0.1, "min_lr": -2}|'"'min_lr' is -2, outside its domain [0, 0.1]" \
            'c["schedule"] = {"type": "cosine", "lr": 0.1, "min_lr": 0.5}|'"'min_lr' is 0.5, outside its domain" \
            'c["schedule"] = {"type": "exponential", "lr": 0.1, "decay": -0.5}|'"'decay' is -0.5, outside its domain (0, 1]" \
            'c["schedule"] = {"type": "step", "lr": 0.1, "gamma": -1, "step_size": 10}|'"'gamma' is -1, outside its domain (0, 1]" \
            'c["schedule"] = {"type": "step", "lr": 0.1, "step_size": 2.5}|'"'step_size' is 2.5, outside its domain integers >= 1" \
            'c["schedule"] = {"type": "onecycle", "lr": 0.1, "div_factor": 0}|'"'div_factor' is 0, outside its domain (0, inf)" \
            'c["schedule"] = {"type": "onecycle", "lr": 0.1, "final_div_factor": -1}|'"'final_div_factor' is -1" \
            'c["schedule"] = {"type": "onecycle", "lr": 0.1, "pct_start": 1.5}|'"'pct_start' is 1.5, outside its domain [0, 1]" \
            'c["schedule"] = {"type": "cosine", "lr": 0.1, "warmup_steps": -3}|'"'warmup_steps' is -3" \
            'c["schedule"] = {"type": "constant", "lr": -0.1}|'"'lr' is -0.1, outside its domain (0, inf)" \
            'c["optimizer"] = {"type": "sgd", "weight_decay": -5}|'"optimizer sgd: 'weight_decay' is -5, outside its domain [0, inf)" \
            'c["model"]["layers"][0]["lr_mult"] = -1|'"layer 'fully_connected_0' (fully_connected): 'lr_mult' is -1, outside its domain [0, inf)" \
            'c["model"]["layers"][1]["parameters"] = {"b": {"decay_mult": -0.5}}|'"layer 'fully_connected_1' (fully_connected), parameter 'b': 'decay_mult' is -0.5, outside its domain [0, inf)" \
            'c["optimizer"] = {"type": "sgd", "momentum": 1}|'"'momentum' is 1, outside its domain [0, 1)" \
            'c["optimizer"] = {"type": "adam", "beta2": 1.5}|'"optimizer adam: 'beta2' is 1.5, outside its domain [0, 1)" \
            'c["optimizer"] = {"type": "adam", "beta1": 1.0}|'"'beta1' is 1.0, outside its domain [0, 1)" \
            'c["optimizer"] = {"type": "adamw", "eps": 0}|'"optimizer adamw: 'eps' is 0, outside its domain (0, inf)" \
            'c["optimizer"] = {"type": "adamw", "weight_decay": -0.01}|'"'weight_decay' is -0.01"; do
  with_change iris.json domain.json "${case%%|*}"
  msg=${case#*|}
  expect_error "domain: ${case%%|*}" "${msg%%, outside*}" -- "${TRAIN[@]}" --config domain.json --data-dir "$DATA"
  grep -qF -- "config domain.json: " err.txt || fail "domain: ${case%%|*}: the message does not name the file"
  case $msg in *outside*) grep -qF -- "$msg" err.txt || fail "domain: ${case%%|*}: the message lacks '$msg'" ;; esac
done

# (2) --resume --epochs N on a finished cosine run re-plans the schedule (and says so); an explicit
# total_steps that ends early is refused
with_change iris.json cos.json 'c["schedule"] = {"type": "cosine", "lr": 0.1}; c["epochs"] = 2'
expect_ok "cosine run of 2 epochs" -- "${TRAIN[@]}" --config cos.json --data-dir "$DATA" --name cos
expect_ok "cosine run extended to 5 epochs" -- "$JANUS" train --experiments-dir exp -q --resume --name cos --data-dir "$DATA" --epochs 5
grep -q "re-planned for 5 epochs" out.txt && ok "resume --epochs: says the schedule is re-planned" ||
  { fail "resume --epochs: no re-planning message"; cat out.txt >&2; }
python3 - exp/cos/metrics.csv << 'PY' && ok "resume --epochs: epochs 3-5 train at a positive learning rate" || fail "resume --epochs: zero learning rate"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 5 and all(float(r["lr"]) > 0 for r in rows[2:4]), rows
PY
with_change iris.json cos2.json 'c["schedule"] = {"type": "cosine", "lr": 0.1, "total_steps": 12}; c["epochs"] = 2'
expect_ok "cosine run with explicit total_steps" -- "${TRAIN[@]}" --config cos2.json --data-dir "$DATA" --name cos2
expect_error "resume --epochs past an explicit total_steps" "ends before" -- \
  "$JANUS" train --experiments-dir exp -q --resume --name cos2 --data-dir "$DATA" --epochs 5
expect_ok "resume with a --config whose epochs differ" -- "$JANUS" train --experiments-dir exp -q --resume --name cos --config iris.json --data-dir "$DATA"
grep -q "note: --resume continues" out.txt && ok "resume: a differing --config is reported as not used" ||
  { fail "resume: differing --config not reported"; cat out.txt >&2; }

# (5) BatchNorm and a last batch of one sample: checked before the first step
with_change iris.json bn.json 'c["dataset"] = {"name": "iris", "validation_fraction": 0.2}; c["batch_size"] = 17; c["epochs"] = 2; c["model"]["layers"] = [{"type": "fully_connected", "n_out": 8}, {"type": "batchnorm"}, {"type": "relu"}, {"type": "fully_connected", "n_out": 3, "activation": "softmax"}]'
expect_ok "BatchNorm, last batch of one, drop_last auto (the default)" -- "${TRAIN[@]}" --config bn.json --data-dir "$DATA" --name bn
grep -q "drop_last auto: the last training batch of each epoch (1 of 120 samples) is dropped" out.txt &&
  grep -q '"drop_last": true' exp/bn/config.json && ok "drop_last auto: says it drops the one-sample batch and records it" ||
  { fail "drop_last auto: no message or not recorded"; cat out.txt >&2; }
bad_config bn.json 'c["drop_last"] = False' "BatchNorm, last batch of one, drop_last false" "the last training batch of each epoch has 1 sample (120 = 7 x 17 + 1)" "$DATA"
grep -q "^epoch" out.txt && fail "drop_last false: trained before refusing"
bad_config bn.json 'c["batch_size"] = 1' "BatchNorm with batch size 1" "batch_size 1: layer 'batchnorm_1'" "$DATA"
bad_config bn.json 'c["drop_last"] = "yes"' "drop_last 'yes'" "'drop_last' must be true, false or \"auto\"" "$DATA"

# (6) cross_entropy on a linear output reads it as logits (PyTorch's CrossEntropyLoss): trains,
# never a negative loss
with_change iris.json logits.json 'c["model"]["layers"][-1].pop("activation"); c["dataset"] = {"name": "iris", "validation_fraction": 0.2}; c["epochs"] = 20'
expect_ok "cross_entropy on logits (no softmax) trains" -- "${TRAIN[@]}" --config logits.json --data-dir "$DATA" --name logits
python3 - exp/logits/metrics.csv << 'PY' && ok "cross_entropy on logits: losses >= 0, validation accuracy > 90%" || fail "cross_entropy on logits: negative loss or no learning"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert all(float(r["train_loss"]) >= 0 and float(r["val_loss"]) >= 0 for r in rows), rows
assert float(rows[-1]["val_acc"]) > 0.9, rows[-1]
PY
expect_ok "evaluate the logits model" -- "$JANUS" evaluate --run exp/logits --data-dir "$DATA"

# (4) checkpoints in float64 (and mixed, as Python's safetensors writes them) evaluate like the
# float32 one; values beyond float32 and dtypes Janus does not read are refused naming the file
cat > st.py << 'PY'
import json, struct, sys
def load(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); d = b[8 + n:]
    meta = h.pop("__metadata__", {})
    return {k: (v["dtype"], v["shape"], d[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items()}, meta
def raw(header, data):
    h = json.dumps(header).encode() if isinstance(header, dict) else header
    return struct.pack("<Q", len(h)) + h + data
def write(path, tensors, meta, header_text=None, extra=b""):
    header, data = {"__metadata__": meta}, b""
    for k, (dt, shape, b) in tensors.items():
        header[k] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}; data += b
    open(path, "wb").write(raw(header_text(header) if header_text else header, data + extra))
def f64(b): return struct.pack("<%dd" % (len(b) // 4), *struct.unpack("<%df" % (len(b) // 4), b))
src, out = sys.argv[1], sys.argv[2]
t, meta = load(src)
meta = {k: meta[k] for k in ("model", "input_shape", "standardizer", "class_names", "dataset") if k in meta}
write(out + "/f64.safetensors", {k: ("F64", s, f64(b)) for k, (d, s, b) in t.items()}, meta)
first = sorted(t)[0]
write(out + "/mixed.safetensors", {k: ("F64", s, f64(b)) if k == first else v for k, v in t.items() for d, s, b in [v]}, meta)
big = dict((k, ("F64", s, f64(b))) for k, (d, s, b) in t.items())
dt, s, b = big[first]; big[first] = (dt, s, struct.pack("<d", 1e300) + b[8:])
write(out + "/f64_huge.safetensors", big, meta)
write(out + "/f16.safetensors", {k: ("F16", s, b[:len(b) // 2]) if k == first else (d, s, b) for k, (d, s, b) in t.items()}, meta)
write(out + "/q8.safetensors", {k: ("Q8", s, b) if k == first else (d, s, b) for k, (d, s, b) in t.items()}, meta)
write(out + "/trailing.safetensors", t, meta, extra=b"\0" * 8)
def gap(h):
    k = sorted(x for x in h if x != "__metadata__")[-1]; h[k]["data_offsets"] = [h[k]["data_offsets"][0] + 4, h[k]["data_offsets"][1] + 4]; return h
write(out + "/gap.safetensors", t, meta, header_text=lambda h: json.dumps(gap(h)).encode(), extra=b"\0" * 4)
def overlap(h):
    ks = sorted((x for x in h if x != "__metadata__"), key=lambda x: h[x]["data_offsets"][0])
    a, b = h[ks[0]]["data_offsets"], h[ks[1]]["data_offsets"]
    if b[1] - b[0] <= a[1]: h[ks[1]]["data_offsets"] = [0, b[1] - b[0]]
    else: h[ks[1]]["data_offsets"] = [a[1] - 4, a[1] - 4 + b[1] - b[0]]
    return h
write(out + "/overlap.safetensors", t, meta, header_text=lambda h: json.dumps(overlap(h)).encode())
def dup(h):
    s = json.dumps(h); k = sorted(x for x in h if x != "__metadata__")[0]
    return (s[:-1] + ", " + json.dumps(k) + ": " + json.dumps(h[k]) + "}").encode()
write(out + "/duplicate.safetensors", t, meta, header_text=dup)
write(out + "/meta_number.safetensors", t, dict(meta, epochs=3))
st = json.loads(meta["standardizer"]); st["mean"][0] = 1e39
write(out + "/std_big.safetensors", t, dict(meta, standardizer=json.dumps(st)))
write(out + "/class_number.safetensors", t, dict(meta, class_names="[1, 2, 3]"))
open(out + "/header_too_big.safetensors", "wb").write(struct.pack("<Q", 100000001) + b"{" + b" " * 100000000)
PY
mkdir -p st && python3 st.py exp/iris_ok/best.safetensors st || fail "writing the safetensors cases"
"$JANUS" evaluate --run exp/iris_ok --checkpoint best --data-dir "$DATA" > eval32.txt 2>&1
for f in f64 mixed; do
  expect_ok "evaluate a $f checkpoint" -- "$JANUS" evaluate --run exp/iris_ok --checkpoint st/$f.safetensors --data-dir "$DATA"
  if [ "$(grep -i 'loss' out.txt | head -1)" = "$(grep -i 'loss' eval32.txt | head -1)" ]; then ok "$f checkpoint: same loss line as float32"
  else fail "$f checkpoint: loss differs"; cat out.txt eval32.txt >&2; fi
done
expect_ok "predict with a float64 checkpoint" -- "$JANUS" predict --run exp/iris_ok --checkpoint st/f64.safetensors --data "$DATA/iris.csv" --out p64.csv
for case in "f64_huge|out of float32 range" "f16|has dtype F16, which Janus does not read" "q8|not a safetensors dtype" \
            "trailing|8 bytes of trailing data" "gap|a gap of 4 bytes" "overlap|overlap in the data section" \
            "duplicate|header repeats the key" "meta_number|metadata 'epochs' is not a string" \
            "header_too_big|header claims 100000001 bytes" \
            "std_big|metadata 'standardizer': standardizer metadata: 'mean' entry 0 is 1e+39, not a number within float32" \
            "class_number|metadata 'class_names' holds 1, not a class name"; do
  expect_error "safetensors: ${case%%|*}" "${case#*|}" -- "$JANUS" evaluate --run exp/iris_ok --checkpoint "st/${case%%|*}.safetensors" --data-dir "$DATA"
  grep -q "st/${case%%|*}.safetensors" err.txt || fail "safetensors ${case%%|*}: message does not name the file"
done

# (7) one run per directory: two runs started together with the same name, one succeeds; a run in
# progress cannot be resumed or overwritten by another process
with_change iris.json slow.json 'c["epochs"] = 3'
TRAIN_NEW=("$JANUS" train --experiments-dir exp -q)
for i in 1 2 3; do
  "${TRAIN_NEW[@]}" --config slow.json --data-dir "$DATA" --name same$i > a.out 2> a.err & pa=$!
  "${TRAIN_NEW[@]}" --config iris.json --data-dir "$DATA" --name same$i > b.out 2> b.err & pb=$!
  wait $pa; ra=$?; wait $pb; rb=$?
  if [ $((ra == 0)) -ne $((rb == 0)) ] && grep -q "exp/same$i" a.err b.err; then ok "two runs on one name (try $i): exactly one succeeds, the other names the folder"
  else fail "two runs on one name (try $i): exits $ra and $rb"; cat a.err b.err >&2; fi
done
JANUS_TEST_SLOW_CHECKPOINT_WRITE=3000 "${TRAIN[@]}" --config slow.json --data-dir "$DATA" --name busy > busy.out 2>&1 & pbusy=$!
for _ in $(seq 50); do [ -f exp/busy/last.safetensors ] || ls exp/busy/*.tmp.* > /dev/null 2>&1 && break; sleep 0.1; done
expect_error "resume a run still training" "in use by another janus process (pid $pbusy)" -- \
  "$JANUS" train --experiments-dir exp -q --resume --name busy --data-dir "$DATA"
expect_error "overwrite a run still training" "in use by another janus process" -- "${TRAIN[@]}" --config slow.json --data-dir "$DATA" --name busy
kill -TERM $pbusy; wait $pbusy; rterm=$?
[ $rterm -eq 143 ] && ok "SIGTERM: the busy run stops with status 143" || { fail "SIGTERM: exit $rterm"; cat busy.out >&2; }

exit $FAILED
