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
# Exit 77: CTest's SKIP_RETURN_CODE (tests/CMakeLists.txt), so a missing tool is
# reported as a skipped test, never as a pass.
command -v python3 > /dev/null || { echo "SKIP: python3 is needed to write the configs (scripts/install_deps.sh installs it)"; exit 77; }
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
bad_config iris.json 'c["model"]["layers"][-1]["n_out"] = 5' "output size does not match the classes" "3 classes" "$DATA"
bad_config cifar.json 'c["model"]["layers"][1].update(kernel=2, pad=2)' "pooling padding not below the window" "padding" cifar
bad_config cifar.json 'c["model"]["layers"][0].update(stride=0)' "stride 0" "stride" cifar

# found by fuzz/fuzz_run_config and fuzz_model_config: huge numbers must not wrap or overflow
bad_config cifar.json 'c["model"]["layers"][1]["stride"] = 2.3e78' "stride 2.3e78" "'stride' must be an integer in range" cifar
bad_config cifar.json 'c["model"]["layers"][0]["kernel"] = 77777777777774' "kernel 77777777777774" "'kernel' must be a positive integer" cifar
bad_config cifar.json 'c["model"]["layers"][0]["n_out"] = 2**40' "conv n_out 2^40" "out of memory" cifar

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

exit $FAILED
