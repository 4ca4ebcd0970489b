"""Benchmarks: tinysiam against PyTorch and DeZero on the same inputs, float32, same thread count.

``tinysiam bench`` (or ``python benchmarks/run.py``) runs every (benchmark,
contender) pair in a fresh subprocess, so each gets its own thread settings and
its own peak-memory reading (the process's maximum resident set size). Each
pair is warmed up, then timed ``--repeat`` times; the table reports median,
min and max, the ratio of medians tinysiam / peer, the median of the paired
per-repetition ratios, and GFLOP/s against a float32 GEMM peak measured in the
same run. Peers are optional: a missing one is reported and its column skipped.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .serialization import write_text_atomic

CONTENDERS = ("tinysiam", "torch", "dezero")

# the two Siamese nets of the benchmark: (kind, arguments) per layer of the shared tower
MINI = [("conv", 1, 32, 3), ("relu",), ("pool",), ("conv", 32, 64, 3), ("relu",), ("pool",), ("flatten",),
        ("linear", 64 * 5 * 5, 128)]
KOCH = [("conv", 1, 64, 10), ("relu",), ("pool",), ("conv", 64, 128, 7), ("relu",), ("pool",),
        ("conv", 128, 128, 4), ("relu",), ("pool",), ("conv", 128, 256, 4), ("relu",), ("flatten",),
        ("linear", 256 * 6 * 6, 4096), ("sigmoid",)]
KOCH_CONVS = [(1, 64, 10, 105), (64, 128, 7, 48), (128, 128, 4, 21), (128, 256, 4, 9)]  # c, oc, k, input size


def _benchmarks(smoke):
    """name -> (kind, settings). Smoke mode shrinks every size so CI runs it in seconds."""
    pairs = 2 if smoke else None
    table = {}
    for i, (c, oc, k, size) in enumerate(KOCH_CONVS, start=1):
        table[f"conv_koch{i}"] = ("conv", dict(n=2 if smoke else 64, c=c, oc=oc if not smoke else 4, k=k,
                                               size=size if not smoke else k + 3))
    table["conv_mini2"] = ("conv", dict(n=4 if smoke else 128, c=32, oc=64, k=3, size=13))
    table["maxpool"] = ("pool", dict(n=4 if smoke else 64, c=8 if smoke else 64, size=16 if smoke else 96))
    table["linear"] = ("linear", dict(n=4 if smoke else 64, fin=64 if smoke else 9216, fout=32 if smoke else 4096))
    for loss in ("contrastive", "triplet", "bce", "nt_xent"):
        table[f"loss_{loss}"] = ("loss", dict(loss=loss, n=8 if smoke else 256, d=16 if smoke else 128))
    table["step_mini"] = ("step", dict(net="mini", pairs=pairs or 64))
    table["step_koch"] = ("step", dict(net="koch", pairs=pairs or 32))
    return table


def flops(kind, s):
    """Forward + backward FLOPs of the GEMM-shaped work (3x the forward's 2*M*N*K)."""
    if kind == "conv":
        out = s["size"] - s["k"] + 1
        return 3 * 2 * s["n"] * s["oc"] * out * out * s["c"] * s["k"] ** 2
    if kind == "linear":
        return 3 * 2 * s["n"] * s["fin"] * s["fout"]
    if kind == "step":
        spec, size = (MINI, 28) if s["net"] == "mini" else (KOCH, 105)
        total, n = 0, 2 * s["pairs"]
        for layer in spec:
            if layer[0] == "conv":
                size = size - layer[3] + 1
                total += 2 * n * layer[2] * size * size * layer[1] * layer[3] ** 2
            elif layer[0] == "pool":
                size //= 2
            elif layer[0] == "linear":
                total += 2 * n * layer[1] * layer[2]
        return 3 * total
    return None


# ----- inputs and weights shared by every contender -------------------------------------------------
def shared_weights(spec, seed=0):
    """He-initialised float32 (weight, bias) per conv/linear layer, the same for every framework."""
    rng = np.random.default_rng(seed)
    weights = []
    for layer in spec:
        if layer[0] == "conv":
            _, c, oc, k = layer
            weights.append((rng.standard_normal((oc, c, k, k)).astype(np.float32) * np.float32(np.sqrt(2 / (c * k * k))),
                            np.zeros(oc, np.float32)))
        elif layer[0] == "linear":
            _, fin, fout = layer
            weights.append((rng.standard_normal((fout, fin)).astype(np.float32) * np.float32(np.sqrt(2 / fin)),
                            np.zeros(fout, np.float32)))
    return weights


def step_inputs(net, pairs, seed=1):
    size = 28 if net == "mini" else 105
    rng = np.random.default_rng(seed)
    x1, x2 = (rng.random((pairs, 1, size, size), dtype=np.float32) for _ in range(2))
    same = (rng.random(pairs) < 0.5).astype(np.float32)
    return x1, x2, same


# ----- the contenders: each returns a callable that runs one timed iteration -----------------------
def tinysiam_case(kind, s, device):
    import tinysiam as ts
    from tinysiam import backend, distances, losses, nn, optim
    from tinysiam.conv import conv2d, max_pool2d

    rng = np.random.default_rng(0)
    put = lambda a: ts.Tensor(backend.to_device(a, device), requires_grad=a.dtype.kind == "f")  # noqa: E731
    if kind == "conv":
        x = put(rng.random((s["n"], s["c"], s["size"], s["size"]), dtype=np.float32))
        w, b = put(rng.standard_normal((s["oc"], s["c"], s["k"], s["k"])).astype(np.float32)), put(np.zeros(s["oc"], np.float32))
        return lambda: conv2d(x, w, b).sum().backward()
    if kind == "pool":
        x = put(rng.random((s["n"], s["c"], s["size"], s["size"]), dtype=np.float32))
        return lambda: max_pool2d(x, 2).sum().backward()
    if kind == "linear":
        layer = nn.Linear(s["fin"], s["fout"]).to(device)
        x = put(rng.random((s["n"], s["fin"]), dtype=np.float32))
        return lambda: layer(x).sum().backward()
    if kind == "loss":
        a, p, q = (put(rng.standard_normal((s["n"], s["d"])).astype(np.float32)) for _ in range(3))
        same = backend.to_device((rng.random(s["n"]) < 0.5).astype(np.float32), device)
        fns = {"contrastive": lambda: losses.contrastive_loss(distances.l2_distance(a, p), same),
               "triplet": lambda: losses.triplet_loss(a, p, q), "bce": lambda: losses.bce_with_logits(a[:, 0], same),
               "nt_xent": lambda: losses.nt_xent_loss(a, p)}
        return lambda: fns[s["loss"]]().backward()
    spec = MINI if s["net"] == "mini" else KOCH
    layers, weights = [], iter(shared_weights(spec))
    for layer in spec:
        if layer[0] in ("conv", "linear"):
            module = nn.Conv2d(*layer[1:]) if layer[0] == "conv" else nn.Linear(*layer[1:])
            module.weight.data, module.bias.data = next(weights)
            layers.append(module)
        else:
            layers.append({"relu": nn.ReLU, "pool": nn.MaxPool2d, "flatten": nn.Flatten, "sigmoid": nn.Sigmoid}[layer[0]]())
    from tinysiam.siamese import KochHead, TwinNetwork

    head = KochHead(4096) if s["net"] == "koch" else None
    model = TwinNetwork(nn.Sequential(*layers), head=head).to(device)
    opt = optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x1, x2, same = (backend.to_device(a, device) for a in step_inputs(s["net"], s["pairs"]))
    x1, x2 = ts.Tensor(x1), ts.Tensor(x2)

    def step():
        out = model(x1, x2)
        loss = losses.bce_with_logits(out, same) if head else losses.contrastive_loss(distances.l2_distance(*out), same)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def torch_case(kind, s, device):
    import torch

    dev = torch.device("cuda" if device == "gpu" else "cpu")
    rng = np.random.default_rng(0)
    put = lambda a: torch.tensor(a, device=dev, requires_grad=a.dtype.kind == "f")  # noqa: E731
    F = torch.nn.functional
    if kind == "conv":
        x = put(rng.random((s["n"], s["c"], s["size"], s["size"]), dtype=np.float32))
        w, b = put(rng.standard_normal((s["oc"], s["c"], s["k"], s["k"])).astype(np.float32)), put(np.zeros(s["oc"], np.float32))
        return lambda: F.conv2d(x, w, b).sum().backward()
    if kind == "pool":
        x = put(rng.random((s["n"], s["c"], s["size"], s["size"]), dtype=np.float32))
        return lambda: F.max_pool2d(x, 2).sum().backward()
    if kind == "linear":
        layer = torch.nn.Linear(s["fin"], s["fout"]).to(dev)
        x = put(rng.random((s["n"], s["fin"]), dtype=np.float32))
        return lambda: layer(x).sum().backward()
    if kind == "loss":
        a, p, q = (put(rng.standard_normal((s["n"], s["d"])).astype(np.float32)) for _ in range(3))
        same = torch.tensor((rng.random(s["n"]) < 0.5).astype(np.float32), device=dev)

        def contrastive():
            d = F.pairwise_distance(a, p, eps=0)
            return (same * d**2 / 2 + (1 - same) * F.relu(1 - d) ** 2 / 2).mean()

        def nt_xent():
            z = F.normalize(torch.cat([a, p]), dim=1)
            sim = (z @ z.T / 0.5).fill_diagonal_(float("-inf"))
            n = a.shape[0]
            return F.cross_entropy(sim, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(dev))

        fns = {"contrastive": contrastive, "triplet": lambda: F.triplet_margin_loss(a, p, q, margin=1.0, eps=0),
               "bce": lambda: F.binary_cross_entropy_with_logits(a[:, 0], same), "nt_xent": nt_xent}
        return lambda: fns[s["loss"]]().backward()
    spec = MINI if s["net"] == "mini" else KOCH
    layers, weights = [], iter(shared_weights(spec))
    for layer in spec:
        if layer[0] in ("conv", "linear"):
            module = torch.nn.Conv2d(*layer[1:]) if layer[0] == "conv" else torch.nn.Linear(*layer[1:])
            w, b = next(weights)
            module.weight.data, module.bias.data = torch.from_numpy(w), torch.from_numpy(b)
            layers.append(module)
        else:
            layers.append({"relu": torch.nn.ReLU, "pool": lambda: torch.nn.MaxPool2d(2), "flatten": torch.nn.Flatten,
                           "sigmoid": torch.nn.Sigmoid}[layer[0]]())
    tower = torch.nn.Sequential(*layers).to(dev)
    head = torch.nn.Linear(4096, 1).to(dev) if s["net"] == "koch" else None
    params = list(tower.parameters()) + (list(head.parameters()) if head else [])
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    x1, x2, same = (torch.from_numpy(a).to(dev) for a in step_inputs(s["net"], s["pairs"]))

    def step():
        e1, e2 = tower(torch.cat([x1, x2])).chunk(2)
        if head is not None:
            loss = F.binary_cross_entropy_with_logits(head((e1 - e2).abs())[:, 0], same)
        else:
            d = F.pairwise_distance(e1, e2, eps=0)
            loss = (same * d**2 / 2 + (1 - same) * F.relu(1 - d) ** 2 / 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def _import_dezero(device="cpu"):
    """DeZero 0.0.13 still uses ``np.int`` (removed in NumPy 1.24) and ``cupy.scatter_add``
    (removed in CuPy 13): alias both before importing it."""
    if not hasattr(np, "int"):
        np.int = int
    if device == "gpu":
        import cupy
        import cupyx

        if not hasattr(cupy, "scatter_add"):
            cupy.scatter_add = cupyx.scatter_add
    import dezero

    return dezero


def dezero_case(kind, s, device):
    dezero = _import_dezero(device)
    import dezero.functions as F
    import dezero.layers as L

    xp = np
    if device == "gpu":
        import cupy as xp
    rng = np.random.default_rng(0)
    f32 = np.float32
    # DeZero makes float64 arrays from Python numbers; every constant here is float32 so nothing upcasts
    var = lambda a: dezero.Variable(xp.asarray(a))  # noqa: E731
    if kind == "conv":
        x = var(rng.random((s["n"], s["c"], s["size"], s["size"]), dtype=f32))
        w, b = var(rng.standard_normal((s["oc"], s["c"], s["k"], s["k"])).astype(f32)), var(np.zeros(s["oc"], f32))
        return lambda: F.sum(F.conv2d(x, w, b)).backward()
    if kind == "pool":
        x = var(rng.random((s["n"], s["c"], s["size"], s["size"]), dtype=f32))
        return lambda: F.sum(F.pooling(x, 2, 2)).backward()
    if kind == "linear":
        x = var(rng.random((s["n"], s["fin"]), dtype=f32))
        w, b = var(rng.standard_normal((s["fin"], s["fout"])).astype(f32)), var(np.zeros(s["fout"], f32))
        return lambda: F.sum(F.linear(x, w, b)).backward()
    spec = MINI if s["net"] == "mini" else KOCH
    model = dezero.models.Model()
    weights = iter(shared_weights(spec))
    calls = []
    for i, layer in enumerate(spec):
        if layer[0] == "conv":
            module = L.Conv2d(layer[2], layer[3], in_channels=layer[1], dtype=f32)
            module.W.data, module.b.data = (xp.asarray(a) for a in next(weights))
            setattr(model, f"l{i}", module)
            calls.append(module)
        elif layer[0] == "linear":
            module = L.Linear(layer[2], in_size=layer[1], dtype=f32)
            w, b = next(weights)
            module.W.data, module.b.data = xp.asarray(w.T.copy()), xp.asarray(b)
            setattr(model, f"l{i}", module)
            calls.append(module)
        else:
            calls.append({"relu": F.relu, "pool": lambda x: F.pooling(x, 2, 2), "sigmoid": F.sigmoid,
                          "flatten": lambda x: F.reshape(x, (x.shape[0], -1))}[layer[0]])
    head = None
    if s["net"] == "koch":
        head = model.head = L.Linear(1, in_size=4096, dtype=f32)
        head.W.data = xp.asarray(rng.standard_normal((4096, 1)).astype(f32) * f32(0.01))
        head.b.data = xp.zeros(1, f32)
    opt = dezero.optimizers.MomentumSGD(lr=1e-3, momentum=0.9).setup(model)
    x1, x2, same = (xp.asarray(a) for a in step_inputs(s["net"], s["pairs"]))
    x = dezero.Variable(xp.concatenate([x1, x2]))
    n, half, one = len(x1), f32(0.5), f32(1)

    def step():
        h = x
        for call in calls:
            h = call(h)
        e1, e2 = h[:n], h[n:]
        if head is not None:
            diff = e1 - e2
            p = F.sigmoid(head(F.sqrt(diff * diff + f32(1e-12)) if hasattr(F, "sqrt") else (diff * diff + f32(1e-12)) ** half))
            p = F.clip(F.reshape(p, (n,)), f32(1e-7), f32(1 - 1e-7))
            loss = -F.sum(same * F.log(p) + (one - same) * F.log(one - p)) / f32(n)
        else:
            d = (F.sum((e1 - e2) ** 2, axis=1) + f32(1e-12)) ** half
            gap = F.relu(one - d)
            loss = F.sum(same * d * d * half + (one - same) * gap * gap * half) / f32(n)
        model.cleargrads()
        loss.backward()
        opt.update()

    if device == "gpu":
        model.to_gpu()
    return step


CASES = {"tinysiam": tinysiam_case, "torch": torch_case, "dezero": dezero_case}


def _synchronize(contender, device):
    if device != "gpu":
        return
    if contender == "torch":
        import torch

        torch.cuda.synchronize()
    else:
        import cupy

        cupy.cuda.Device().synchronize()


def worker(name, contender, device, repeat, warmup, smoke, threads, tf32=False):
    """Time one (benchmark, contender) pair in this process; returns a result dict."""
    if contender == "torch":
        import torch

        torch.set_num_threads(threads)
        # PyTorch lets cuDNN convolutions use TF32 (10-bit mantissa) by default; CuPy computes
        # true float32 unless CUPY_TF32=1. Both follow --tf32, so they do the same arithmetic.
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
    kind, settings = _benchmarks(smoke)[name]
    before = peak_rss_mb()
    run = CASES[contender](kind, settings, device)
    times = []
    for i in range(warmup + repeat):
        _synchronize(contender, device)
        start = time.perf_counter()
        run()
        _synchronize(contender, device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    peak = peak_rss_mb()
    return {"times": times, "peak_rss_mb": peak, "rss_growth_mb": peak - before}


def peak_rss_mb():
    """This process's peak resident memory: VmHWM on Linux (ru_maxrss would include the parent's before exec)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def profile_step(net, pairs, steps=3):
    """Seconds per step spent in each op's forward and backward (tinysiam, CPU), largest first."""
    from collections import defaultdict

    from . import conv, distances, losses, nn  # noqa: F401  (every op class must exist before wrapping)
    from .tensor import Function

    totals = defaultdict(float)

    def timed(cls, method):
        original = getattr(cls, method)

        def wrapper(self, *args):
            start = time.perf_counter()
            try:
                return original(self, *args)
            finally:
                totals[f"{cls.__name__}.{method}"] += time.perf_counter() - start

        return original, wrapper

    classes, stack = [], list(Function.__subclasses__())
    while stack:
        cls = stack.pop()
        classes.append(cls)
        stack.extend(cls.__subclasses__())
    originals = {}
    for cls in classes:
        for method in ("forward", "backward"):
            if method in vars(cls):
                originals[cls, method], wrapper = timed(cls, method)
                setattr(cls, method, wrapper)
    try:
        step = tinysiam_case("step", {"net": net, "pairs": pairs}, "cpu")
        step()
        totals.clear()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        total = (time.perf_counter() - start) / steps
    finally:
        for (cls, method), original in originals.items():
            setattr(cls, method, original)
    rows = sorted(((k, v / steps) for k, v in totals.items()), key=lambda kv: -kv[1])
    return total, rows


def gemm_peak(threads, size=2048, repeat=5):
    """float32 GEMM GFLOP/s of NumPy's BLAS here (best of ``repeat``), measured in a subprocess."""
    code = (f"import numpy as np, time; a=np.random.rand({size},{size}).astype(np.float32); b=a.copy(); a@b; "
            f"print(min((lambda s: (a@b, time.perf_counter()-s)[1])(time.perf_counter()) for _ in range({repeat})))")
    out = subprocess.run([sys.executable, "-c", code], env=_thread_env(threads), capture_output=True, text=True,
                         check=True).stdout
    return 2 * size**3 / float(out) / 1e9


def _thread_env(threads, tf32=False):
    env = dict(os.environ, CUPY_TF32="1" if tf32 else "0")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def available(contender, device):
    """None if the contender can run here, else the reason it cannot."""
    try:
        if contender == "torch":
            import torch

            if device == "gpu" and not torch.cuda.is_available():
                return "torch sees no CUDA device"
        elif contender == "dezero":
            _import_dezero(device)
        elif device == "gpu":
            from .backend import check_device

            check_device("gpu")
    except ImportError as e:
        return f"{contender} not installed ({e.name})"
    except RuntimeError as e:
        return str(e)
    return None


def machine_info(threads):
    import importlib.metadata as md

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    versions = {}
    for package in ("numpy", "torch", "dezero", "cupy-cuda12x", "cupy-cuda13x"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "python": platform.python_version(),
            "versions": versions}
    try:
        import cupy

        info["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception:  # no CuPy or no device: a CPU-only machine
        pass
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = sorted({f"{p['internal_api']} {p.get('version')} ({p.get('architecture')})"
                               for p in threadpool_info()})
    except ImportError:
        pass
    return info


def summarise(name, kind, settings, device, runs, peak_gflops):
    row = {"benchmark": name, "device": device, "contenders": {}}
    work = flops(kind, settings)
    for contender, result in runs.items():
        if "skipped" in result:
            row["contenders"][contender] = result
            continue
        t = result["times"]
        median = statistics.median(t)
        entry = {"median_s": median, "min_s": min(t), "max_s": max(t), "peak_rss_mb": result["peak_rss_mb"]}
        if work:
            entry["gflops"] = work / median / 1e9
            if peak_gflops and device == "cpu":
                entry["fraction_of_gemm_peak"] = entry["gflops"] / peak_gflops
        row["contenders"][contender] = entry
    ours = runs.get("tinysiam", {})
    for peer in ("torch", "dezero"):
        theirs = runs.get(peer, {})
        if "times" in ours and "times" in theirs:
            row[f"tinysiam_over_{peer}"] = statistics.median(ours["times"]) / statistics.median(theirs["times"])
            row[f"paired_ratio_{peer}"] = statistics.median(a / b for a, b in zip(ours["times"], theirs["times"]))
    return row


def markdown(report):
    info = report["machine"]
    lines = [f"Machine: {info['cpu']}, {info['cores']} cores, {info['threads']} threads, Python {info['python']}; "
             + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
             + (f"; BLAS: {'; '.join(info['blas'])}" if info.get("blas") else "")
             + (f"; GPU: {info['gpu']}" if info.get("gpu") else ""),
             f"float32 GEMM peak (NumPy, 2048^3, same threads): {report['gemm_peak_gflops']:.0f} GFLOP/s. "
             f"Device: {report['device']}" + (" with TF32 allowed for every contender" if report["tf32"] else
                                              " (strict float32, TF32 off for every contender)")
             + f". Repeats: {report['repeat']} after {report['warmup']} warm-up.", "",
             "| benchmark | tinysiam median (min-max) | PyTorch median | DeZero median | tinysiam / PyTorch "
             "| tinysiam / DeZero | tinysiam GFLOP/s | peak RSS MB (ts / torch / dezero) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]

    def cell(row, contender):
        entry = row["contenders"].get(contender, {})
        if "median_s" not in entry:
            return entry.get("skipped", "-")
        return f"{entry['median_s'] * 1e3:.2f} ms ({entry['min_s'] * 1e3:.2f}-{entry['max_s'] * 1e3:.2f})"

    for row in report["rows"]:
        ours = row["contenders"].get("tinysiam", {})
        ratio = lambda peer: f"{row[f'tinysiam_over_{peer}']:.2f}x (paired {row[f'paired_ratio_{peer}']:.2f})" \
            if f"tinysiam_over_{peer}" in row else "-"  # noqa: E731
        rss = " / ".join(f"{row['contenders'][c]['peak_rss_mb']:.0f}" if "peak_rss_mb" in row["contenders"].get(c, {})
                         else "-" for c in CONTENDERS)
        gf = f"{ours['gflops']:.1f}" if "gflops" in ours else "-"
        lines.append(f"| {row['benchmark']} | {cell(row, 'tinysiam')} | {cell(row, 'torch')} | {cell(row, 'dezero')} "
                     f"| {ratio('torch')} | {ratio('dezero')} | {gf} | {rss} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tinysiam bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="a benchmark name (repeatable)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition: checks that it runs")
    parser.add_argument("--tf32", action="store_true", help="GPU: let every contender use TF32 tensor cores")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--json", help="write the full report here")
    parser.add_argument("--markdown", help="write the table here")
    parser.add_argument("--profile", choices=("mini", "koch"), help="per-op time of one tinysiam training step")
    parser.add_argument("--worker", nargs=2, metavar=("BENCHMARK", "CONTENDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.repeat, args.warmup = 1, 0
    names = _benchmarks(args.smoke)
    unknown = [n for n in args.only or [] if n not in names]
    if unknown:
        print(f"tinysiam bench: unknown benchmark {unknown[0]!r}; choose from {', '.join(names)}", file=sys.stderr)
        return 2
    if args.profile:
        total, rows = profile_step(args.profile, 64 if args.profile == "mini" else 32)
        print(f"tinysiam {args.profile} step: {total * 1e3:.1f} ms; time inside ops (the rest is Python glue):")
        print("| op | ms per step | share |\n| --- | --- | --- |")
        for name, seconds in rows[:12]:
            print(f"| {name} | {seconds * 1e3:.1f} | {seconds / total:.0%} |")
        return 0
    if args.worker:
        print(json.dumps(worker(*args.worker, args.device, args.repeat, args.warmup, args.smoke, args.threads,
                                args.tf32)))
        return 0
    contenders = [c for c in args.contenders.split(",") if c]
    reasons = {c: available(c, args.device) for c in contenders}
    for contender, reason in reasons.items():
        if reason:
            print(f"{contender}: {reason}; column skipped")
    peak = gemm_peak(args.threads, size=256 if args.smoke else 2048)
    rows = []
    for name in args.only or names:
        kind, settings = names[name]
        runs = {}
        for contender in contenders:
            if reasons[contender]:
                runs[contender] = {"skipped": "not available"}
                continue
            if contender == "dezero" and kind == "loss":
                runs[contender] = {"skipped": "n/a (DeZero has no Siamese losses)"}
                continue
            command = [sys.executable, "-m", "tinysiam.bench", "--worker", name, contender, "--device", args.device,
                       "--repeat", str(args.repeat), "--warmup", str(args.warmup), "--threads", str(args.threads)]
            flags = (["--smoke"] if args.smoke else []) + (["--tf32"] if args.tf32 else [])
            env = _thread_env(args.threads, args.tf32)
            if contender != "tinysiam":  # peers run with the allocator they ship with
                env["TINYSIAM_MALLOC_TUNING"] = "0"
            done = subprocess.run(command + flags, env=env, capture_output=True, text=True)
            if done.returncode:
                last = (done.stderr.strip().splitlines() or ["failed"])[-1]
                runs[contender] = {"skipped": f"error: {last[:120]}"}
            else:
                runs[contender] = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(summarise(name, kind, settings, args.device, runs, peak))
        medians = {c: f"{r['median_s'] * 1e3:.2f} ms" for c, r in rows[-1]["contenders"].items() if "median_s" in r}
        print(f"{name}: {medians}", flush=True)
    report = {"machine": machine_info(args.threads), "device": args.device, "tf32": args.tf32, "repeat": args.repeat,
              "warmup": args.warmup, "smoke": args.smoke, "gemm_peak_gflops": peak, "rows": rows}
    table = markdown(report)
    print(table)
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=1))
    if args.markdown:
        write_text_atomic(args.markdown, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
