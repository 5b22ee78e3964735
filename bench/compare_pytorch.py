#!/usr/bin/python3
"""Janus vs PyTorch on the CPU: the same networks, batch, optimizer and threads.

Workloads: the SPEC reference CNN (bench/configs/spec_cnn.json), the default
CIFAR-10 model (configs/cifar10.json's "model", input 32x32x3, read at run
time) and the MLP 784-256-10 (bench/configs/mlp.json). They run in PyTorch
(torch.set_num_threads(THREADS), channels_last for CNNs, SGD with momentum
0.9, cross-entropy on logits) and in `janus bench --device cpu` (or
janus_bench) on the same configs; the script prints the ratio Janus / PyTorch
of images/s as markdown ready for bench/RESULTS.md: SPEC CNN training, CIFAR
model training, MLP training, SPEC CNN inference (then the other inference
rows), and the peak RSS of a CIFAR-model training process on each side (its
own child process per side, random data: ru_maxrss of that child).

  /usr/bin/python3 bench/compare_pytorch.py --janus build/janus [--threads 2]
      [--iters 10] [--repeats 5] [--rounds 2] [--out bench/RESULTS.md]
  (--janus-bench build/janus_bench instead of --janus: the same engine)

Mixed precision: --precision bf16 runs, in each round, Janus in fp32, Janus
with `--precision bf16` and PyTorch under torch.autocast("cpu",
dtype=torch.bfloat16) (forward and loss; backward and the SGD step follow
autocast's types, the usual recipe), and prints Janus bf16 / Janus fp32 and
Janus bf16 / PyTorch bf16 training and inference throughput, with the load
average (the machine may be shared):

  /usr/bin/python3 bench/compare_pytorch.py --janus build/release-off/janus --precision bf16 --only cifar10

Both sides time "best of --repeats runs of --iters steps" after --warmup
steps; the whole comparison is repeated --rounds times alternating Janus and
PyTorch and the best of each is kept, so that a shared, noisy machine
penalises neither. Tiny smoke run: --iters 1 --repeats 1 --warmup 1 --rounds 1.
"""
import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPEC_CNN = os.path.join(HERE, "configs", "spec_cnn.json")
MLP = os.path.join(HERE, "configs", "mlp.json")
CIFAR_RUN_CONFIG = os.path.join(ROOT, "configs", "cifar10.json")
# (path, kind): kind "workload" = bench/configs file, "run" = run config (janus bench --model-config)
WORKLOADS = [(SPEC_CNN, "workload"), (CIFAR_RUN_CONFIG, "run"), (MLP, "workload")]
# Run only when --only names them (a ResNet-9 step at batch 512 takes seconds on 2 cores).
RESNET_RUN_CONFIG = os.path.join(ROOT, "configs", "cifar10_resnet.json")
OPTIONAL_WORKLOADS = [(RESNET_RUN_CONFIG, "run")]


def chosen_workloads(only):
    """(path, kind) of the workloads to run: the default three, or those --only names."""
    if only is None:
        return WORKLOADS
    return [(p, k) for p, k in WORKLOADS + OPTIONAL_WORKLOADS if load_workload(p, k)["name"] in only]
DATASET_SHAPES = {"cifar10": ([32, 32, 3], 10), "fashion_mnist": ([28, 28, 1], 10), "iris": ([4], 3)}


def load_workload(path, kind):
    """The same reading as janus::bench::load_workload / workload_from_run_config."""
    with open(path) as f:
        w = json.load(f)
    if kind == "run" or "dataset" in w:
        ds = w["dataset"]["name"] if isinstance(w["dataset"], dict) else w["dataset"]
        inp, classes = DATASET_SHAPES[ds]
        name = w.get("name", os.path.splitext(os.path.basename(path))[0])
        return {"name": name, "input": inp, "classes": classes, "batch": w.get("batch_size", 128),
                "model": w["model"]}
    w.setdefault("classes", 10)
    w.setdefault("batch", 128)
    return w


