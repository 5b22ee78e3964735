#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ (small valid files and a few
broken ones). Deterministic; run from anywhere:
    python3 fuzz/make_corpus.py [CHECKPOINT.safetensors]
The optional checkpoint (e.g. experiments/iris/last.safetensors from a
one-epoch `janus train --config configs/iris.json`) is added to the
safetensors corpus as is; a small conv-model checkpoint is always written."""
import gzip, json, os, struct, sys, zlib

ROOT = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(ROOT)
C = os.path.join(ROOT, "corpus")


def put(target, name, data):
    d = os.path.join(C, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(b):
    return gzip.compress(b, mtime=0)


# ---- cifar10 -----------------------------------------------------------------
def cifar_record(label, seed):
    return bytes([label]) + bytes((seed * 31 + i * 7) % 256 for i in range(3072))

put("cifar10", "valid_1.bin", cifar_record(3, 1))
put("cifar10", "valid_2.bin", cifar_record(0, 2) + cifar_record(9, 3))
put("cifar10", "bad_label.bin", cifar_record(10, 4))
put("cifar10", "truncated.bin", cifar_record(1, 5)[:-1])
put("cifar10", "trailing.bin", cifar_record(1, 5) + b"\x00")
put("cifar10", "empty.bin", b"")

# ---- idx ---------------------------------------------------------------------
def idx_labels(labels):
    return struct.pack(">II", 0x801, len(labels)) + bytes(labels)

def idx_images(n, r, c):
    return struct.pack(">IIII", 0x803, n, r, c) + bytes((i * 13) % 256 for i in range(n * r * c))

def idx_input(flags, labels, images):
    return bytes([flags]) + struct.pack("<H", len(labels)) + labels + images

L3, I3 = idx_labels([1, 0, 9]), idx_images(3, 2, 2)
put("idx", "plain", idx_input(0, L3, I3))
put("idx", "gzip_by_harness", idx_input(3, L3, I3))
put("idx", "gzip_raw", idx_input(0, gz(L3), gz(I3)))
put("idx", "gzip_images_only", idx_input(0, L3, gz(I3)))
put("idx", "bad_magic", idx_input(0, L3, struct.pack(">I", 0x804) + I3[4:]))
put("idx", "count_mismatch", idx_input(0, idx_labels([1, 2]), I3))
put("idx", "truncated_images", idx_input(0, L3, I3[:-3]))
put("idx", "label_out_of_range", idx_input(0, idx_labels([1, 0, 12]), I3))
put("idx", "claims_2gib", idx_input(0, L3, struct.pack(">IIII", 0x803, 3, 32768, 32768)))
put("idx", "gzip_claims_2gib", idx_input(0, gz(L3), gz(struct.pack(">IIII", 0x803, 3, 32768, 32768))))
put("idx", "gzip_truncated", idx_input(0, L3, gz(I3)[:-6]))
put("idx", "gzip_trailing", idx_input(0, L3, gz(I3 + b"xyz")))

# ---- iris_csv ----------------------------------------------------------------
with open(os.path.join(SRC, "datasets", "iris.csv")) as f:
    iris = f.read().splitlines()
small = "\n".join(iris[:4] + iris[51:53] + iris[101:103]) + "\n"
put("iris_csv", "valid", small)
put("iris_csv", "valid_crlf", small.replace("\n", "\r\n"))
put("iris_csv", "blank_lines", "\n" + small.replace("\n", "\n\n"))
put("iris_csv", "missing_field", iris[0] + "\n5.1,3.5,1.4,setosa\n")
put("iris_csv", "not_a_number", iris[0] + "\n5.1,abc,1.4,0.2,setosa\n")
put("iris_csv", "nan", iris[0] + "\n5.1,nan,1.4,0.2,setosa\ninf,1,1,1,x\n")
put("iris_csv", "header_only", iris[0] + "\n")
put("iris_csv", "extra_field", iris[0] + "\n5.1,3.5,1.4,0.2,setosa,1\n")
put("iris_csv", "empty_species", iris[0] + "\n5.1,3.5,1.4,0.2,\n")
# beyond float32 (finite as a double), and RFC 4180: quoting, CRLF, a BOM, no final line end
put("iris_csv", "float32_overflow", iris[0] + "\n1e39,3.5,1.4,0.2,setosa\n-3.5e38,1,1,1,x\n")
put("iris_csv", "float32_underflow", iris[0] + "\n1e-50,3.5,1.4,0.2,setosa\n")
put("iris_csv", "rfc4180_quoted", '\ufeff' + iris[0] + '\r\n"5.1",3.5,1.4,0.2,"setosa, ""wild"""\r\n'
    '4.9,3.0,1.4,0.2,"virgi\r\nnica"')
put("iris_csv", "open_quote", iris[0] + '\n5.1,3.5,1.4,0.2,"setosa\n')
put("iris_csv", "text_after_quote", iris[0] + '\n5.1,3.5,1.4,0.2,"setosa"x\n')
put("iris_csv", "bare_quote", iris[0] + '\n5.1,3"5,1.4,0.2,setosa\n')
put("iris_csv", "nul_in_number", iris[0] + "\n5.1\0" + "9,3.5,1.4,0.2,setosa\n")

