#!/usr/bin/env python3
"""Generates the golden test data for tests/test_golden.cpp from PyTorch.

Run with a Python that has torch (1.13 was used) and NumPy:

    /usr/bin/python3 tests/golden/generate.py            # writes tests/golden/data/*.json

Everything is computed in float64 on the CPU from fixed seeds, so the output is
deterministic. Each file holds {"family": ..., "cases": [...]}; every tensor is
{"shape": [...], "data": [flat row-major values]} in Janus's layouts:
dense (batch, features), images NHWC, conv weights HWIO (KH, KW, C_in, F),
biases (1, n_out), BatchNorm gamma/beta/running stats (C).

Torch works in NCHW/OIHW; the leaves of every autograd graph here are created
directly in the Janus layout and permuted inside the graph, so the gradients
that autograd returns are already in the Janus layout.

Gradients are those of L = sum(Y * dY) for a random upstream gradient dY, i.e.
backward(dY) of the layer.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def t(x):
    """A tensor as {"shape", "data"} with full double precision (repr)."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(g, *shape, scale=1.0):
    return torch.randn(*shape, generator=g) * scale


def leaf(x):
    return x.clone().detach().requires_grad_(True)


def act_fn(name, negative_slope=0.01):
    return {
        "linear": lambda z: z,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "softmax": lambda z: torch.softmax(z, dim=-1),
        "gelu": torch.nn.GELU(),  # approximate='none': the erf form
        "silu": torch.nn.SiLU(),
        "leaky_relu": torch.nn.LeakyReLU(negative_slope),
    }[name]


def check_away_from_zero(z, what, margin=1e-3):
    """float32 rounding must not flip the sign of a ReLU pre-activation."""
    a = z.detach().abs()
    nz = a[a != 0]
    assert nz.numel() == 0 or nz.min().item() > margin, f"{what}: pre-activation too close to 0"


def write(name, family, cases):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump({"family": family, "generator": "tests/golden/generate.py", "torch": torch.__version__,
                   "cases": cases}, f, separators=(",", ":"))
    print(f"{path}: {len(cases)} cases, {os.path.getsize(path)} bytes")


# ----------------------------------------------------------------- activations
def activations():
    cases = []
    g = gen(1)
    for name in ["linear", "sigmoid", "tanh", "relu", "softmax"]:
        z = randn(g, 4, 5, scale=2.0)
        cases.append((name, name, z))
    # ReLU with exact zeros: torch (and Janus) use derivative 0 at z == 0.
    z = randn(g, 3, 4)
    z[0, 1] = 0.0
    z[1, 0] = 0.0
    z[2, 3] = -0.0
    z[2, 2] = 0.0
    cases.append(("relu_exact_zeros", "relu", z))
    # SoftMax with large logits (naive exp overflows) and a row with a tie.
    z = torch.tensor([[1000.0, 1001.0, 1002.0, 999.0], [-1000.0, 0.0, 1000.0, 500.0],
                      [88.0, 89.5, 90.0, 87.0], [5.0, 5.0, 5.0, 5.0], [-50.0, -49.0, -60.0, -48.5]])
    cases.append(("softmax_large_logits", "softmax", z))
    # Sigmoid/TanH saturation.
    z = torch.tensor([[-30.0, -5.0, 0.0, 5.0, 30.0], [-0.5, 0.25, 1e-3, -1e-3, 12.0]])
    cases.append(("sigmoid_saturation", "sigmoid", z))
    cases.append(("tanh_saturation", "tanh", z.clone()))
    out = []
    for cname, act, z in cases:
        dy = randn(g, *z.shape)
        zl = leaf(z)
        y = act_fn(act)(zl)
        y.backward(dy)
        out.append({"name": cname, "activation": act, "z": t(z), "dy": t(dy), "y": t(y), "dz": t(zl.grad)})
    write("activations.json", "activations", out + added_activation_cases())


def added_activation_cases():
    """GELU, SiLU, LeakyReLU: drawn from their own seed after the first cases,
    so that adding them left every earlier case unchanged."""
    g = gen(11)
    cases = []
    for name in ["gelu", "silu", "leaky_relu"]:
        cases.append((name, name, None, randn(g, 4, 5, scale=2.0)))
    cases.append(("leaky_relu_slope_0.2", "leaky_relu", 0.2, randn(g, 3, 4)))
    cases.append(("leaky_relu_negative_slope", "leaky_relu", -0.3, randn(g, 3, 4)))
    # Exact zeros: torch's LeakyReLU derivative at 0 is the slope (z > 0 is false).
    z = randn(g, 2, 4)
    z[0, 1] = 0.0
    z[1, 2] = -0.0
    cases.append(("leaky_relu_exact_zeros", "leaky_relu", 0.1, z))
    # Tails: GELU's left tail (1 + erf cancels there) and SiLU's, and large z.
    z = torch.tensor([[-10.0, -6.0, -4.0, -2.5, -0.7518, 0.0], [1e-3, -1e-3, 0.5, 2.5, 6.0, 10.0]])
    cases.append(("gelu_tails", "gelu", None, z))
    cases.append(("silu_tails", "silu", None, z.clone() * 3.0))
    out = []
    for cname, act, slope, z in cases:
        dy = randn(g, *z.shape)
        zl = leaf(z)
        y = act_fn(act, 0.01 if slope is None else slope)(zl)
        y.backward(dy)
        case = {"name": cname, "activation": act, "z": t(z), "dy": t(dy), "y": t(y), "dz": t(zl.grad)}
        if slope is not None:
            case["negative_slope"] = slope
        out.append(case)
    return out


