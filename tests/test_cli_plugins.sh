#!/usr/bin/env bash
# Plugins end to end (CTest cli.plugins, labels cli and install):
#   1. installs this build into a temporary prefix (cmake --install) and
#      builds examples/layer_plugin against it with find_package(Janus) and
#      Janus::plugin alone, as a plugin author would;
#   2. loads it into the installed janus and into the built one (`info`);
#   3. trains examples/layer_plugin/iris_residual.json (its "plugins" list,
#      relative to the config file, names the plugin) from another working
#      directory, then evaluates and predicts from the run folder alone (the
#      plugin is recorded in its config.json) and with --plugin: the
#      reloaded model's validation loss and accuracy equal the ones training
#      measured before saving, and both predictions files are identical;
#   4. checks each refusal: a missing file, a library without the entry
#      point, an ABI mismatch, a type registered twice (two copies of the
#      plugin), a built-in type's name, an undefined symbol, a config naming
#      the plugin's type without the plugin (the message suggests --plugin),
#      a run whose plugin has gone: a "janus: error:" naming the file or the
#      type and exit status 1, never a crash.
#   test_cli_plugins.sh BUILD_DIR SOURCE_DIR JANUS WRONG_ABI.so NO_ENTRY_POINT.so BUILTIN_TYPE.so UNDEFINED_SYMBOL.so
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
BUILT_JANUS=$(realpath "$3")
WRONG_ABI=$(realpath "$4") NO_ENTRY=$(realpath "$5") BUILTIN_TYPE=$(realpath "$6") UNDEFINED=$(realpath "$7")
cli_work_dir plugins-test
skip_without python3 -- reads config.json and the results
# expect_refused DESCRIPTION PATTERN... -- command...: exit 1 (not a signal), and
# stderr holds a "janus: error:" line with every PATTERN (fixed strings).
expect_refused() {
  local what=$1; shift
  local patterns=()
  while [ "$1" != "--" ]; do patterns+=("$1"); shift; done
  shift
  "$@" > "$WORK/out.txt" 2> "$WORK/err.txt"
  local rc=$?
  if [ $rc -ne 1 ]; then fail "$what: exit $rc, expected 1"; cat "$WORK/err.txt" >&2; return; fi
  grep -q "^janus: error: " "$WORK/err.txt" || { fail "$what: no 'janus: error:' line"; cat "$WORK/err.txt" >&2; return; }
  for p in "${patterns[@]}"; do
    grep -qF -- "$p" "$WORK/err.txt" || { fail "$what: stderr lacks '$p'"; cat "$WORK/err.txt" >&2; return; }
  done
  ok "$what ($(head -n 1 "$WORK/err.txt" | cut -c1-160))"
}

# ---- 1. install, and build the example plugin against the installed package ----
PREFIX=$WORK/prefix
cmake --install "$BUILD" --prefix "$PREFIX" > "$WORK/install.log" || { cat "$WORK/install.log"; exit 1; }
JANUS=$PREFIX/bin/janus
[ -x "$JANUS" ] || { echo "FAIL: cmake --install put no bin/janus"; exit 1; }
# The example as a user has it: its folder copied, built in its build/ (the
# path its iris_residual.json names).
EXAMPLE=$WORK/layer_plugin
cp -r "$SRC/examples/layer_plugin" "$EXAMPLE"
rm -rf "$EXAMPLE/build"
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$EXAMPLE" -B "$EXAMPLE/build" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
  > "$WORK/configure.log" 2>&1 || { cat "$WORK/configure.log"; exit 1; }
cmake --build "$EXAMPLE/build" -j2 > "$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
PLUGIN=$EXAMPLE/build/liblayer_plugin.so
[ -f "$PLUGIN" ] || { echo "FAIL: the example built no liblayer_plugin.so"; exit 1; }
ok "examples/layer_plugin built against the installed package"
# Janus::plugin must not link libjanus in: the plugin's Janus symbols are
# undefined, resolved by the program that loads it (one copy, one registry).
if nm -D --defined-only "$PLUGIN" | grep -q "register_layer_type"; then
  fail "the plugin defines janus::register_layer_type itself: it carries a second copy of Janus"
fi

