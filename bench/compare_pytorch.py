#!/usr/bin/python3
"""Janus vs PyTorch on the CPU: the same networks, batch, optimizer and threads.

Runs the workloads of bench/configs (SPEC reference CNN, MLP 784-256-10) in
PyTorch (torch.set_num_threads(THREADS), channels_last for the CNN, SGD with
momentum 0.9, cross-entropy on logits) and runs janus_bench on the same
configs, then prints the ratio Janus / PyTorch of images/s per workload as
markdown ready for bench/RESULTS.md, with each side's peak RSS (each side runs
in its own process; ru_maxrss of that child).

  /usr/bin/python3 bench/compare_pytorch.py --janus-bench build/janus_bench [--threads 2]
      [--iters 10] [--repeats 5] [--rounds 2] [--out bench/RESULTS.md]

Both sides time "best of --repeats runs of --iters steps" after warm-up; the
whole comparison is repeated --rounds times alternating Janus and PyTorch and
the best of each is kept, so that a shared, noisy machine penalises neither.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = [os.path.join(HERE, "configs", "spec_cnn.json"), os.path.join(HERE, "configs", "mlp.json")]


# ---- the PyTorch side (run in a child process: python3 compare_pytorch.py --torch-child) ----

def torch_child(args):
    import torch
    import torch.nn as nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = {"torch_version": torch.__version__, "threads": torch.get_num_threads(), "workloads": []}
    for path in CONFIGS:
        w = json.load(open(path))
        batch, classes, inp = w["batch"], w["classes"], w["input"]
        layers, shape = [], list(inp)  # shape per example, NHWC bookkeeping
        is_image = len(inp) == 3
        for lc in w["model"]["layers"]:
            t = lc["type"]
            if t == "conv2d":
                k = lc["kernel"]
                k = (k, k) if isinstance(k, int) else tuple(k)
                assert lc.get("pad", "same") == "same" and lc.get("stride", 1) == 1
                layers.append(nn.Conv2d(shape[2], lc["n_out"], k, padding=(k[0] // 2, k[1] // 2)))
                shape = [shape[0], shape[1], lc["n_out"]]
            elif t in ("maxpool2d", "pool2d"):
                k = lc["kernel"]
                layers.append(nn.MaxPool2d(k))
                shape = [shape[0] // k, shape[1] // k, shape[2]]
                continue
            elif t == "flatten":
                layers.append(nn.Flatten())
                n = 1
                for d in shape:
                    n *= d
                shape = [n]
                continue
            elif t in ("dense", "fully_connected", "linear"):
                layers.append(nn.Linear(shape[-1], lc["n_out"]))
                shape = [lc["n_out"]]
            else:
                raise SystemExit("compare_pytorch.py: unsupported layer type " + t)
            act = lc.get("activation", "linear")
            if act == "relu":
                layers.append(nn.ReLU())
            # softmax on the last layer is folded into CrossEntropyLoss (as Janus fuses it)
        model = nn.Sequential(*layers)
        if is_image:
            x = torch.rand(batch, inp[2], inp[0], inp[1]) * 2 - 1
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = torch.rand(batch, inp[0]) * 2 - 1
        y = torch.randint(0, classes, (batch,))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        lossf = nn.CrossEntropyLoss()

        def train_step():
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(x), y)
            loss.backward()
            opt.step()

        def timed(fn):
            for _ in range(args.warmup):
                fn()
            runs = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                for _ in range(args.iters):
                    fn()
                runs.append((time.perf_counter() - t0) / args.iters)
            runs.sort()
            return runs[0], runs[len(runs) // 2]

        tb, tm = timed(train_step)
        with torch.no_grad():
            model.eval()
            ib, im = timed(lambda: model(x))
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


def best_of(results, key):
    return max(r[key] for r in results)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--janus-bench", default=os.path.join(HERE, "..", "build", "janus_bench"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--torch-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_child:
        return torch_child(args)

    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(args.threads)
    env["JANUS_NUM_THREADS"] = str(args.threads)
    tmp = tempfile.mkdtemp(prefix="janus_cmp_")
    janus_runs, torch_runs = [], []
    for rnd in range(args.rounds):
        jpath = os.path.join(tmp, "janus_%d.json" % rnd)
        cmd = [args.janus_bench, "--json", jpath, "--iters", str(args.iters), "--repeats", str(args.repeats),
               "--warmup", str(args.warmup), "--no-layers"]
        for c in CONFIGS:
            cmd += ["--config", c]
        run_child(cmd, env)
        janus_runs.append(json.load(open(jpath)))
        tpath = os.path.join(tmp, "torch_%d.json" % rnd)
        run_child([sys.executable, os.path.abspath(__file__), "--torch-child", tpath, "--threads", str(args.threads),
                   "--iters", str(args.iters), "--repeats", str(args.repeats), "--warmup", str(args.warmup)], env)
        torch_runs.append(json.load(open(tpath)))
        print("round %d done" % (rnd + 1), file=sys.stderr)

    names = [w["name"] for w in janus_runs[0]["workloads"]]
    lines = []
    lines.append("| workload (batch 128, %d threads) | Janus img/s | PyTorch %s img/s | Janus / PyTorch |"
                 % (args.threads, torch_runs[0]["torch_version"]))
    lines.append("|---|---:|---:|---:|")
    ratios = {}
    for i, name in enumerate(names):
        for kind, label in (("train", "training"), ("infer", "inference")):
            key = kind + "_images_per_s"
            j = max(r["workloads"][i][key] for r in janus_runs)
            t = max(r["workloads"][i][key] for r in torch_runs)
            ratios[(name, kind)] = j / t
            lines.append("| %s %s | %.0f | %.0f | **%.2fx** |" % (name, label, j, t, j / t))
    jrss = max(r["peak_rss_mb"] for r in janus_runs)
    trss = max(r["peak_rss_mb"] for r in torch_runs)
    lines.append("")
    lines.append("Peak RSS (whole process, both workloads): Janus %.0f MiB, PyTorch %.0f MiB." % (jrss, trss))
    lines.append("")
    lines.append("Best of %d rounds (alternating Janus / PyTorch), each the best of %d x %d steps after %d warm-up "
                 "steps; training = forward + cross-entropy + backward + SGD momentum 0.9 step; "
                 "OMP_NUM_THREADS=JANUS_NUM_THREADS=%d, torch.set_num_threads(%d), channels_last for the CNN."
                 % (args.rounds, args.repeats, args.iters, args.warmup, args.threads, args.threads))
    md = "\n".join(lines)
    print(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md + "\n")
    json.dump({"janus": janus_runs, "torch": torch_runs, "ratios": {"%s/%s" % k: v for k, v in ratios.items()}},
              open(os.path.join(tmp, "all.json"), "w"), indent=2)
    print("\n(raw results: %s)" % os.path.join(tmp, "all.json"), file=sys.stderr)


if __name__ == "__main__":
    main()