# -------------------------------------------------------------- fully connected
def fully_connected():
    out = []
    g = gen(2)
    for i, act in enumerate(["linear", "sigmoid", "tanh", "relu", "softmax"]):
        m, n_in, n_out = [(5, 4, 3), (3, 6, 2), (1, 3, 4), (6, 5, 4), (4, 7, 5)][i]
        x = randn(g, m, n_in)
        w = randn(g, n_in, n_out, scale=0.7)
        b = randn(g, 1, n_out, scale=0.5)
        dy = randn(g, m, n_out)
        xl, wl, bl = leaf(x), leaf(w), leaf(b)
        z = xl @ wl + bl
        if act == "relu":
            check_away_from_zero(z, "fc relu")
        y = act_fn(act)(z)
        y.backward(dy)
        out.append({"name": f"fc_{act}_{m}x{n_in}to{n_out}", "activation": act, "x": t(x), "W": t(w), "b": t(b),
                    "dy": t(dy), "y": t(y), "dx": t(xl.grad), "dW": t(wl.grad), "db": t(bl.grad)})
    write("fully_connected.json", "fully_connected", out + added_fully_connected_cases())


def added_fully_connected_cases():
    """The newer activations and "bias": false, from their own seed (earlier cases unchanged)."""
    out = []
    g = gen(12)
    for act, bias, (m, n_in, n_out) in [("gelu", True, (5, 4, 3)), ("silu", True, (3, 6, 2)),
                                        ("leaky_relu", True, (4, 5, 3)), ("linear", False, (4, 3, 5)),
                                        ("gelu", False, (2, 4, 3))]:
        x = randn(g, m, n_in)
        w = randn(g, n_in, n_out, scale=0.7)
        b = randn(g, 1, n_out, scale=0.5) if bias else None
        dy = randn(g, m, n_out)
        xl, wl = leaf(x), leaf(w)
        bl = leaf(b) if bias else None
        z = xl @ wl + (bl if bias else 0.0)
        if act == "leaky_relu":
            check_away_from_zero(z, "fc leaky_relu")
        y = act_fn(act)(z)
        y.backward(dy)
        case = {"name": f"fc_{act}_{m}x{n_in}to{n_out}" + ("" if bias else "_nobias"), "activation": act,
                "bias": bias, "x": t(x), "W": t(w), "dy": t(dy), "y": t(y), "dx": t(xl.grad), "dW": t(wl.grad)}
        if bias:
            case["b"] = t(b)
            case["db"] = t(bl.grad)
        out.append(case)
    return out


# --------------------------------------------------------------------- conv2d
def resolve_pad(pad, kh, kw):
    if pad == "same":
        return (kh - 1) // 2, (kw - 1) // 2
    if pad == "valid":
        return 0, 0
    return int(pad), int(pad)


def conv_nhwc(x, w, b, stride, ph, pw, groups=1):
    """x NHWC, w HWIO (KH, KW, C / groups, F), b (1, F) or None -> NHWC, through torch's NCHW conv."""
    y = F.conv2d(x.permute(0, 3, 1, 2), w.permute(3, 2, 0, 1), None if b is None else b.reshape(-1),
                 stride=stride, padding=(ph, pw), groups=groups)
    return y.permute(0, 2, 3, 1)


def conv2d():
    specs = [
        # name, N, H, W, C, F, KH, KW, stride, pad, bias, activation
        ("same_3x3_s1", 2, 5, 5, 3, 4, 3, 3, 1, "same", True, "linear"),
        ("same_3x3_s2_odd_7x5", 2, 7, 5, 2, 3, 3, 3, 2, "same", True, "linear"),
        ("valid_3x2_batch1_nobias", 1, 7, 5, 3, 2, 3, 2, 1, "valid", False, "linear"),
        ("pad1_1x3_s2", 2, 6, 6, 2, 3, 1, 3, 2, 1, True, "linear"),
        ("pad2_5x5_relu_1ch", 1, 5, 7, 1, 2, 5, 5, 1, 2, True, "relu"),
        ("valid_2x2_s2_tanh", 3, 4, 4, 4, 2, 2, 2, 2, "valid", True, "tanh"),
        ("valid_3x3_s2_leftover_8x8_nobias", 2, 8, 8, 2, 2, 3, 3, 2, "valid", False, "linear"),
        ("same_even_4x4_6x6", 1, 6, 6, 2, 3, 4, 4, 1, "same", True, "sigmoid"),
        ("pad2_3x3_s3_7x8", 2, 7, 8, 3, 2, 3, 3, 3, 2, True, "linear"),
        ("valid_1x1_s1", 2, 3, 4, 5, 3, 1, 1, 1, "valid", True, "linear"),
        ("same_5x3_s1_relu", 2, 6, 5, 2, 3, 5, 3, 1, "same", True, "relu"),
    ]
    out = []
    g = gen(3)
    for name, n, h, w_, c, f, kh, kw, s, pad, bias, act in specs:
        ph, pw = resolve_pad(pad, kh, kw)
        x = randn(g, n, h, w_, c)
        w = randn(g, kh, kw, c, f, scale=0.5)
        b = randn(g, 1, f, scale=0.5) if bias else None
        oh, ow = (h + 2 * ph - kh) // s + 1, (w_ + 2 * pw - kw) // s + 1
        dy = randn(g, n, oh, ow, f)
        xl, wl = leaf(x), leaf(w)
        bl = leaf(b) if bias else None
        z = conv_nhwc(xl, wl, bl, s, ph, pw)
        assert tuple(z.shape) == (n, oh, ow, f)
        if act == "relu":
            check_away_from_zero(z, name)
        y = act_fn(act)(z)
        y.backward(dy)
        case = {"name": name, "kernel": [kh, kw], "stride": s, "pad": pad, "bias": bias, "activation": act,
                "n_out": f, "x": t(x), "W": t(w), "dy": t(dy), "y": t(y), "dx": t(xl.grad), "dW": t(wl.grad)}
        if bias:
            case["b"] = t(b)
            case["db"] = t(bl.grad)
        out.append(case)
    write("conv2d.json", "conv2d", out + added_conv2d_cases() + grouped_conv2d_cases())