# ---- 2. loads into the installed and the built janus ---------------------------
for janus in "$JANUS" "$BUILT_JANUS"; do
  expect_ok "info --plugin ($janus)" -- "$janus" info --plugin "$PLUGIN"
  grep -q "layer_plugin  $(realpath "$PLUGIN")" "$WORK/out.txt" || fail "info lists no layer_plugin: $(cat "$WORK/out.txt")"
  grep -q "layer types: residual_dense" "$WORK/out.txt" || fail "info lists no residual_dense"
done

# ---- 3. train, evaluate, predict ------------------------------------------------
mkdir -p "$WORK/elsewhere"
cd "$WORK/elsewhere"   # the config's "plugins" entry is relative to the config file, not to here
expect_ok "train with the config's plugins" -- "$JANUS" train --config "$EXAMPLE/iris_residual.json" --epochs 3 \
  --experiments-dir exp --name res -q
RUN=exp/res
for f in config.json metrics.csv last.safetensors; do [ -s "$RUN/$f" ] || fail "$RUN/$f missing"; done
python3 - "$RUN/config.json" "$(realpath "$PLUGIN")" <<'EOF' || fail "config.json does not record the plugin"
import json, sys
plugins = json.load(open(sys.argv[1])).get("plugins")
sys.exit(0 if plugins == [sys.argv[2]] else f"config.json 'plugins' is {plugins}, expected [{sys.argv[2]!r}]")
EOF

# Evaluate the last checkpoint on the run's validation split from the run
# folder alone: a fresh process reloads the plugin and the weights, and must
# measure what training measured after its last epoch.
expect_ok "evaluate --run (plugin from config.json)" -- "$JANUS" evaluate --run "$RUN" --checkpoint last --json ev.json
python3 - "$RUN/metrics.csv" ev.json <<'EOF' || fail "the reloaded model differs from the trained one"
import csv, json, sys
# metrics.csv holds 6 significant digits (%.6g); the validation split is one
# batch both times, so the reloaded values are the same numbers and print the same.
last = list(csv.DictReader(open(sys.argv[1])))[-1]
ev = json.load(open(sys.argv[2]))
trained = (last["val_loss"], last["val_acc"])
reloaded = ("%.6g" % ev["loss"], "%.6g" % ev["accuracy"])
print(f"validation (loss, accuracy) after training {trained}, after reload {reloaded}")
sys.exit(0 if trained == reloaded else "validation loss / accuracy after reload differ from training's")
EOF

expect_ok "predict --run (plugin from config.json)" -- "$JANUS" predict --run "$RUN" --data "$SRC/datasets/iris.csv" \
  --out preds_recorded.csv
expect_ok "predict --plugin (explicit)" -- "$JANUS" predict --run "$RUN" --plugin "$PLUGIN" \
  --data "$SRC/datasets/iris.csv" --out preds_explicit.csv
[ "$(wc -l < preds_recorded.csv)" -eq 151 ] || fail "predictions should have 150 rows"
cmp -s preds_recorded.csv preds_explicit.csv || fail "predictions differ between the two loads of the plugin"
# The run predicts what it evaluates: its accuracy on iris.csv from the CSV
# equals evaluate's on the same file.
expect_ok "evaluate --data iris.csv" -- "$JANUS" evaluate --run "$RUN" --data "$SRC/datasets/iris.csv" --json ev_all.json
python3 - preds_recorded.csv ev_all.json "$SRC/datasets/iris.csv" <<'EOF' || fail "predict and evaluate disagree"
import csv, json, sys
preds = [int(r["Category"]) for r in csv.DictReader(open(sys.argv[1]))]
ev = json.load(open(sys.argv[2]))
names = ev["class_names"]
labels = [names.index(r[-1]) for r in csv.reader(open(sys.argv[3])) if r and r[-1] in names]
assert len(labels) == len(preds) == 150, (len(labels), len(preds))
acc = sum(p == l for p, l in zip(preds, labels)) / len(labels)
print(f"accuracy from predictions.csv {acc!r}, from evaluate {ev['accuracy']!r}")
sys.exit(0 if abs(acc - ev["accuracy"]) < 1e-12 else "accuracies differ")
EOF
# --plugin on train too: recorded next to the config's own (once).
expect_ok "train --plugin (the same file again)" -- "$JANUS" train --config "$EXAMPLE/iris_residual.json" --epochs 1 \
  --experiments-dir exp --name res2 -q --plugin "$PLUGIN"
