#!/usr/bin/env bash
# End-to-end test of `janus bench` (CTest label "cli").
#   tests/test_bench_cli.sh PATH/TO/janus SOURCE_DIR
# A tiny benchmark of the MLP workload on every device of the build: exit 0,
# the JSON report has training and inference throughput > 0 on the cpu device,
# per-layer rows, a CPU peak formula; in a SIM build the simulated CUDA device
# is listed as simulated and not timed. Also --model-config, CSV output and
# bad usage.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
cli_test_setup bench-test "$1" "$2"
skip_without python3 -- to read the JSON reports

if "$JANUS" bench --config "$SRC/bench/configs/mlp.json" --iters 1 --repeats 1 --warmup 1 \
     --json out.json --csv out.csv > out.txt 2> err.txt; then
  ok "bench mlp"
else
  fail "bench mlp (exit $?)"; cat out.txt err.txt >&2
fi
grep -q "training" out.txt || fail "bench prints no training row"
grep -q "peak = measured FMA throughput = [0-9]* GFLOP/s" out.txt || fail "bench states no measured CPU peak"
python3 - out.json << 'PY' || fail "bench JSON report"
import json, sys
r = json.load(open(sys.argv[1]))
devs = {d["device"]: d for d in r["devices"]}
cpu = devs["cpu"]
w = cpu["workloads"][0]
assert w["name"] == "mlp", w["name"]
assert w["train_images_per_s"] > 0 and w["infer_images_per_s"] > 0, w
assert w["train_gflops"] > 0 and len(w["layers"]) == 2, w
assert cpu["simulated"] is False and cpu["timed"] is True
if r["cuda_backend"] == "SIM":
    sims = [d for d in r["devices"] if d["simulated"]]
    assert sims, "SIM build lists no simulated device: %s" % list(devs)
    for d in sims:
        assert "simulated" in d["device"] and d["timed"] is False and not d["workloads"], d
        assert "not" in d["note"].lower(), d["note"]
print("json ok: cpu training %.0f img/s, inference %.0f img/s; devices %s"
      % (w["train_images_per_s"], w["infer_images_per_s"], list(devs)))
PY
head -n 1 out.csv | grep -q "^device,simulated,workload" || fail "CSV header"
grep -q "^cpu,false,mlp,128,training," out.csv || fail "CSV training row"
if grep -q '"cuda_backend": "SIM"' out.json; then
  grep -q "SIMULATED" out.txt || fail "table does not mark the simulated device"
fi

# A CNN: every convolution names the kernel it runs (on the CPU: oneDNN's
# direct or Winograd kernels, or im2col + OpenBLAS with JANUS_CPU_CONV=im2col);
# other layers name none. In CSV too.
if "$JANUS" bench --config "$SRC/bench/configs/spec_cnn.json" --device cpu --batch 8 --iters 1 --repeats 1 \
     --warmup 0 --json cnn.json --csv cnn.csv > cnn.txt 2> err.txt; then
  ok "bench spec_cnn"
else
  fail "bench spec_cnn (exit $?)"; cat cnn.txt err.txt >&2
fi
python3 - cnn.json "${JANUS_CPU_CONV:-auto}" << 'PY' || fail "bench names the convolution kernels"
import json, sys
r = json.load(open(sys.argv[1]))
layers = r["devices"][0]["workloads"][0]["layers"]
convs = [l for l in layers if l["type"] == "conv2d"]
assert len(convs) == 2, layers
for l in convs:
    assert l["kernel"].startswith(("oneDNN direct (", "oneDNN Winograd (", "im2col + OpenBLAS")), l
assert all("kernel" not in l for l in layers if l["type"] != "conv2d"), layers
# The 3x3 32->64 convolution on 16x16 maps is one Auto runs on Winograd
# where oneDNN has Winograd kernels: on x86 CPUs with AVX-512 (oneDNN's
# avx512_core: F, BW, VL, DQ); elsewhere it falls back to the direct kernels.
flags = set()
for line in open("/proc/cpuinfo"):
    if line.startswith("flags"):
        flags = set(line.split(":", 1)[1].split())
        break
if sys.argv[2] in ("auto", "winograd"):
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        assert convs[1]["kernel"].startswith("oneDNN Winograd"), convs[1]
    else:
        assert convs[1]["kernel"].startswith("oneDNN direct"), convs[1]
print("kernels:", [l["kernel"] for l in convs])
PY
grep -q "^cpu,false,spec_cnn,8,conv2d_0,conv2d,.*,oneDNN" cnn.csv || [ "${JANUS_CPU_CONV:-}" = im2col ] ||
  fail "CSV kernel column"

# A run config's model on its dataset's input shape (iris: 4 features, 3 classes).
if "$JANUS" bench --model-config "$SRC/configs/iris.json" --device cpu --iters 1 --repeats 1 --warmup 0 \
     --no-layers --json iris.json > out.txt 2> err.txt; then
  ok "bench --model-config"
else
  fail "bench --model-config (exit $?)"; cat out.txt err.txt >&2
fi
python3 -c "
import json; r = json.load(open('iris.json')); w = r['devices'][0]['workloads'][0]
assert len(r['devices']) == 1 and w['input'] == [4] and w['classes'] == 3 and 'layers' not in w, w
assert w['train_images_per_s'] > 0" || fail "bench --model-config JSON"

# Bad usage: non-zero exit, not a crash.
"$JANUS" bench --config does-not-exist.json --device cpu > out.txt 2> err.txt
rc=$?
{ [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "janus: error:" err.txt; } || fail "missing config (exit $rc)"
"$JANUS" bench --iters 0 > out.txt 2> err.txt
rc=$?
{ [ $rc -ne 0 ] && [ $rc -lt 128 ]; } || fail "--iters 0 (exit $rc)"
"$JANUS" bench --config "$SRC/bench/configs/mlp.json" --device cuda:7 > out.txt 2> err.txt
rc=$?
{ [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "janus: error:" err.txt; } || fail "bad device (exit $rc)"

if [ $FAILED -ne 0 ]; then echo "test_bench_cli: FAILED"; exit 1; fi
echo "test_bench_cli: all passed"