def added_conv2d_cases():
    """The newer activations (their backward reads z, which the layer then
    keeps), from their own seed (earlier cases unchanged)."""
    specs = [
        # name, N, H, W, C, F, KH, KW, stride, pad, bias, activation, groups
        ("gelu_3x3_s1", 2, 4, 4, 2, 3, 3, 3, 1, "same", True, "gelu", 1),
        ("silu_3x3_s2", 2, 6, 6, 3, 3, 3, 3, 2, "same", True, "silu", 1),
        ("leaky_relu_2x2_s1", 1, 5, 5, 3, 2, 2, 2, 1, "valid", False, "leaky_relu", 1),
    ]
    return conv2d_cases(specs, gen(13))


def grouped_conv2d_cases():
    """Grouped convolutions (torch's groups=G; weights HWIO with I = C / G) and
    depthwise ones (G = C, F = C * multiplier): stride 1/2, padding, non-square
    kernels, 1x1; from their own seed (earlier cases unchanged)."""
    specs = [
        # name, N, H, W, C, F, KH, KW, stride, pad, bias, activation, groups
        ("groups2_3x3_s1_same", 2, 5, 5, 4, 6, 3, 3, 1, "same", True, "linear", 2),
        ("groups2_3x3_s2_pad1_relu_nobias", 2, 7, 6, 4, 4, 3, 3, 2, 1, False, "relu", 2),
        ("depthwise_3x3_s1_same", 2, 5, 5, 3, 3, 3, 3, 1, "same", True, "linear", 3),
        ("depthwise_mult2_3x3_s2_pad1_tanh", 2, 7, 7, 3, 6, 3, 3, 2, 1, True, "tanh", 3),
        ("groups3_1x1_pointwise", 1, 3, 4, 6, 9, 1, 1, 1, "valid", True, "linear", 3),
        ("depthwise_5x3_s2_valid_nobias", 1, 8, 7, 4, 4, 5, 3, 2, "valid", False, "linear", 4),
    ]
    return conv2d_cases(specs, gen(17), with_groups=True)