# ---- run_config ----------------------------------------------------------------
for name in sorted(os.listdir(os.path.join(SRC, "configs"))):
    if name.endswith(".json"):
        with open(os.path.join(SRC, "configs", name)) as f:
            put("run_config", name, f.read())
with open(os.path.join(SRC, "configs", "iris.json")) as f:
    base = json.load(f)
def variant(name, change):
    c = json.loads(json.dumps(base))
    change(c)
    put("run_config", name, json.dumps(c))
variant("unknown_key.json", lambda c: c.update(batch_sise=3))
variant("wrong_type.json", lambda c: c.update(epochs="ten"))
variant("negative_batch.json", lambda c: c.update(batch_size=-1))
variant("bad_dataset.json", lambda c: c["dataset"].update(name="mnist"))
# numeric fields outside their documented domains (include/janus/trainer.hpp)
variant("domain_min_lr.json", lambda c: c.update(schedule={"type": "cosine", "lr": 0.1, "min_lr": -2}))
variant("domain_beta2.json", lambda c: c.update(optimizer={"type": "adam", "beta2": 1.5}))
variant("domain_div_factor.json", lambda c: c.update(schedule={"type": "onecycle", "lr": 0.1, "div_factor": 0}))
variant("domain_step_size.json", lambda c: c.update(schedule={"type": "step", "lr": 0.1, "step_size": 1e300}))
variant("drop_last_auto.json", lambda c: c.update(drop_last="auto"))
variant("fractions.json", lambda c: c["dataset"].update(validation_fraction=0.6, test_fraction=0.5))
variant("augment_iris.json", lambda c: c["dataset"].update(augment={"crop_pad": 4, "flip": True}))
variant("bad_optimizer.json", lambda c: c.update(optimizer={"type": "adam", "beta1": "x"}))
variant("cosine.json", lambda c: c.update(schedule={"type": "cosine", "lr": 0.1, "warmup_steps": 3}))
variant("onecycle.json", lambda c: c.update(schedule={"type": "onecycle", "lr": 0.1}))
variant("bad_layer.json", lambda c: c["model"]["layers"].append({"type": "conv3d"}))
variant("files.json", lambda c: c["dataset"].update(train=["a.csv"], validation=["b.csv"], validation_fraction=0.0))
put("run_config", "not_object.json", "[1, 2, 3]")
put("run_config", "empty_object.json", "{}")

# ---- model_config (first byte: input shape 0 dense (2,4), 1 (2,8,8,3), 2 (1,5,7,1)) ----
def model(shape_byte, cfg):
    return bytes([shape_byte]) + json.dumps(cfg).encode()
put("model_config", "iris", model(0, base["model"]))
put("model_config", "conv", model(1, {"layers": [
    {"type": "conv2d", "n_out": 4, "kernel": 3, "activation": "relu"},
    {"type": "batchnorm"},
    {"type": "maxpool2d", "kernel": 2},
    {"type": "dropout", "p": 0.25},
    {"type": "flatten"},
    {"type": "fully_connected", "n_out": 10, "activation": "softmax"}], "loss": "cross_entropy", "seed": 3}))
put("model_config", "conv_valid_stride", model(2, {"layers": [
    {"type": "conv2d", "n_out": 2, "kernel": [3, 2], "stride": 2, "pad": "valid", "bias": False},
    {"type": "avgpool2d", "kernel": 2, "stride": 1, "pad": 1},
    {"type": "flatten"}, {"type": "dense", "n_out": 3}, {"type": "softmax"}], "loss": "mse"}))
put("model_config", "kernel_too_large", model(2, {"layers": [
    {"type": "conv2d", "n_out": 2, "kernel": 9, "pad": "valid"}, {"type": "flatten"},
    {"type": "fully_connected", "n_out": 2}]}))
put("model_config", "pool_no_output", model(1, {"layers": [
    {"type": "pool2d", "kernel": 16}, {"type": "flatten"}, {"type": "fully_connected", "n_out": 2}]}))
put("model_config", "dense_on_image", model(1, {"layers": [{"type": "fully_connected", "n_out": 2}]}))
put("model_config", "conv_on_dense", model(0, {"layers": [{"type": "conv2d", "n_out": 2, "kernel": 1}]}))
put("model_config", "explicit_pad", model(1, {"layers": [
    {"type": "conv2d", "n_out": 2, "kernel": 5, "pad": [2, 1], "activation": "sigmoid", "init": "he_normal"},
    {"type": "activation", "activation": "tanh"}, {"type": "flatten"},
    {"type": "linear", "n_out": 2, "activation": "softmax"}], "loss": "cross_entropy"}))
put("model_config", "empty", model(0, {"layers": []}))
put("model_config", "duplicate_names", model(0, {"layers": [
    {"type": "dense", "n_out": 2, "name": "a"}, {"type": "dense", "n_out": 2, "name": "a"}]}))

