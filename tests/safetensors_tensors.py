# Compares the tensors of safetensors checkpoints in the CLI tests, byte for
# byte (the metadata, which holds the run's config, aside):
#   python3 safetensors_tensors.py equal|differ A B   exit 0 when the tensors are equal / differ (same names)
#   python3 safetensors_tensors.py f32 A              exit 0 when every tensor of A is F32
import json
import struct
import sys


def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    d = b[8 + n:]
    return {k: (v["dtype"], d[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items() if k != "__metadata__"}


a = tensors(sys.argv[2])
if sys.argv[1] == "f32":
    sys.exit(0 if all(dt == "F32" for dt, _ in a.values()) else 1)
b = tensors(sys.argv[3])
if sys.argv[1] == "equal":
    sys.exit(0 if a and a == b else 1)
if sys.argv[1] == "differ":
    sys.exit(0 if a.keys() == b.keys() and a != b else 1)
sys.exit(f"unknown mode {sys.argv[1]!r}")
