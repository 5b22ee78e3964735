#!/usr/bin/env bash
# Hostile inputs to the real `janus` binary (CTest label "errors").
#   tests/test_cli_hostile.sh PATH/TO/janus SOURCE_DIR
# Each case must end with exactly one "janus: error: ..." line naming the
# problem and a non-zero exit status: never a signal, an abort, a sanitizer
# report, an uncaught exception or a huge allocation. (tests/test_cli.sh
# covers the basic bad usages: a top-level unknown key, a missing data
# directory, an unknown device name, missing files, bad flags.)
set -u
JANUS=$(realpath "$1")
SRC=$(realpath "$2")
DATA="$SRC/datasets"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/janus-hostile.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
FAILED=0
fail() { echo "FAIL: $*" >&2; FAILED=1; }
ok() { echo "ok: $*"; }

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
expect_ok() {
  local what=$1; shift; shift
  if "$@" > out.txt 2> err.txt; then ok "$what"; else fail "$what (exit $?)"; cat out.txt err.txt >&2; fi
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
command -v python3 > /dev/null || { echo "SKIP: python3 is needed to write the configs"; exit 0; }
cp "$SRC/configs/iris.json" iris.json

expect_ok "the small CIFAR-10 set trains (sanity)" -- "${TRAIN[@]}" --config cifar.json --data-dir cifar --name c_ok
expect_ok "iris trains (sanity)" -- "${TRAIN[@]}" --config iris.json --data-dir "$DATA" --name iris_ok --epochs 1

# ---- unknown keys below the top level ---------------------------------------------
with_change iris.json k1.json 'c["dataset"]["standardise"] = True'
expect_error "unknown dataset key" "unknown key 'standardise'" -- "${TRAIN[@]}" --config k1.json --data-dir "$DATA"
with_change cifar.json k2.json 'c["model"]["layers"][0]["kernal"] = 3'
expect_error "unknown layer option" "unknown option 'kernal'" -- "${TRAIN[@]}" --config k2.json --data-dir cifar
with_change iris.json k3.json 'c["optimizer"]["momentun"] = 0.9'
expect_error "unknown optimizer key" "momentun" -- "${TRAIN[@]}" --config k3.json --data-dir "$DATA"
with_change iris.json k4.json 'c["schedule"]["gama"] = 0.1'
expect_error "unknown schedule key" "gama" -- "${TRAIN[@]}" --config k4.json --data-dir "$DATA"
with_change iris.json k5.json 'c["model"]["dropout"] = 0.5'
expect_error "unknown model key" "unknown key 'dropout'" -- "${TRAIN[@]}" --config k5.json --data-dir "$DATA"

# ---- wrong types and values ----------------------------------------------------------
with_change iris.json t1.json 'c["epochs"] = "ten"'
expect_error "epochs as a string" "'epochs' must be an integer" -- "${TRAIN[@]}" --config t1.json --data-dir "$DATA"
with_change iris.json t2.json 'c["batch_size"] = 1.5'
expect_error "fractional batch size" "'batch_size' must be an integer" -- "${TRAIN[@]}" --config t2.json --data-dir "$DATA"
with_change iris.json t3.json 'c["model"]["layers"] = {"type": "dense"}'
expect_error "layers as an object" "'layers' must be a non-empty array" -- "${TRAIN[@]}" --config t3.json --data-dir "$DATA"
with_change iris.json t4.json 'c["model"]["layers"][0]["n_out"] = "16"'
expect_error "n_out as a string" "n_out" -- "${TRAIN[@]}" --config t4.json --data-dir "$DATA"
with_change iris.json t5.json 'c["dataset"] = ["iris"]'
expect_error "dataset as a list" "must be a JSON object" -- "${TRAIN[@]}" --config t5.json --data-dir "$DATA"
with_change iris.json t6.json 'c["schedule"]["lr"] = "fast"'
expect_error "learning rate as a string" "lr" -- "${TRAIN[@]}" --config t6.json --data-dir "$DATA"
with_change iris.json t7.json 'c["dataset"]["validation_fraction"] = 2'
expect_error "validation fraction 2" "validation_fraction" -- "${TRAIN[@]}" --config t7.json --data-dir "$DATA"
for case in 'c["dataset"]["folds"] = 1|between 2 and' 'c["dataset"]["fold"] = 10|must be below' \
            'c["dataset"]["folds"] = 200|200 folds for' 'c["dataset"]["test_fraction"] = 0.2|not both' \
            'del c["dataset"]["folds"]|needs' 'c["dataset"]["folds"] = 2; c["dataset"]["validation_fraction"] = 0.6|below'; do
  with_change iris.json folds.json "${case%%|*}"
  expect_error "cross-validation: ${case%%|*}" "${case#*|}" -- "${TRAIN[@]}" --config folds.json --data-dir "$DATA"
done
with_change iris.json t8.json 'c["seed"] = -1'
expect_error "negative seed" "'seed' must be at least 0" -- "${TRAIN[@]}" --config t8.json --data-dir "$DATA"
with_change iris.json t9.json 'c["schedule"]["type"] = 7'
expect_error "schedule type as a number" "type" -- "${TRAIN[@]}" --config t9.json --data-dir "$DATA"
with_change iris.json t10.json 'c["optimizer"] = "adam"'
expect_error "optimizer as a string" "optimizer" -- "${TRAIN[@]}" --config t10.json --data-dir "$DATA"
with_change iris.json t11.json 'c["model"]["layers"][0]["activation"] = "swish"'
expect_error "unknown activation" "swish" -- "${TRAIN[@]}" --config t11.json --data-dir "$DATA"
with_change iris.json t12.json 'c["batch_size"] = 10**30'
expect_error "batch size beyond 64 bits" "batch_size" -- "${TRAIN[@]}" --config t12.json --data-dir "$DATA"
head -c 100 iris.json > truncated.json
expect_error "truncated JSON" "not valid JSON" -- "${TRAIN[@]}" --config truncated.json --data-dir "$DATA"
: > empty.json
expect_error "empty config file" "not valid JSON" -- "${TRAIN[@]}" --config empty.json --data-dir "$DATA"
echo '[1, 2]' > array.json
expect_error "config is an array" "must be a JSON object" -- "${TRAIN[@]}" --config array.json --data-dir "$DATA"
mkdir -p adir
expect_error "config is a directory" "is a directory" -- "${TRAIN[@]}" --config adir --data-dir "$DATA"

# ---- impossible layer combinations -----------------------------------------------
with_change cifar.json l1.json 'c["model"]["layers"][0].update(kernel=40, pad="valid")'
expect_error "kernel larger than the (unpadded) input" "larger than" -- "${TRAIN[@]}" --config l1.json --data-dir cifar
with_change cifar.json l2.json 'c["model"]["layers"][0].update(kernel=[3, 50], pad=2)'
expect_error "kernel larger than the padded input" "kernel" -- "${TRAIN[@]}" --config l2.json --data-dir cifar
with_change cifar.json l3.json 'c["model"]["layers"][1].update(kernel=64)'
expect_error "pooling window larger than its input" "window" -- "${TRAIN[@]}" --config l3.json --data-dir cifar
with_change cifar.json l4.json 'c["model"]["layers"][1].update(kernel=2, stride=2); c["model"]["layers"][1:1] = [{"type": "maxpool2d", "kernel": 2} for _ in range(6)]'
expect_error "pooling that leaves no output" "pool" -- "${TRAIN[@]}" --config l4.json --data-dir cifar
with_change cifar.json l5.json 'del c["model"]["layers"][2]'
expect_error "dense layer on images without flatten" "expects (batch, features)" -- "${TRAIN[@]}" --config l5.json --data-dir cifar
with_change iris.json l6.json 'c["model"]["layers"].insert(0, {"type": "conv2d", "n_out": 2, "kernel": 3})'
expect_error "convolution on dense data" "expects NHWC" -- "${TRAIN[@]}" --config l6.json --data-dir "$DATA"
with_change iris.json l7.json 'c["model"]["layers"][-1]["n_out"] = 5'
expect_error "output size does not match the classes" "3 classes" -- "${TRAIN[@]}" --config l7.json --data-dir "$DATA"
with_change cifar.json l8.json 'c["model"]["layers"][1].update(kernel=2, pad=2)'
expect_error "pooling padding not below the window" "padding" -- "${TRAIN[@]}" --config l8.json --data-dir cifar
with_change cifar.json l9.json 'c["model"]["layers"][0].update(stride=0)'
expect_error "stride 0" "stride" -- "${TRAIN[@]}" --config l9.json --data-dir cifar

# found by fuzz/fuzz_run_config and fuzz_model_config: huge numbers must not wrap or overflow
with_change cifar.json l10.json 'c["model"]["layers"][1]["stride"] = 2.3e78'
expect_error "stride 2.3e78" "'stride' must be an integer in range" -- "${TRAIN[@]}" --config l10.json --data-dir cifar
with_change cifar.json l11.json 'c["model"]["layers"][0]["kernel"] = 77777777777774'
expect_error "kernel 77777777777774" "'kernel' must be a positive integer" -- "${TRAIN[@]}" --config l11.json --data-dir cifar
with_change cifar.json l12.json 'c["model"]["layers"][0]["n_out"] = 2**40'
expect_error "conv n_out 2^40" "out of memory" -- "${TRAIN[@]}" --config l12.json --data-dir cifar

# ---- devices that do not exist -----------------------------------------------------
for dev in cuda:9 gpu cuda:x cuda:99999999999 "cuda:-1" CPU; do
  expect_error "--device '$dev'" "device" -- "${TRAIN[@]}" --config iris.json --data-dir "$DATA" --device "$dev" --name d
done
with_change iris.json dev.json 'c["device"] = "cuda:9"'
expect_error "config device cuda:9" "cuda:9" -- "${TRAIN[@]}" --config dev.json --data-dir "$DATA"

# ---- data directories and files ------------------------------------------------------
mkdir -p empty_dir
expect_error "CIFAR-10 config, data directory without batches" "data_batch_1.bin" -- \
  "${TRAIN[@]}" --config cifar.json --data-dir empty_dir
with_change cifar.json d1.json 'c["dataset"]["train"] = [1, 2, 3]'
mkdir -p partial && cp cifar/data_batch_1.bin partial/
expect_error "CIFAR-10 batch 2 missing" "data_batch_2.bin" -- "${TRAIN[@]}" --config d1.json --data-dir partial
with_change iris.json d2.json 'c["dataset"]["train"] = ["no_such.csv"]'
expect_error "iris file missing" "no_such.csv" -- "${TRAIN[@]}" --config d2.json --data-dir "$DATA"
touch afile
expect_error "--data-dir is a file" "afile" -- "${TRAIN[@]}" --config iris.json --data-dir afile
printf 'a,b,c,d,species\n5.1,3.5,nan,0.2,setosa\n' > nan.csv
with_change iris.json d3.json 'c["dataset"]["train"] = ["'"$WORK"'/nan.csv"]'
expect_error "iris CSV with a NaN" "not a finite number" -- "${TRAIN[@]}" --config d3.json --data-dir "$DATA"
printf 'a,b,c,d,species\n5.1,3.5,1.4,setosa\n' > short.csv
with_change iris.json d4.json 'c["dataset"]["train"] = ["'"$WORK"'/short.csv"]'
expect_error "iris CSV row with a missing field" "line 2" -- "${TRAIN[@]}" --config d4.json --data-dir "$DATA"
cp cifar/data_batch_1.bin bad_label.bin && printf '\x0c' | dd of=bad_label.bin bs=1 seek=3073 conv=notrunc 2> /dev/null
with_change cifar.json d5.json 'c["dataset"]["train"] = ["'"$WORK"'/bad_label.bin"]'
expect_error "CIFAR-10 label 12" "label 12" -- "${TRAIN[@]}" --config d5.json --data-dir cifar
head -c 5000 cifar/data_batch_1.bin > short.bin
with_change cifar.json d6.json 'c["dataset"]["train"] = ["'"$WORK"'/short.bin"]'
expect_error "CIFAR-10 file cut inside a record" "not a multiple" -- "${TRAIN[@]}" --config d6.json --data-dir cifar

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

exit $FAILED