# ---- safetensors ---------------------------------------------------------------
def safetensors(tensors, meta):
    header, data = {}, b""
    for name, (shape, values) in tensors.items():
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    meta = dict(meta)
    meta.update({"format": "janus-checkpoint", "format_version": "1", "crc32": str(zlib.crc32(data))})
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data

cfg = {"layers": [{"type": "conv2d", "n_out": 2, "kernel": 3, "pad": "same", "activation": "relu",
                   "name": "c", "stride": 1, "init": "xavier_uniform", "bias": True},
                  {"type": "flatten", "name": "f"},
                  {"type": "fully_connected", "n_out": 2, "activation": "softmax", "name": "fc",
                   "init": "xavier_uniform"}], "loss": "cross_entropy", "seed": 0}
tens = {"c.W": ([3, 3, 1, 2], [0.01 * i for i in range(18)]), "c.b": ([2], [0.0, 0.1]),
        "fc.W": ([32, 2], [0.001 * i for i in range(64)]), "fc.b": ([1, 2], [0.0, 0.0])}
meta = {"model": json.dumps(cfg), "input_shape": json.dumps([1, 4, 4, 1])}
good = safetensors(tens, meta)
put("safetensors", "conv_model.safetensors", good)
put("safetensors", "no_model_meta.safetensors", safetensors({"x": ([2, 2], [1, 2, 3, 4])}, {}))
put("safetensors", "truncated.safetensors", good[:-5])
put("safetensors", "bad_crc.safetensors", good[:-1] + bytes([good[-1] ^ 1]))
put("safetensors", "header_too_long.safetensors", struct.pack("<Q", 1 << 40) + good[8:])
bad_shape = dict(tens); bad_shape["fc.W"] = ([2, 32], tens["fc.W"][1])
put("safetensors", "shape_mismatch.safetensors", safetensors(bad_shape, meta))
put("safetensors", "bad_input_shape.safetensors", safetensors(tens, dict(meta, input_shape='"x"')))
put("safetensors", "bad_model_json.safetensors", safetensors(tens, dict(meta, model="{")))
# Against the reference reader's validation (the safetensors crate): F64 and
# mixed dtypes (read and converted), a float64 beyond float32, dtypes Janus
# does not read, unknown dtypes, gaps, overlaps, trailing bytes, duplicate
# keys, non-string metadata, a header over 100,000,000 bytes.
def raw_safetensors(entries, meta, data, header_text=None):
    header = dict(entries)
    header["__metadata__"] = meta
    h = header_text(header) if header_text else json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data

def packed(dtypes, values=None):
    entries, data = {}, b""
    for name, (shape, vals) in tens.items():
        dt = dtypes.get(name, "F32")
        vals = (values or {}).get(name, vals)
        b = struct.pack("<%d%s" % (len(vals), "d" if dt == "F64" else "f"), *vals)
        if dt not in ("F32", "F64"):
            b = b[:len(b) // 2]
        entries[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    return entries, data

plain_meta = {"model": meta["model"], "input_shape": meta["input_shape"]}
e, d = packed({k: "F64" for k in tens})
put("safetensors", "f64.safetensors", raw_safetensors(e, plain_meta, d))
e, d = packed({"fc.W": "F64"})
put("safetensors", "mixed_f32_f64.safetensors", raw_safetensors(e, plain_meta, d))
e, d = packed({k: "F64" for k in tens}, {"c.b": [1e300, 0.0]})
put("safetensors", "f64_beyond_f32.safetensors", raw_safetensors(e, plain_meta, d))
e, d = packed({"c.b": "F16"})
put("safetensors", "f16.safetensors", raw_safetensors(e, plain_meta, d))
e, d = packed({"c.b": "Q8"})
put("safetensors", "unknown_dtype.safetensors", raw_safetensors(e, plain_meta, d))
e, d = packed({})
put("safetensors", "trailing_bytes.safetensors", raw_safetensors(e, plain_meta, d + b"\0" * 8))
e2 = json.loads(json.dumps(e)); e2["fc.b"]["data_offsets"] = [x + 4 for x in e2["fc.b"]["data_offsets"]]
put("safetensors", "gap.safetensors", raw_safetensors(e2, plain_meta, d + b"\0" * 4))
e2 = json.loads(json.dumps(e)); e2["c.b"]["data_offsets"] = [0, 8]
put("safetensors", "overlap.safetensors", raw_safetensors(e2, plain_meta, d))
put("safetensors", "duplicate_key.safetensors", raw_safetensors(e, plain_meta, d, header_text=lambda h: (
    json.dumps(h)[:-1] + ', "c.b": ' + json.dumps(h["c.b"]) + "}").encode()))
put("safetensors", "metadata_number.safetensors", raw_safetensors(e, dict(plain_meta, epochs=3), d))
put("safetensors", "header_over_limit.safetensors", struct.pack("<Q", 100000001) + b"{}")
if len(sys.argv) > 1:
    with open(sys.argv[1], "rb") as f:
        put("safetensors", "iris_last.safetensors", f.read())
print("corpora written to", C)
