#!/usr/bin/env python3
"""Golden values of bf16 mixed precision from PyTorch's CPU autocast
(torch.autocast("cpu", dtype=torch.bfloat16)), for tests/test_golden.cpp
(GoldenBf16 tests):

    /usr/bin/python3 tests/golden/generate_bf16.py     # writes tests/golden/data/bf16_autocast.json

Cases: a conv2d layer (with bias) and a dense layer, forward and backward
(Y, dX, dW, db for an upstream dY), and a whole small model (conv tanh, average
pool, flatten, dense softmax with cross-entropy): output, loss, every
parameter gradient. Inputs are float32 values (stored exactly in the JSON);
outputs are autocast's bf16 (layers) or float32 (loss, gradients of the
float32 leaves) values, in Janus's layouts (NHWC, HWIO, (1, n_out) biases).

How the test bounds the difference: see test_golden.cpp (GoldenBf16). This
generator adds, for the whole model, the condition number of each bf16
product stage (kappa = ||(|A||B|)||_F / ||AB||_F, float64) that the test's
first-order bound uses. The reduction lengths are kept below 2^8 so that the
bound of bf16 summation (gamma_n = n 2^-8 / (1 - n 2^-8)) exists: PyTorch
1.13 sums in bf16 on CPUs without AVX-512 (measured: 4096 ones sum to 256).
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from generate import OUT, conv_nhwc, gen, randn, t  # noqa: E402

BF16 = dict(device_type="cpu", dtype=torch.bfloat16)


def leaf32(x):
    return x.float().clone().detach().requires_grad_(True)


def f64(x):
    return x.detach().double()


def kappa(a, b):
    """Condition of a product stage: ||(|A||B|)||_F / ||AB||_F (float64)."""
    return ((a.abs() @ b.abs()).norm() / (a @ b).norm()).item()


def conv_case(name, g, n, h, w_, c, f, k, s, pad):
    x, w = randn(g, n, h, w_, c).float(), randn(g, k, k, c, f, scale=0.5).float()
    b = randn(g, 1, f, scale=0.5).float()
    oh, ow = (h + 2 * pad - k) // s + 1, (w_ + 2 * pad - k) // s + 1
    dy = randn(g, n, oh, ow, f).float()
    xl, wl, bl = leaf32(x), leaf32(w), leaf32(b)
    with torch.autocast(**BF16):
        y = conv_nhwc(xl, wl, bl, s, pad, pad)
    assert y.dtype == torch.bfloat16
    y.backward(dy)
    return {"name": name, "kernel": [k, k], "stride": s, "pad": pad, "n_out": f,
            "x": t(f64(x)), "W": t(f64(w)), "b": t(f64(b)), "dy": t(f64(dy)),
            "y": t(f64(y)), "dx": t(f64(xl.grad)), "dW": t(f64(wl.grad)), "db": t(f64(bl.grad))}


def dense_case(name, g, m, n_in, n_out):
    x, w = randn(g, m, n_in).float(), randn(g, n_in, n_out, scale=0.5).float()
    b, dy = randn(g, 1, n_out, scale=0.5).float(), randn(g, m, n_out).float()
    xl, wl, bl = leaf32(x), leaf32(w), leaf32(b)
    with torch.autocast(**BF16):
        y = F.linear(xl, wl.t(), bl.reshape(-1))
    assert y.dtype == torch.bfloat16
    y.backward(dy)
    return {"name": name, "x": t(f64(x)), "W": t(f64(w)), "b": t(f64(b)), "dy": t(f64(dy)),
            "y": t(f64(y)), "dx": t(f64(xl.grad)), "dW": t(f64(wl.grad)), "db": t(f64(bl.grad))}


def model_case(g):
    """conv 3x3 tanh -> average pool 2 -> flatten -> dense softmax, cross-entropy.
    Smooth activations and a linear pooling: no ReLU sign or max-pool winner
    can differ between Janus and torch, so first-order propagation holds."""
    m, h, c, f, k = 4, 6, 3, 4, 10
    x = randn(g, m, h, h, c).float()
    p = {"conv.W": randn(g, 3, 3, c, f, scale=0.4).float(), "conv.b": randn(g, 1, f, scale=0.2).float(),
         "fc.W": randn(g, 3 * 3 * f, k, scale=0.4).float(), "fc.b": randn(g, 1, k, scale=0.2).float()}
    y = F.one_hot(torch.randint(0, k, (m,), generator=g), k).float()
    pl = {n: leaf32(v) for n, v in p.items()}
    with torch.autocast(**BF16):
        z0 = conv_nhwc(x, pl["conv.W"], pl["conv.b"], 1, 1, 1)
        a0 = torch.tanh(z0)
        pooled = F.avg_pool2d(a0.permute(0, 3, 1, 2), 2, stride=2).permute(0, 2, 3, 1)
        z1 = F.linear(pooled.reshape(m, -1), pl["fc.W"].t(), pl["fc.b"].reshape(-1))
    yhat = torch.softmax(z1.float(), dim=-1)
    j = -(y * torch.log_softmax(z1.float(), dim=-1)).sum() / m
    j.backward()

    # Condition numbers of the bf16 product stages, in float64 on the
    # exact (unrounded) operands: conv forward as its im2col product.
    xd, wd = x.double(), p["conv.W"].double()
    cols = F.unfold(xd.permute(0, 3, 1, 2), 3, padding=1).transpose(1, 2).reshape(-1, 9 * c)
    wmat = wd.permute(3, 2, 0, 1).reshape(f, -1).t()
    hd = f64(pooled).reshape(m, -1)
    dz1 = (torch.softmax(f64(z1), -1) - y.double()) / m
    kap = {"conv": kappa(cols, wmat), "fc": kappa(hd, p["fc.W"].double()),
           "fc_dW": kappa(hd.t(), dz1), "fc_dx": kappa(dz1, p["fc.W"].double().t())}
    return {"name": "conv_tanh_avgpool_flatten_dense_softmax_ce", "loss": "cross_entropy",
            "layers": [{"type": "conv2d", "name": "conv", "n_out": f, "kernel": [3, 3], "stride": 1,
                        "pad": "same", "activation": "tanh"},
                       {"type": "pool2d", "name": "pool", "mode": "average", "kernel": [2, 2], "stride": 2,
                        "pad": "valid"},
                       {"type": "flatten", "name": "flat"},
                       {"type": "fully_connected", "name": "fc", "n_out": k, "activation": "softmax"}],
            "x": t(f64(x)), "target": t(y.double()), "yhat": t(f64(yhat)), "J": j.item(),
            "kappa": kap, "reduction": {"conv": 9 * c, "fc": 9 * f, "conv_dW": m * h * h, "fc_dW": m},
            "params": [{"name": n, "value": t(p[n].double()), "grad": t(f64(pl[n].grad))} for n in p]}


def main():
    g = gen(14)
    cases = [conv_case("conv_3x3_s1_pad1", g, 2, 5, 5, 4, 3, 3, 1, 1),
             conv_case("conv_3x3_s2_pad1_odd", g, 2, 7, 6, 3, 5, 3, 2, 1),
             dense_case("dense_6x24to7", g, 6, 24, 7),
             dense_case("dense_3x100to4", g, 3, 100, 4),
             model_case(g)]
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "bf16_autocast.json")
    with open(path, "w") as fh:
        json.dump({"family": "bf16_autocast", "generator": "tests/golden/generate_bf16.py",
                   "torch": torch.__version__, "cases": cases}, fh, separators=(",", ":"))
    print(f"{path}: {len(cases)} cases, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