def pair(v):
    return (v, v) if isinstance(v, int) else (v[0], v[1])


# ---- the PyTorch side (run in a child process: python3 compare_pytorch.py --torch-child) ----

def build_torch_model(model_cfg, inp):
    """The Janus model config as a torch module: a graph of nodes, each one
    config entry with its named "inputs" (default: the previous node), as
    NeuralNetwork reads it (include/janus/model.hpp). Shapes are tracked per
    example in NHWC; the module works on NCHW (channels_last) tensors."""
    import torch
    import torch.nn as nn

    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "silu": nn.SiLU}

    class Sum(nn.Module):
        def forward(self, *xs):
            y = xs[0]
            for x in xs[1:]:
                y = y + x
            return y

    class Cat(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.dim = dim

        def forward(self, *xs):
            return torch.cat(xs, dim=self.dim)

    class Scale(nn.Module):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

    class Graph(nn.Module):
        def __init__(self, nodes):
            super().__init__()
            self.names = [n for n, _, _ in nodes]
            self.inputs = [i for _, _, i in nodes]
            self.mods = nn.ModuleList([m for _, m, _ in nodes])

        def forward(self, x):
            values = {"input": x}
            for name, mod, ins in zip(self.names, self.mods, self.inputs):
                values[name] = mod(*[values[i] for i in ins])
            return values[self.names[-1]]

    shapes, nodes, prev = {"input": list(inp)}, [], "input"
    for index, lc in enumerate(model_cfg["layers"]):
        t = lc["type"]
        name = lc.get("name", "%s_%d" % (t, index))
        ins = lc.get("inputs", [prev])
        shape = shapes[ins[0]]
        mods = []
        if t == "conv2d":
            k = pair(lc["kernel"])
            stride = lc.get("stride", 1)
            pad = lc.get("pad", "same")
            if pad == "same":
                if stride != 1 or k[0] % 2 == 0 or k[1] % 2 == 0:
                    raise SystemExit("compare_pytorch.py: 'same' padding only with stride 1 and odd kernels")
                p = (k[0] // 2, k[1] // 2)
            else:
                p = (0, 0) if pad == "valid" else pair(pad)
            mods.append(nn.Conv2d(shape[2], lc["n_out"], k, stride=stride, padding=p, bias=lc.get("bias", True)))
            shape = [(shape[0] + 2 * p[0] - k[0]) // stride + 1, (shape[1] + 2 * p[1] - k[1]) // stride + 1,
                     lc["n_out"]]
        elif t in ("maxpool2d", "pool2d", "avgpool2d"):
            k = pair(lc["kernel"])
            stride = lc.get("stride", k[0])
            p = pair(lc.get("pad", 0)) if lc.get("pad", "valid") != "valid" else (0, 0)
            mode = lc.get("mode", "average" if t == "avgpool2d" else "max")
            if mode == "max":
                mods.append(nn.MaxPool2d(k, stride=stride, padding=p))
            else:
                mods.append(nn.AvgPool2d(k, stride=stride, padding=p, count_include_pad=True))
            shape = [(shape[0] + 2 * p[0] - k[0]) // stride + 1, (shape[1] + 2 * p[1] - k[1]) // stride + 1,
                     shape[2]]
        elif t == "flatten":
            mods.append(nn.Flatten())
            n = 1
            for d in shape:
                n *= d
            shape = [n]
        elif t == "global_avg_pool":
            mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            shape = [shape[2]]
        elif t == "scale":
            mods.append(Scale(lc["factor"]))
        elif t == "add":
            mods.append(Sum())
        elif t == "concat":
            mods.append(Cat(1))  # channels: NCHW axis 1 (features of dense input too)
            shape = shape[:-1] + [sum(shapes[i][-1] for i in ins)]
        elif t in ("dense", "fully_connected", "linear"):
            mods.append(nn.Linear(shape[-1], lc["n_out"]))
            shape = [lc["n_out"]]
        elif t in ("batchnorm", "batch_norm"):
            bn = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            mods.append(bn(shape[-1], eps=lc.get("eps", 1e-5), momentum=lc.get("momentum", 0.1)))
        elif t == "dropout":
            mods.append(nn.Dropout(lc.get("p", 0.5)))
        elif t not in ("relu", "tanh", "sigmoid", "softmax", "activation"):
            raise SystemExit("compare_pytorch.py: unsupported layer type " + t)
        if t in ("conv2d", "dense", "fully_connected", "linear", "relu", "tanh", "sigmoid", "softmax", "activation"):
            act = lc.get("activation", t if t in ("relu", "tanh", "sigmoid", "softmax") else "linear")
            if act in acts:
                mods.append(acts[act]())
            elif act not in ("linear", "softmax"):
                raise SystemExit("compare_pytorch.py: unsupported activation " + act)
            # softmax on the last layer is folded into CrossEntropyLoss (as Janus fuses it)
        module = mods[0] if len(mods) == 1 else nn.Sequential(*mods) if mods else nn.Identity()
        nodes.append((name, module, ins))
        shapes[name] = shape
        prev = name
    return Graph(nodes)


def torch_child(args):
    import torch
    import torch.nn as nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    if args.device == "cuda":
        # Janus's fp32 mode computes in true float32: keep PyTorch's cuDNN and
        # cuBLAS off TF32 too, so that both sides do the same arithmetic.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    out = {"torch_version": torch.__version__, "threads": torch.get_num_threads(), "device": args.device,
           "precision": args.precision,
           "workloads": []}
    only = set(args.only.split(",")) if args.only else None
    for path, kind in chosen_workloads(only):
        w = load_workload(path, kind)
        if args.batch:
            w["batch"] = args.batch
        batch, classes, inp = w["batch"], w["classes"], w["input"]
        is_image = len(inp) == 3
        model = build_torch_model(w["model"], inp).to(dev)
        if is_image:
            x = torch.rand(batch, inp[2], inp[0], inp[1]) * 2 - 1
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = torch.rand(batch, inp[0]) * 2 - 1
        x = x.to(dev)
        y = torch.randint(0, classes, (batch,)).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        lossf = nn.CrossEntropyLoss()

        autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.precision == "bf16" else (
            lambda: contextlib.nullcontext())

        def train_step():
            opt.zero_grad(set_to_none=True)
            with autocast():
                loss = lossf(model(x), y)
            loss.backward()
            opt.step()

        def infer():
            with autocast():
                return model(x)

        def timed(fn):
            for _ in range(args.warmup):
                fn()
            sync()
            runs = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                for _ in range(args.iters):
                    fn()
                sync()
                runs.append((time.perf_counter() - t0) / args.iters)
            runs.sort()
            return runs[0], runs[len(runs) // 2]

        tb, tm = timed(train_step)
        with torch.no_grad():
            model.eval()
            ib, im = timed(infer)
            model.train()
        out["workloads"].append({"name": w["name"], "batch": batch,
                                 "train_images_per_s": batch / tb, "train_images_per_s_median": batch / tm,
                                 "infer_images_per_s": batch / ib, "infer_images_per_s_median": batch / im})
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    json.dump(out, open(args.torch_child, "w"), indent=2)


# ---- the driver ------------------------------------------------------------------------------

def run_child(cmd, env):
    """Runs cmd, returns (returncode, peak RSS of that child in MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stdout)
        raise SystemExit("compare_pytorch.py: %s failed (%d)" % (cmd[0], p.returncode))
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # RUSAGE_CHILDREN is the max over all waited-for children; each child
    # also reports its own peak in its JSON, which is what we print.
    return p.stdout, max(after, before) / 1024.0


def janus_cmd(args, json_path, workloads, layers=False, precision="fp32"):
    """The janus bench (or janus_bench) command line for these (path, kind) workloads on the CPU."""
    if args.janus_bench:
        cmd = [args.janus_bench]
    else:
        cmd = [args.janus, "bench"]
    if precision != "fp32":
        cmd += ["--precision", precision]
    cmd += ["--device", args.device, "--json", json_path, "--iters", str(args.iters), "--repeats", str(args.repeats),
            "--warmup", str(args.warmup)]
    if not layers:
        cmd.append("--no-layers")
    if args.batch:
        cmd += ["--batch", str(args.batch)]
    for path, kind in workloads:
        cmd += ["--model-config" if kind == "run" else "--config", path]
    return cmd


def torch_cmd(args, json_path, only=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-child", json_path, "--precision", args.precision,
           "--threads", str(args.threads), "--device", args.device,
           "--iters", str(args.iters), "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    if args.batch:
        cmd += ["--batch", str(args.batch)]
    if only:
        cmd += ["--only", only]
    return cmd


def janus_workloads(report):
    """The workloads of the first device of the compared kind (cpu or cuda) in a janus bench JSON report."""
    dev = [d for d in report["devices"] if d["kind"] == report.get("compared_kind", "cpu")][0]
    return {w["name"]: w for w in dev["workloads"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--janus", default=os.path.join(ROOT, "build", "janus"),
                    help="the janus CLI binary (runs 'janus bench'; default build/janus)")
    ap.add_argument("--janus-bench", help="use this janus_bench binary instead of 'janus bench' (same engine)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="where both sides run (cuda: janus bench --device cuda and PyTorch on cuda:0, "
                    "TF32 off on both sides)")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=0, help="override every workload's batch (default: theirs, 128)")
    ap.add_argument("--no-rss", action="store_true", help="skip the CIFAR-model peak-RSS runs")
    ap.add_argument("--omp-wait-policy", choices=["passive", "active", "default"], default="passive",
                    help="OMP_WAIT_POLICY for both sides (default passive: idle OpenMP threads sleep at once, "
                    "what scripts/train.sh uses on shared machines; 'default' leaves it unset, so libgomp "
                    "spins a while before sleeping). Any value in the caller's environment is replaced.")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: Janus fp32, Janus bf16 and PyTorch bf16 autocast, same rounds (see above)")
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--torch-child", help=argparse.SUPPRESS)
    ap.add_argument("--only", help="comma-separated workload names to run (spec_cnn, cifar10, mlp, cifar10_resnet); "
                    "default: the first three (the CIFAR peak-RSS runs only when cifar10 is among them)")
    args = ap.parse_args()
    if args.torch_child:
        return torch_child(args)
    binary = args.janus_bench or args.janus
    if not os.path.exists(binary):
        raise SystemExit("compare_pytorch.py: %s not found (build it: cmake --build BUILD --target %s, "
                         "and pass --janus BUILD/janus or --janus-bench BUILD/janus_bench)"
                         % (binary, "janus_bench" if args.janus_bench else "janus_cli"))

    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(args.threads)
    env["JANUS_NUM_THREADS"] = str(args.threads)
    env.pop("OMP_WAIT_POLICY", None)
    if args.omp_wait_policy != "default":
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
    only = set(args.only.split(",")) if args.only else None
    selected = chosen_workloads(only)
    if not selected:
        raise SystemExit("compare_pytorch.py: --only %s matches no workload (%s)"
                         % (args.only, ", ".join(load_workload(p, k)["name"] for p, k in WORKLOADS + OPTIONAL_WORKLOADS)))
    tmp = tempfile.mkdtemp(prefix="janus_cmp_")
    if args.precision == "bf16":
        return compare_bf16(args, env, selected, tmp)
    janus_runs, torch_runs = [], []
    for rnd in range(args.rounds):
        jpath = os.path.join(tmp, "janus_%d.json" % rnd)
        run_child(janus_cmd(args, jpath, selected), env)
        janus_runs.append(json.load(open(jpath)))
        janus_runs[-1]["compared_kind"] = args.device
        tpath = os.path.join(tmp, "torch_%d.json" % rnd)
        run_child(torch_cmd(args, tpath, only=args.only), env)
        torch_runs.append(json.load(open(tpath)))
        print("round %d done" % (rnd + 1), file=sys.stderr)

    # Peak RSS of a CIFAR-model training process on each side (only that workload, one process each).
    cifar = load_workload(CIFAR_RUN_CONFIG, "run")
    rss = None
    if not args.no_rss and (only is None or cifar["name"] in only):
        jpath, tpath = os.path.join(tmp, "janus_rss.json"), os.path.join(tmp, "torch_rss.json")
        rss_args = argparse.Namespace(**vars(args))
        rss_args.iters, rss_args.repeats, rss_args.warmup = 1, 1, 1
        run_child(janus_cmd(rss_args, jpath, [(CIFAR_RUN_CONFIG, "run")]), env)
        run_child(torch_cmd(rss_args, tpath, only=cifar["name"]), env)
        rss = (json.load(open(jpath))["peak_rss_mb"], json.load(open(tpath))["peak_rss_mb"])

    jw = [janus_workloads(r) for r in janus_runs]
    tw = [{w["name"]: w for w in r["workloads"]} for r in torch_runs]
    spec, mlp = load_workload(SPEC_CNN, "workload")["name"], load_workload(MLP, "workload")["name"]
    batch = args.batch or 128
    rows = [(spec, "train", "SPEC CNN training"), (cifar["name"], "train", "default CIFAR model (%s) training"
                                                   % os.path.relpath(CIFAR_RUN_CONFIG, ROOT)),
            (mlp, "train", "MLP 784-256-10 training"), (spec, "infer", "SPEC CNN inference"),
            (cifar["name"], "infer", "default CIFAR model inference"), (mlp, "infer", "MLP 784-256-10 inference")]
    resnet = load_workload(RESNET_RUN_CONFIG, "run")["name"]
    rows += [(resnet, "train", "ResNet-9 (%s) training" % os.path.relpath(RESNET_RUN_CONFIG, ROOT)),
             (resnet, "infer", "ResNet-9 inference")]
    lines = []
    where = "%d threads" % args.threads if args.device == "cpu" else "GPU"
    lines.append("| workload (%s, %s) | Janus img/s | PyTorch %s img/s | Janus / PyTorch |"
                 % ("batch %d" % batch if args.batch else "each config's batch", where,
                    torch_runs[0]["torch_version"]))
    lines.append("|---|---:|---:|---:|")
    ratios = {}
    for name, kind, label in rows:
        if name not in jw[0]:
            continue
        key = kind + "_images_per_s"
        j = max(r[name][key] for r in jw)
        t = max(r[name][key] for r in tw)
        ratios["%s/%s" % (name, kind)] = j / t
        lines.append("| %s | %.0f | %.0f | **%.2fx** |" % (label, j, t, j / t))
    lines.append("")
    if rss:
        lines.append("Peak RSS of a CIFAR-model training process (batch %d, random data, one process per side): "
                     "Janus %.0f MiB, PyTorch %.0f MiB (**%.2fx**)." % (batch, rss[0], rss[1], rss[0] / rss[1]))
    jrss = max(r["peak_rss_mb"] for r in janus_runs)
    trss = max(r["peak_rss_mb"] for r in torch_runs)
    lines.append("Peak RSS of the whole timing process (%s): Janus %.0f MiB, PyTorch %.0f MiB."
                 % ("all three workloads" if only is None else ", ".join(sorted(only)), jrss, trss))
    lines.append("")
    lines.append("Best of %d rounds (alternating Janus / PyTorch), each the best of %d x %d steps after %d warm-up "
                 "steps; training = forward + cross-entropy + backward + SGD momentum 0.9 step; "
                 "OMP_NUM_THREADS=JANUS_NUM_THREADS=%d, torch.set_num_threads(%d), %s for both, "
                 "channels_last for the CNNs. Janus side: `%s`."
                 % (args.rounds, args.repeats, args.iters, args.warmup, args.threads, args.threads,
                    "OMP_WAIT_POLICY unset" if args.omp_wait_policy == "default"
                    else "OMP_WAIT_POLICY=" + args.omp_wait_policy.upper(),
                    " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(
                        janus_cmd(args, "OUT.json", [(os.path.relpath(p, ROOT), k) for p, k in selected])))))
    md = "\n".join(lines)
    print(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md + "\n")
    json.dump({"janus": janus_runs, "torch": torch_runs, "ratios": ratios,
               "cifar_training_peak_rss_mb": {"janus": rss[0], "torch": rss[1]} if rss else None},
              open(os.path.join(tmp, "all.json"), "w"), indent=2)
    print("\n(raw results: %s)" % os.path.join(tmp, "all.json"), file=sys.stderr)


def compare_bf16(args, env, selected, tmp):
    """Janus fp32, Janus bf16 and PyTorch bf16 autocast, alternating in each round; best of the rounds."""
    runs = {"janus_fp32": [], "janus_bf16": [], "torch_bf16": []}
    loads = [os.getloadavg()[0]]
    for rnd in range(args.rounds):
        for prec in ("fp32", "bf16"):
            path = os.path.join(tmp, "janus_%s_%d.json" % (prec, rnd))
            run_child(janus_cmd(args, path, selected, precision=prec), env)
            runs["janus_" + prec].append(janus_workloads(json.load(open(path))))
        path = os.path.join(tmp, "torch_bf16_%d.json" % rnd)
        run_child(torch_cmd(args, path, only=args.only), env)
        torch_json = json.load(open(path))
        runs["torch_bf16"].append({w["name"]: w for w in torch_json["workloads"]})
        loads.append(os.getloadavg()[0])
        print("round %d done" % (rnd + 1), file=sys.stderr)
    lines = ["| workload (batch %d, %d threads) | Janus fp32 img/s | Janus bf16 img/s | PyTorch %s bf16 autocast "
             "img/s | Janus bf16 / fp32 | Janus bf16 / PyTorch bf16 |" % (args.batch or 128, args.threads,
                                                                         torch_json["torch_version"]),
             "|---|---:|---:|---:|---:|---:|"]
    ratios = {}
    for path, kind in selected:
        name = load_workload(path, kind)["name"]
        for mode in ("train", "infer"):
            key = mode + "_images_per_s"
            best = {k: max(r[name][key] for r in v) for k, v in runs.items()}
            ratios["%s/%s" % (name, mode)] = {"bf16_over_fp32": best["janus_bf16"] / best["janus_fp32"],
                                              "bf16_over_torch_bf16": best["janus_bf16"] / best["torch_bf16"]}
            lines.append("| %s %s | %.0f | %.0f | %.0f | **%.2fx** | **%.2fx** |" % (
                name, "training" if mode == "train" else "inference", best["janus_fp32"], best["janus_bf16"],
                best["torch_bf16"], ratios["%s/%s" % (name, mode)]["bf16_over_fp32"],
                ratios["%s/%s" % (name, mode)]["bf16_over_torch_bf16"]))
    lines.append("")
    lines.append("Best of %d rounds (each: Janus fp32, Janus bf16, PyTorch bf16 autocast), each the best of %d x %d "
                 "steps after %d warm-up steps; 1-min load average %s during the runs; bf16 on this CPU: %s."
                 % (args.rounds, args.repeats, args.iters, args.warmup, " -> ".join("%.1f" % v for v in loads),
                    "AVX512-BF16" if cpu_has_avx512_bf16() else "no AVX512-BF16 (Janus emulates bf16)"))
    md = "\n".join(lines)
    print(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md + "\n")
    json.dump({"runs": runs, "ratios": ratios, "load": loads}, open(os.path.join(tmp, "all.json"), "w"), indent=2)
    print("\n(raw results: %s)" % os.path.join(tmp, "all.json"), file=sys.stderr)


def cpu_has_avx512_bf16():
    try:
        return "avx512_bf16" in open("/proc/cpuinfo").read()
    except OSError:
        return False


if __name__ == "__main__":
    main()