def conv2d_cases(specs, g, with_groups=False):
    """One golden case per spec, drawing x, W, b and dy from generator g."""
    out = []
    for name, n, h, w_, c, f, kh, kw, s, pad, bias, act, groups in specs:
        ph, pw = resolve_pad(pad, kh, kw)
        x = randn(g, n, h, w_, c)
        w = randn(g, kh, kw, c // groups, f, scale=0.5)
        b = randn(g, 1, f, scale=0.5) if bias else None
        oh, ow = (h + 2 * ph - kh) // s + 1, (w_ + 2 * pw - kw) // s + 1
        dy = randn(g, n, oh, ow, f)
        xl, wl = leaf(x), leaf(w)
        bl = leaf(b) if bias else None
        z = conv_nhwc(xl, wl, bl, s, ph, pw, groups)
        assert tuple(z.shape) == (n, oh, ow, f)
        if act in ("relu", "leaky_relu"):
            check_away_from_zero(z, name)
        y = act_fn(act)(z)
        y.backward(dy)
        case = {"name": name, "kernel": [kh, kw], "stride": s, "pad": pad, "bias": bias, "activation": act,
                "n_out": f, "x": t(x), "W": t(w), "dy": t(dy), "y": t(y), "dx": t(xl.grad),
                "dW": t(wl.grad)}
        if with_groups:
            case["groups"] = groups
        if bias:
            case["b"] = t(b)
            case["db"] = t(bl.grad)
        out.append(case)
    return out


# --------------------------------------------------------------------- pool2d
def pool_reference(x, dy, mode, kh, kw, s, ph, pw):
    """Loop reference on NHWC NumPy arrays. Max: padding never wins, ties go to
    the first position in row-major window order (strict '>' while scanning).
    Average: divisor KH*KW always (count_include_pad)."""
    n, h, w, c = x.shape
    oh, ow = (h + 2 * ph - kh) // s + 1, (w + 2 * pw - kw) // s + 1
    y = np.zeros((n, oh, ow, c))
    dx = np.zeros_like(x)
    for b in range(n):
        for r in range(oh):
            for q in range(ow):
                for ch in range(c):
                    best, arg, total = None, None, 0.0
                    for i in range(kh):
                        for j in range(kw):
                            rr, cc = r * s - ph + i, q * s - pw + j
                            if 0 <= rr < h and 0 <= cc < w:
                                v = x[b, rr, cc, ch]
                                total += v
                                if best is None or v > best:
                                    best, arg = v, (rr, cc)
                    if mode == "max":
                        y[b, r, q, ch] = best
                        dx[b, arg[0], arg[1], ch] += dy[b, r, q, ch]
                    else:
                        y[b, r, q, ch] = total / (kh * kw)
                        for i in range(kh):
                            for j in range(kw):
                                rr, cc = r * s - ph + i, q * s - pw + j
                                if 0 <= rr < h and 0 <= cc < w:
                                    dx[b, rr, cc, ch] += dy[b, r, q, ch] / (kh * kw)
    return y, dx


def check_max_separation(x, kh, kw, s, ph, pw, what, margin=1e-3):
    """float32 rounding must not change which position wins a max window:
    the winner is either an exact tie (kept exactly in float32 for the
    deliberate cases) or ahead of the runner-up by more than margin."""
    n, h, w, c = x.shape
    oh, ow = (h + 2 * ph - kh) // s + 1, (w + 2 * pw - kw) // s + 1
    for b in range(n):
        for r in range(oh):
            for q in range(ow):
                for ch in range(c):
                    vals = sorted({x[b, rr, cc, ch] for i in range(kh) for j in range(kw)
                                   for rr, cc in [(r * s - ph + i, q * s - pw + j)]
                                   if 0 <= rr < h and 0 <= cc < w}, reverse=True)
                    assert len(vals) < 2 or vals[0] - vals[1] > margin, f"{what}: near-tie in a max window"


def pool2d():
    g = gen(4)
    specs = [
        # name, mode, N, H, W, C, KH, KW, stride, pad, input kind
        ("max_2x2_s2", "max", 2, 4, 4, 3, 2, 2, 2, "valid", "randn"),
        ("max_3x3_s1_overlap", "max", 1, 5, 5, 2, 3, 3, 1, "valid", "randn"),
        ("max_3x3_s2_pad1_7x5", "max", 2, 7, 5, 2, 3, 3, 2, 1, "randn"),
        ("max_3x3_s2_pad1_all_negative", "max", 1, 5, 6, 2, 3, 3, 2, 1, "negative"),
        ("max_2x3_s1_same", "max", 2, 4, 5, 1, 2, 3, 1, "same", "randn"),
        ("max_3x3_s3_leftover", "max", 1, 8, 7, 2, 3, 3, 3, "valid", "randn"),
        ("avg_2x2_s2", "average", 2, 4, 4, 3, 2, 2, 2, "valid", "randn"),
        ("avg_3x3_s1_overlap", "average", 1, 5, 5, 2, 3, 3, 1, "valid", "randn"),
        ("avg_3x3_s2_pad1_7x5", "average", 2, 7, 5, 2, 3, 3, 2, 1, "randn"),
        ("avg_2x3_s1_same", "average", 2, 4, 5, 1, 2, 3, 1, "same", "randn"),
        ("avg_3x3_s3_leftover", "average", 1, 8, 7, 2, 3, 3, 3, "valid", "randn"),
        # Deliberate ties: constant windows, integer-valued inputs with repeats.
        ("max_ties_constant_2x2_s2", "max", 1, 4, 4, 2, 2, 2, 2, "valid", "constant"),
        ("max_ties_constant_3x3_s1_overlap", "max", 1, 5, 5, 1, 3, 3, 1, "valid", "constant"),
        ("max_ties_integers_3x3_s2_pad1", "max", 2, 6, 5, 2, 3, 3, 2, 1, "integers"),
        ("max_ties_integers_2x2_s1_overlap", "max", 1, 5, 4, 3, 2, 2, 1, "valid", "integers"),
        ("max_ties_zeros_with_pad", "max", 1, 3, 3, 1, 3, 3, 1, 1, "zeros"),
    ]
    out = []
    torch_tie_agrees = True
    for name, mode, n, h, w, c, kh, kw, s, pad, kind in specs:
        ph, pw = resolve_pad(pad, kh, kw)
        if kind == "randn":
            x = randn(g, n, h, w, c)
        elif kind == "negative":
            x = -randn(g, n, h, w, c).abs() - 1.0
        elif kind == "constant":
            x = torch.full((n, h, w, c), 0.5)
            x[..., -1] = -2.0
        elif kind == "integers":
            x = torch.randint(-1, 2, (n, h, w, c), generator=g).to(torch.float64)
        else:
            x = torch.zeros(n, h, w, c)
        oh, ow = (h + 2 * ph - kh) // s + 1, (w + 2 * pw - kw) // s + 1
        dy = randn(g, n, oh, ow, c)
        xn, dyn = x.numpy(), dy.numpy()
        if mode == "max" and kind in ("randn", "negative"):
            check_max_separation(xn, kh, kw, s, ph, pw, name)
        y_ref, dx_ref = pool_reference(xn, dyn, mode, kh, kw, s, ph, pw)
        xl = leaf(x)
        xc = xl.permute(0, 3, 1, 2)
        if mode == "max":
            yt = F.max_pool2d(xc, (kh, kw), stride=s, padding=(ph, pw))
        else:
            yt = F.avg_pool2d(xc, (kh, kw), stride=s, padding=(ph, pw), count_include_pad=True)
        yt = yt.permute(0, 2, 3, 1)
        yt.backward(dy)
        assert np.allclose(yt.detach().numpy(), y_ref, rtol=0, atol=1e-12), name
        agree = np.allclose(xl.grad.numpy(), dx_ref, rtol=0, atol=1e-12)
        if not agree:
            # Only allowed where the reference's tie rule differs from torch's.
            assert kind in ("constant", "integers", "zeros"), f"{name}: torch and loop reference disagree"
            torch_tie_agrees = False
        # The expected values are the loop reference (SPEC: first maximum in
        # row-major window order on ties), checked above against torch.
        out.append({"name": name, "mode": mode, "kernel": [kh, kw], "stride": s, "pad": pad, "x": t(x),
                    "dy": t(dy), "y": t(y_ref), "dx": t(dx_ref), "torch_agrees": bool(agree)})
    print(f"pool2d: torch's max-pool tie rule agrees with 'first in row-major order': {torch_tie_agrees}")
    write("pool2d.json", "pool2d", out)


# ------------------------------------------------------------------ batchnorm
def batchnorm():
    g = gen(5)
    out = []
    specs = [
        ("dense_train", (6, 4), True, 0.1),
        ("dense_train_momentum_0.3", (3, 5), True, 0.3),
        ("nhwc_train", (2, 3, 4, 3), True, 0.1),
        ("nhwc_train_batch1", (1, 2, 3, 2), True, 0.2),
        ("dense_eval", (5, 3), False, 0.1),
        ("nhwc_eval", (2, 2, 3, 4), False, 0.1),
    ]
    eps = 1e-5
    for name, shape, training, momentum in specs:
        c = shape[-1]
        x = randn(g, *shape, scale=1.5) + randn(g, c)  # per-channel offsets
        gamma = 1.0 + randn(g, c, scale=0.3)
        beta = randn(g, c, scale=0.3)
        rmean = randn(g, c, scale=0.5)
        rvar = 0.5 + torch.rand(c, generator=g)
        dy = randn(g, *shape)
        xl, gl, bl = leaf(x), leaf(gamma), leaf(beta)
        rm, rv = rmean.clone(), rvar.clone()
        # torch's batch_norm normalises axis 1: bring channels there.
        xc = xl.reshape(-1, c) if len(shape) == 2 else xl.permute(0, 3, 1, 2)
        yc = F.batch_norm(xc, rm, rv, gl, bl, training=training, momentum=momentum, eps=eps)
        y = yc if len(shape) == 2 else yc.permute(0, 2, 3, 1)
        case = {"name": name, "training": training, "momentum": momentum, "eps": eps, "x": t(x), "gamma": t(gamma),
                "beta": t(beta), "running_mean": t(rmean), "running_var": t(rvar), "y": t(y),
                "running_mean_after": t(rm), "running_var_after": t(rv)}
        if training:
            # Evaluation-mode forward with the statistics this step produced.
            case["y_eval_after"] = t(F.batch_norm(xc.detach(), rm, rv, gamma, beta, training=False, eps=eps)
                                     if len(shape) == 2 else
                                     F.batch_norm(xc.detach(), rm, rv, gamma, beta, training=False,
                                                  eps=eps).permute(0, 2, 3, 1))
            y.backward(dy)
            case.update({"dy": t(dy), "dx": t(xl.grad), "dgamma": t(gl.grad), "dbeta": t(bl.grad)})
        out.append(case)
    write("batchnorm.json", "batchnorm", out)


# --------------------------------------------------------------------- losses
def losses():
    g = gen(6)
    out = []

    def one_hot(m, k):
        idx = torch.randint(0, k, (m,), generator=g)
        return F.one_hot(idx, k).to(torch.float64)

    def soft(m, k):
        return torch.softmax(randn(g, m, k), dim=-1)

    # CrossEntropy on probabilities: J = -(1/m) sum Y ln Yhat.
    for name, m, k, target in [("ce_one_hot", 5, 4, "one_hot"), ("ce_soft", 3, 6, "soft"), ("ce_batch1", 1, 3, "one_hot")]:
        yhat = torch.softmax(randn(g, m, k, scale=1.5), dim=-1)
        y = one_hot(m, k) if target == "one_hot" else soft(m, k)
        yl = leaf(yhat)
        j = -(y * torch.log(yl)).sum() / m
        j.backward()
        out.append({"name": name, "loss": "cross_entropy", "yhat": t(yhat), "y": t(y), "J": j.item(),
                    "dyhat": t(yl.grad)})
    # L2: J = (1/m) sum ||y - yhat||^2 (sum over features, mean over batch).
    for name, m, k in [("l2_4x3", 4, 3), ("l2_batch1", 1, 5), ("l2_6x1", 6, 1)]:
        yhat, y = randn(g, m, k), randn(g, m, k)
        yl = leaf(yhat)
        j = ((y - yl) ** 2).sum() / m
        j.backward()
        out.append({"name": name, "loss": "l2", "yhat": t(yhat), "y": t(y), "J": j.item(), "dyhat": t(yl.grad)})
    # Fused softmax + cross-entropy on logits: J = -(1/m) sum Y log_softmax(Z).
    for name, m, k, target, scale in [("softmax_ce_one_hot", 5, 4, "one_hot", 2.0), ("softmax_ce_soft", 4, 5, "soft", 1.0),
                                      ("softmax_ce_large_logits", 3, 4, "large", 1.0),
                                      ("softmax_ce_unnormalised_targets", 3, 3, "unnormalised", 1.0)]:
        if target == "large":
            z = torch.tensor([[1000.0, 1001.0, 990.0, 1002.0], [-800.0, 800.0, 0.0, 799.0], [3.0, 3.0, 3.0, 3.0]])
            y = F.one_hot(torch.tensor([0, 1, 2]), k).to(torch.float64)
        else:
            z = randn(g, m, k, scale=scale)
            y = {"one_hot": lambda: one_hot(m, k), "soft": lambda: soft(m, k),
                 "unnormalised": lambda: torch.rand(m, k, generator=g)}[target]()
        zl = leaf(z)
        j = -(y * torch.log_softmax(zl, dim=-1)).sum() / m
        j.backward()
        out.append({"name": name, "loss": "softmax_cross_entropy", "z": t(z), "y": t(y), "J": j.item(),
                    "dz": t(zl.grad)})
    write("losses.json", "losses", out)


# ----------------------------------------------------------------- optimizers
def optimizers():
    g = gen(7)
    out = []
    all_ = {"weight_decay_applies_to": "all"}
    specs = [
        # name, type, options, lr[, per-parameter options (include/janus/parameter_options.hpp)]
        ("sgd_plain", "sgd", {"momentum": 0.0, "weight_decay": 0.0, "nesterov": False}, 0.1),
        ("sgd_momentum_wd", "sgd", {"momentum": 0.9, "weight_decay": 0.01, "nesterov": False}, 0.1),
        ("sgd_nesterov_wd", "sgd", {"momentum": 0.8, "weight_decay": 0.05, "nesterov": True}, 0.05),
        ("sgd_wd_no_momentum", "sgd", {"momentum": 0.0, "weight_decay": 0.1, "nesterov": False}, 0.2),
        ("adam", "adam", {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}, 0.01),
        ("adam_l2", "adam", {"beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.05}, 0.02),
        ("adamw", "adamw", {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}, 0.01),
        ("adamw_strong_decay", "adamw", {"beta1": 0.85, "beta2": 0.95, "eps": 1e-7, "weight_decay": 0.3}, 0.05),
        # Parameter groups: decay on every parameter (torch's default), lr and decay multipliers, a frozen bias.
        ("sgd_decay_all", "sgd", {"momentum": 0.9, "weight_decay": 0.05, "nesterov": False, **all_}, 0.1),
        ("sgd_bias_lr_mult_decay_mult", "sgd", {"momentum": 0.8, "weight_decay": 0.05, "nesterov": True}, 0.1,
         {"b": {"lr_mult": 2.0, "decay_mult": 0.5}}),
        ("sgd_weight_lr_mult_no_decay", "sgd", {"momentum": 0.9, "weight_decay": 0.1, "nesterov": False, **all_},
         0.05, {"W": {"lr_mult": 0.3, "decay_mult": 0.0}}),
        ("sgd_frozen_bias", "sgd", {"momentum": 0.9, "weight_decay": 0.1, "nesterov": False, **all_}, 0.1,
         {"b": {"trainable": False}}),
        ("adam_l2_decay_all", "adam", {"beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.05, **all_}, 0.02),
        ("adamw_decay_all_bias_lr_mult", "adamw", {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.2,
                                                    **all_}, 0.05, {"b": {"lr_mult": 0.5}}),
        ("adamw_frozen_weight", "adamw", {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.2}, 0.05,
         {"W": {"trainable": False}, "b": {"decay_mult": 1.0}}),
    ]
    steps = 3
    for name, typ, opts, lr, *param_options in specs:
        # Two parameters, a weight W and a bias b; by default ("weights") only W decays.
        options = param_options[0] if param_options else {}
        w0, b0 = randn(g, 3, 4), randn(g, 1, 4)
        grads = [(randn(g, 3, 4), randn(g, 1, 4)) for _ in range(steps)]
        w, b = leaf(w0), leaf(b0)
        wd = opts["weight_decay"]
        decay_all = opts.get("weight_decay_applies_to", "weights") == "all"
        # One torch parameter group per trainable parameter: lr * lr_mult, weight_decay * decay_mult (unset:
        # 1 for W, for b only when decay applies to all); a frozen parameter is left out of the optimizer.
        groups = []
        for key, p, is_weight in (("W", w, True), ("b", b, False)):
            o = options.get(key, {})
            if o.get("trainable", True):
                decay_mult = o.get("decay_mult", 1.0 if is_weight or decay_all else 0.0)
                groups.append({"params": [p], "lr": lr * o.get("lr_mult", 1.0), "weight_decay": wd * decay_mult})
        if typ == "sgd":
            opt = torch.optim.SGD(groups, lr=lr, momentum=opts["momentum"], nesterov=opts["nesterov"])
        else:
            cls = torch.optim.Adam if typ == "adam" else torch.optim.AdamW
            opt = cls(groups, lr=lr, betas=(opts["beta1"], opts["beta2"]), eps=opts["eps"])
        after = []
        for gw, gb in grads:
            w.grad, b.grad = gw.clone(), gb.clone()
            opt.step()
            after.append({"W": t(w), "b": t(b)})
        config = {"type": typ, **opts}
        case = {"name": name, "config": config, "lr": lr, "W": t(w0), "b": t(b0),
                "grads": [{"W": t(gw), "b": t(gb)} for gw, gb in grads], "after": after}
        if options:
            case["parameter_options"] = options
        out.append(case)
    write("optimizers.json", "optimizers", out)


# -------------------------------------------------------------------- flatten
def flatten():
    g = gen(8)
    x = randn(g, 2, 3, 4, 2)
    dy = randn(g, 2, 24)
    xl = leaf(x)
    y = xl.reshape(2, -1)
    y.backward(dy)
    write("flatten.json", "flatten", [{"name": "nhwc_2x3x4x2", "x": t(x), "dy": t(dy), "y": t(y), "dx": t(xl.grad)}])


# -------------------------------------------------------------------- network
def network():
    """Whole NeuralNetwork forward + backward(target): loss and every
    parameter gradient. Layer configs use Janus's model JSON format."""
    g = gen(9)
    out = []

    # 1. Flatten -> FC relu -> FC softmax, cross-entropy (fused path).
    m = 4
    x = randn(g, m, 3, 3, 2)
    y = F.one_hot(torch.randint(0, 3, (m,), generator=g), 3).to(torch.float64)
    p = {"fc1.W": randn(g, 18, 6, scale=0.4), "fc1.b": randn(g, 1, 6, scale=0.2),
         "fc2.W": randn(g, 6, 3, scale=0.5), "fc2.b": randn(g, 1, 3, scale=0.2)}
    pl = {k: leaf(v) for k, v in p.items()}
    h = x.reshape(m, -1)
    z1 = h @ pl["fc1.W"] + pl["fc1.b"]
    check_away_from_zero(z1, "network1 fc1")
    z2 = torch.relu(z1) @ pl["fc2.W"] + pl["fc2.b"]
    yhat = torch.softmax(z2, dim=-1)
    j = -(y * torch.log(yhat)).sum() / m
    j.backward()
    out.append({"name": "flatten_dense_relu_softmax_ce", "loss": "cross_entropy",
                "layers": [{"type": "flatten", "name": "flat"},
                           {"type": "fully_connected", "name": "fc1", "n_out": 6, "activation": "relu"},
                           {"type": "fully_connected", "name": "fc2", "n_out": 3, "activation": "softmax"}],
                "x": t(x), "target": t(y), "yhat": t(yhat), "J": j.item(),
                "params": [{"name": k, "value": t(p[k]), "grad": t(pl[k].grad)} for k in p]})

    # 2. Conv relu -> max pool -> flatten -> FC tanh -> FC linear, L2 loss.
    m = 3
    x = randn(g, m, 6, 5, 2)
    y = randn(g, m, 2)
    p = {"conv.W": randn(g, 3, 3, 2, 3, scale=0.4), "conv.b": randn(g, 1, 3, scale=0.2),
         "fc1.W": randn(g, 3 * 2 * 3, 5, scale=0.4), "fc1.b": randn(g, 1, 5, scale=0.2),
         "fc2.W": randn(g, 5, 2, scale=0.5), "fc2.b": randn(g, 1, 2, scale=0.2)}
    pl = {k: leaf(v) for k, v in p.items()}
    z0 = conv_nhwc(x, pl["conv.W"], pl["conv.b"], 1, 1, 1)
    check_away_from_zero(z0, "network2 conv")
    a0 = torch.relu(z0)
    check_max_separation(a0.detach().numpy(), 2, 2, 2, 0, 0, "network2 pool")
    pooled = F.max_pool2d(a0.permute(0, 3, 1, 2), 2, stride=2).permute(0, 2, 3, 1)
    h = pooled.reshape(m, -1)
    yhat = torch.tanh(h @ pl["fc1.W"] + pl["fc1.b"]) @ pl["fc2.W"] + pl["fc2.b"]
    j = ((y - yhat) ** 2).sum() / m
    j.backward()
    out.append({"name": "conv_pool_flatten_dense_l2", "loss": "l2",
                "layers": [{"type": "conv2d", "name": "conv", "n_out": 3, "kernel": [3, 3], "stride": 1,
                            "pad": "same", "activation": "relu"},
                           {"type": "pool2d", "name": "pool", "mode": "max", "kernel": [2, 2], "stride": 2,
                            "pad": "valid"},
                           {"type": "flatten", "name": "flat"},
                           {"type": "fully_connected", "name": "fc1", "n_out": 5, "activation": "tanh"},
                           {"type": "fully_connected", "name": "fc2", "n_out": 2, "activation": "linear"}],
                "x": t(x), "target": t(y), "yhat": t(yhat), "J": j.item(),
                "params": [{"name": k, "value": t(p[k]), "grad": t(pl[k].grad)} for k in p]})

    # 3. FC sigmoid -> FC softmax with soft targets (fused path, dense input).
    m = 5
    x = randn(g, m, 4)
    y = torch.softmax(randn(g, m, 3), dim=-1)
    p = {"fc1.W": randn(g, 4, 5), "fc1.b": randn(g, 1, 5), "fc2.W": randn(g, 5, 3), "fc2.b": randn(g, 1, 3)}
    pl = {k: leaf(v) for k, v in p.items()}
    yhat = torch.softmax(torch.sigmoid(x @ pl["fc1.W"] + pl["fc1.b"]) @ pl["fc2.W"] + pl["fc2.b"], dim=-1)
    j = -(y * torch.log(yhat)).sum() / m
    j.backward()
    out.append({"name": "dense_sigmoid_softmax_soft_targets", "loss": "cross_entropy",
                "layers": [{"type": "fully_connected", "name": "fc1", "n_out": 5, "activation": "sigmoid"},
                           {"type": "fully_connected", "name": "fc2", "n_out": 3, "activation": "softmax"}],
                "x": t(x), "target": t(y), "yhat": t(yhat), "J": j.item(),
                "params": [{"name": k, "value": t(p[k]), "grad": t(pl[k].grad)} for k in p]})
    write("network.json", "network", out)


# -------------------------------------------------------------------- graph layers and a graph network
def graph():
    """Add (n inputs), Concat (last axis), GlobalAvgPool, and a whole graph
    network (a residual sum and a concatenation) with cross-entropy."""
    g = gen(10)
    layers = []
    for name, shapes in [("add_2_nhwc", [(2, 3, 4, 3)] * 2), ("add_3_dense", [(4, 5)] * 3)]:
        xs = [randn(g, *s) for s in shapes]
        xl = [leaf(x) for x in xs]
        y = xl[0]
        for x in xl[1:]:
            y = y + x
        dy = randn(g, *y.shape)
        y.backward(dy)
        layers.append({"name": name, "type": "add", "xs": [t(x) for x in xs], "y": t(y), "dy": t(dy),
                       "dxs": [t(x.grad) for x in xl]})
    for name, shapes in [("concat_nhwc_channels", [(2, 3, 4, 2), (2, 3, 4, 5), (2, 3, 4, 1)]),
                         ("concat_dense_features", [(3, 4), (3, 2)])]:
        xs = [randn(g, *s) for s in shapes]
        xl = [leaf(x) for x in xs]
        y = torch.cat(xl, dim=-1)
        dy = randn(g, *y.shape)
        y.backward(dy)
        layers.append({"name": name, "type": "concat", "xs": [t(x) for x in xs], "y": t(y), "dy": t(dy),
                       "dxs": [t(x.grad) for x in xl]})
    for name, shape in [("global_avg_pool_3x5", (2, 3, 5, 4)), ("global_avg_pool_1x1", (3, 1, 1, 2))]:
        x = randn(g, *shape)
        xl = leaf(x)
        # NCHW adaptive average pooling to 1x1, as torch models write it.
        y = F.adaptive_avg_pool2d(xl.permute(0, 3, 1, 2), 1).reshape(shape[0], shape[3])
        dy = randn(g, *y.shape)
        y.backward(dy)
        layers.append({"name": name, "type": "global_avg_pool", "xs": [t(x)], "y": t(y), "dy": t(dy),
                       "dxs": [t(xl.grad)]})

    # A graph network: c1 = conv tanh(x); c2 = conv tanh(c1); s = c1 + c2;
    # cat = concat(s, x); gap; dense softmax; cross-entropy (fused path).
    m = 3
    x = randn(g, m, 4, 5, 2)
    y = F.one_hot(torch.randint(0, 3, (m,), generator=g), 3).to(torch.float64)
    p = {"c1.W": randn(g, 3, 3, 2, 3, scale=0.4), "c1.b": randn(g, 1, 3, scale=0.2),
         "c2.W": randn(g, 3, 3, 3, 3, scale=0.4), "c2.b": randn(g, 1, 3, scale=0.2),
         "out.W": randn(g, 5, 3, scale=0.5), "out.b": randn(g, 1, 3, scale=0.2)}
    pl = {k: leaf(v) for k, v in p.items()}
    c1 = torch.tanh(conv_nhwc(x, pl["c1.W"], pl["c1.b"], 1, 1, 1))
    c2 = torch.tanh(conv_nhwc(c1, pl["c2.W"], pl["c2.b"], 1, 1, 1))
    cat = torch.cat([c1 + c2, x], dim=-1)
    pooled = cat.mean(dim=(1, 2))
    yhat = torch.softmax(pooled @ pl["out.W"] + pl["out.b"], dim=-1)
    j = -(y * torch.log(yhat)).sum() / m
    j.backward()
    network = [{"name": "residual_sum_concat_gap_softmax_ce", "loss": "cross_entropy",
                "layers": [{"type": "conv2d", "name": "c1", "n_out": 3, "kernel": 3, "activation": "tanh"},
                           {"type": "conv2d", "name": "c2", "n_out": 3, "kernel": 3, "activation": "tanh"},
                           {"type": "add", "name": "s", "inputs": ["c1", "c2"]},
                           {"type": "concat", "name": "cat", "inputs": ["s", "input"]},
                           {"type": "global_avg_pool", "name": "gap"},
                           {"type": "fully_connected", "name": "out", "n_out": 3, "activation": "softmax"}],
                "x": t(x), "target": t(y), "yhat": t(yhat), "J": j.item(),
                "params": [{"name": k, "value": t(p[k]), "grad": t(pl[k].grad)} for k in p]}]
    write("graph.json", "graph", layers + network)  # layer cases have "xs", network cases "layers"


FAMILIES = [activations, fully_connected, conv2d, pool2d, batchnorm, losses, optimizers, flatten, network, graph]

if __name__ == "__main__":
    # All families, or only those named: generate.py graph
    import sys
    wanted = sys.argv[1:]
    unknown = set(wanted) - {f.__name__ for f in FAMILIES}
    if unknown:
        sys.exit(f"unknown families: {sorted(unknown)}; known: {[f.__name__ for f in FAMILIES]}")
    for family in FAMILIES:
        if not wanted or family.__name__ in wanted:
            family()