python3 -c "import json,sys; p=json.load(open('exp/res2/config.json'))['plugins']; sys.exit(0 if len(p)==1 else p)" ||
  fail "a plugin given twice is recorded twice"
# bench reads the same run config: its "plugins" load before the model is built.
expect_ok "bench --model-config (the config's plugins)" -- "$JANUS" bench --model-config "$EXAMPLE/iris_residual.json" \
  --device cpu --no-layers --iters 1 --repeats 1 --warmup 0 --json bench.json
python3 - bench.json <<'EOF' || fail "bench did not time the plugin's model"
import json, sys
report = json.load(open(sys.argv[1]))
text = json.dumps(report)
sys.exit(0 if "iris_residual" in text and "train" in text else f"no iris_residual timing in {text[:400]}")
EOF
# --resume from the run folder alone: its config.json names the plugin.
expect_ok "train a few steps" -- "$JANUS" train --config "$EXAMPLE/iris_residual.json" --epochs 2 --max-steps 3 \
  --experiments-dir exp --name res3 -q
expect_ok "train --resume without --config or --plugin" -- "$JANUS" train --resume --name res3 --experiments-dir exp -q
grep -q "^epoch 2/2" "$WORK/out.txt" || fail "the resumed run did not finish its 2 epochs: $(cat "$WORK/out.txt")"
expect_ok "bench --plugin" -- "$JANUS" bench --plugin "$PLUGIN" --model-config "$EXAMPLE/iris_residual.json" \
  --device cpu --iters 1 --repeats 1 --warmup 0 --no-layers

# ---- 4. refusals ------------------------------------------------------------------
expect_refused "missing plugin file" "plugin nope/libmissing.so: no such file" -- \
  "$JANUS" info --plugin nope/libmissing.so
expect_refused "not a Janus plugin" "$NO_ENTRY" "no entry point 'janus_plugin_descriptor'" -- \
  "$JANUS" info --plugin "$NO_ENTRY"
expect_refused "ABI mismatch" "$WRONG_ABI" "built for plugin ABI 1001, Janus 0.0.1" "rebuild the plugin" -- \
  "$JANUS" info --plugin "$WRONG_ABI"
cp "$PLUGIN" "$WORK/libcopy.so"
expect_refused "type registered twice" "plugin $WORK/libcopy.so" "layer type 'residual_dense' is registered already by plugin $(realpath "$PLUGIN")" -- \
  "$JANUS" info --plugin "$PLUGIN" --plugin "$WORK/libcopy.so"
expect_refused "a built-in type's name" "$BUILTIN_TYPE" "'conv2d' is a built-in layer type" -- \
  "$JANUS" info --plugin "$BUILTIN_TYPE"
expect_refused "undefined symbol" "$UNDEFINED" "undefined symbol" "janus::function_not_in_janus(int)" -- \
  "$JANUS" info --plugin "$UNDEFINED"
python3 - "$EXAMPLE/iris_residual.json" no_plugins.json <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); del c["plugins"]; json.dump(c, open(sys.argv[2], "w"))
EOF
expect_refused "unknown type without its plugin" "no_plugins.json" "unknown layer type 'residual_dense'" "--plugin" -- \
  "$JANUS" train --config no_plugins.json --experiments-dir exp --name nope -q
mkdir -p configs
echo '{"plugins": ["../lib/gone.so"], "dataset": {"name": "iris"}, "model": {"layers": []}}' > configs/gone.json
expect_refused "config plugin missing" "config configs/gone.json: 'plugins' entry \"../lib/gone.so\": plugin lib/gone.so: no such file" -- \
  "$JANUS" train --config configs/gone.json --experiments-dir exp --name nope -q
mv "$PLUGIN" "$WORK/moved.so"
expect_refused "run whose plugin has gone" "$RUN/config.json" "$(realpath -m "$PLUGIN"): no such file" -- \
  "$JANUS" evaluate --run "$RUN"
mv "$WORK/moved.so" "$PLUGIN"

exit $FAILED
