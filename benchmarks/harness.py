"""Benchmarks: tinysiam against PyTorch and DeZero, same inputs, float32, same thread count.

``tinysiam bench`` (or ``python benchmarks/run.py``) times per-op forward and
forward+backward passes (convolutions, max-pooling, a dense layer, the
Siamese losses) and a full training step (forward, backward, SGD update) of
two Siamese nets: "mini" and the net of Koch et al. 2015. benchmarks/README.md
explains how to read the output.

How it measures, and why:

- Each contender runs in a worker process of its own, started afresh for each
  benchmark: its own thread pools, and a peak-memory reading of its own.
- The workers take turns, one repetition each, so the paired ratio compares
  two runs made moments apart: a noisy neighbour slows both sides alike.
- Between turns the harness waits ``SETTLE_SECONDS``: after a matrix product
  OpenBLAS's worker threads keep spinning for about 0.1 s (measured here) and
  would steal a core from the next contender.
- GPU timings synchronise the device before each reading of the clock.

PyTorch and DeZero are optional: a missing one is reported, its column skipped.
"""
import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's tinysiam, installed or not
from tinysiam.serialization import write_text_atomic  # noqa: E402

CONTENDERS = ("tinysiam", "torch", "dezero")
TITLES = {"tinysiam": "tinysiam", "torch": "PyTorch", "dezero": "DeZero"}
SETTLE_SECONDS = 0.15
FLOP_FACTOR = {"forward": 1, "forward+backward": 3, "step": 3}  # backward = two GEMMs the size of the forward's
LOSS_INPUTS = {"contrastive": ("a", "p"), "triplet": ("a", "p", "q"), "bce": ("logits",), "nt_xent": ("a", "p")}
MB = 1e6


# ----- what is measured ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Benchmark:
    name: str
    kind: str  # "conv", "pool", "linear", "loss" or "step"
    settings: dict

    @property
    def modes(self):
        return ("step",) if self.kind == "step" else ("forward", "forward+backward")


def net_layers(net, smoke=False):
    """The shared tower of a benchmark net, layer by layer: (kind, *arguments)."""
    if net == "mini":
        return [("conv", 1, 32, 3), ("relu",), ("pool",), ("conv", 32, 64, 3), ("relu",), ("pool",), ("flatten",),
                ("linear", 64 * 5 * 5, 128)]
    c1, c2, c3, c4, dense = (8, 16, 16, 32, 64) if smoke else (64, 128, 128, 256, 4096)  # smoke: Koch, narrower
    return [("conv", 1, c1, 10), ("relu",), ("pool",), ("conv", c1, c2, 7), ("relu",), ("pool",),
            ("conv", c2, c3, 4), ("relu",), ("pool",), ("conv", c3, c4, 4), ("relu",), ("flatten",),
            ("linear", c4 * 6 * 6, dense), ("sigmoid",)]


def benchmarks(smoke=False):
    """Every benchmark, by name. Smoke mode keeps every code path and shrinks the sizes."""
    def conv(n, c, oc, k, size):
        if smoke:
            n, c, oc, size = 2, min(c, 4), 4, k + 3
        return "conv", dict(n=n, c=c, oc=oc, k=k, size=size)

    def pool(n, c, size):
        return "pool", dict(n=2, c=4, size=12) if smoke else dict(n=n, c=c, size=size)

    table = {
        "conv_koch1": conv(64, 1, 64, 10, 105), "conv_koch2": conv(64, 64, 128, 7, 48),
        "conv_koch3": conv(64, 128, 128, 4, 21), "conv_koch4": conv(64, 128, 256, 4, 9),
        "conv_mini1": conv(128, 1, 32, 3, 28), "conv_mini2": conv(128, 32, 64, 3, 13),
        "maxpool_koch1": pool(64, 64, 96), "maxpool_mini1": pool(128, 32, 26),
        "linear_koch": ("linear", dict(n=4, fin=64, fout=32) if smoke else dict(n=64, fin=9216, fout=4096)),
    }
    for loss in LOSS_INPUTS:
        table[f"loss_{loss}"] = "loss", dict(loss=loss, n=8 if smoke else 256, d=16 if smoke else 128)
    for net, pairs, size in (("mini", 64, 28), ("koch", 32, 105)):
        layers = net_layers(net, smoke)
        head = layers[-2][2] if net == "koch" else None  # Koch: linear(features -> 1) on |e1 - e2|
        table[f"step_{net}"] = "step", dict(net=net, pairs=2 if smoke else pairs, size=size, layers=layers, head=head)
    return {name: Benchmark(name, kind, settings) for name, (kind, settings) in table.items()}


def forward_flops(bench):
    """2*M*N*K summed over the GEMM-shaped work (convolutions, dense layers) of one forward pass, else None."""
    s = bench.settings
    if bench.kind == "conv":
        out = s["size"] - s["k"] + 1
        return 2 * s["n"] * s["oc"] * out * out * s["c"] * s["k"] ** 2
    if bench.kind == "linear":
        return 2 * s["n"] * s["fin"] * s["fout"]
    if bench.kind != "step":
        return None
    size, images, total = s["size"], 2 * s["pairs"], 0
    for kind, *args in s["layers"]:
        if kind == "conv":
            c, oc, k = args
            size -= k - 1
            total += 2 * images * oc * size * size * c * k * k
        elif kind == "pool":
            size //= 2
        elif kind == "linear":
            total += 2 * images * args[0] * args[1]
    return total + (2 * s["pairs"] * s["head"] if s["head"] else 0)


# ----- the same float32 inputs for every contender -------------------------------------------------
def shared_weights(bench, seed=0):
    """He-initialised (weight, bias) per conv and linear layer of a step net, then its head's."""
    rng = np.random.default_rng(seed)

    def he(shape, fan_in):
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2 / fan_in))

    weights = []
    for kind, *args in bench.settings["layers"]:
        if kind == "conv":
            c, oc, k = args
            weights.append((he((oc, c, k, k), c * k * k), np.zeros(oc, np.float32)))
        elif kind == "linear":
            fin, fout = args
            weights.append((he((fout, fin), fin), np.zeros(fout, np.float32)))
    if bench.settings["head"]:
        weights.append((he((1, bench.settings["head"]), bench.settings["head"]), np.zeros(1, np.float32)))
    return weights


def step_arrays(bench, seed=1):
    """Two batches of images in [0, 1) and the pair labels (same = 1)."""
    s, rng = bench.settings, np.random.default_rng(seed)
    x1, x2 = (rng.random((s["pairs"], 1, s["size"], s["size"]), dtype=np.float32) for _ in range(2))
    return x1, x2, (rng.random(s["pairs"]) < 0.5).astype(np.float32)


def op_arrays(bench, seed=1):
    """(inputs, grad): the op's float32 inputs by name, and the gradient fed back into its output."""
    s, rng = bench.settings, np.random.default_rng(seed)

    def normal(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    if bench.kind == "conv":
        out = s["size"] - s["k"] + 1
        weight = normal(s["oc"], s["c"], s["k"], s["k"]) * np.float32(1 / s["k"])
        return dict(x=normal(s["n"], s["c"], s["size"], s["size"]), weight=weight, bias=normal(s["oc"])), \
            normal(s["n"], s["oc"], out, out)
    if bench.kind == "pool":
        half = s["size"] // 2
        return dict(x=normal(s["n"], s["c"], s["size"], s["size"])), normal(s["n"], s["c"], half, half)
    if bench.kind == "linear":
        weight = normal(s["fout"], s["fin"]) * np.float32(1 / np.sqrt(s["fin"]))
        return dict(x=normal(s["n"], s["fin"]), weight=weight, bias=normal(s["fout"])), normal(s["n"], s["fout"])
    arrays = dict(a=normal(s["n"], s["d"]), p=normal(s["n"], s["d"]), q=normal(s["n"], s["d"]), logits=normal(s["n"]))
    arrays = {name: arrays[name] for name in LOSS_INPUTS[s["loss"]]}
    return arrays, None  # a loss is a scalar: its own gradient is 1


def labels(bench, seed=2):
    """The 0/1 "same" labels of a loss benchmark."""
    return (np.random.default_rng(seed).random(bench.settings["n"]) < 0.5).astype(np.float32)


# ----- the contenders ----------------------------------------------------------------------------
# Each adapter wraps one framework: arrays in, a forward function for a per-op benchmark, a training
# step for a step benchmark, and the few framework calls the timing loop needs.
class TinysiamContender:
    def __init__(self, device, tf32=False):
        from tinysiam import backend

        self.device = backend.check_device(device)  # RuntimeError when there is no GPU: reported, column skipped
        backend.reuse_freed_memory()  # as the command line does; the peers keep their stock allocators

    def constant(self, array):
        from tinysiam import backend

        return backend.to_device(array, self.device)

    def tensor(self, array):
        from tinysiam import Tensor

        return Tensor(self.constant(array), requires_grad=True)

    def op(self, bench, leaves, same):
        from tinysiam.engine.conv import conv2d, max_pool2d
        from tinysiam.siamese import distances, losses

        if bench.kind == "conv":
            return lambda: conv2d(leaves["x"], leaves["weight"], leaves["bias"])
        if bench.kind == "pool":
            return lambda: max_pool2d(leaves["x"], 2)
        if bench.kind == "linear":
            return lambda: leaves["x"] @ leaves["weight"].T + leaves["bias"]  # what nn.Linear computes
        a, p, q, logits = (leaves.get(name) for name in ("a", "p", "q", "logits"))
        return {"contrastive": lambda: losses.contrastive_loss(distances.l2_distance(a, p), same),
                "triplet": lambda: losses.triplet_loss(a, p, q),
                "bce": lambda: losses.bce_with_logits(logits, same),
                "nt_xent": lambda: losses.nt_xent_loss(a, p, temperature=0.5)}[bench.settings["loss"]]

    def step(self, bench):
        from tinysiam import Tensor, nn, optim
        from tinysiam.siamese import KochHead, TwinNetwork, distances, losses

        weights, layers = iter(shared_weights(bench)), []
        for kind, *args in bench.settings["layers"]:
            if kind in ("conv", "linear"):
                layer = nn.Conv2d(*args) if kind == "conv" else nn.Linear(*args)
                layer.weight.data, layer.bias.data = next(weights)
            else:
                layer = {"relu": nn.ReLU, "pool": nn.MaxPool2d, "flatten": nn.Flatten, "sigmoid": nn.Sigmoid}[kind]()
            layers.append(layer)
        head = None
        if bench.settings["head"]:
            head = KochHead(bench.settings["head"])
            head.linear.weight.data, head.linear.bias.data = next(weights)
        model = TwinNetwork(nn.Sequential(*layers), head=head).to(self.device)
        optimizer = optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        x1, x2, same = (self.constant(a) for a in step_arrays(bench))
        x1, x2 = Tensor(x1), Tensor(x2)

        def step():
            out = model(x1, x2)
            if head:
                loss = losses.bce_with_logits(out, same)
            else:
                loss = losses.contrastive_loss(distances.l2_distance(*out), same)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        return step, list(model.parameters())

    def backward(self, out, grad):
        out.backward(grad)

    def clear_grad(self, leaf):
        leaf.grad = None

    def grad_dtype(self, leaf):
        return str(leaf.grad.dtype)

    def value(self, loss):
        return loss.item()

    def synchronize(self):
        if self.device == "gpu":
            import cupy

            cupy.cuda.Device().synchronize()

    def gpu_memory_mb(self):
        return _cupy_pool_mb() if self.device == "gpu" else None


class TorchContender:
    def __init__(self, device, tf32=False):
        import torch

        if device == "gpu" and not torch.cuda.is_available():
            raise RuntimeError("torch sees no CUDA device")
        # cuDNN may use TF32 (10-bit mantissa) by default; CuPy computes true float32 unless CUPY_TF32=1.
        # Both follow --tf32, so every contender does the same arithmetic.
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
        self.torch, self.device = torch, torch.device("cuda" if device == "gpu" else "cpu")

    def constant(self, array):
        return self.torch.tensor(array, device=self.device)

    def tensor(self, array):
        return self.torch.tensor(array, device=self.device, requires_grad=True)

    def op(self, bench, leaves, same):
        F = self.torch.nn.functional
        if bench.kind == "conv":
            return lambda: F.conv2d(leaves["x"], leaves["weight"], leaves["bias"])
        if bench.kind == "pool":
            return lambda: F.max_pool2d(leaves["x"], 2)
        if bench.kind == "linear":
            return lambda: F.linear(leaves["x"], leaves["weight"], leaves["bias"])
        loss = bench.settings["loss"]
        if loss == "contrastive":
            return lambda: self.contrastive(leaves["a"], leaves["p"], same)
        if loss == "triplet":
            return lambda: F.triplet_margin_loss(leaves["a"], leaves["p"], leaves["q"], margin=1.0, eps=0)
        if loss == "bce":
            return lambda: F.binary_cross_entropy_with_logits(leaves["logits"], same)
        n = bench.settings["n"]
        partner = self.torch.cat([self.torch.arange(n, 2 * n), self.torch.arange(n)]).to(self.device)
        itself = self.torch.eye(2 * n, dtype=self.torch.bool, device=self.device)

        def nt_xent():
            u = F.normalize(self.torch.cat([leaves["a"], leaves["p"]]), dim=1)
            similarity = (u @ u.T / 0.5).masked_fill(itself, float("-inf"))  # a view is not its own negative
            return F.cross_entropy(similarity, partner)

        return nt_xent

    def contrastive(self, e1, e2, same):
        d = self.torch.nn.functional.pairwise_distance(e1, e2, eps=0)
        return (same * d**2 / 2 + (1 - same) * (1 - d).clamp(min=0) ** 2 / 2).mean()

    def step(self, bench):
        nn, F = self.torch.nn, self.torch.nn.functional
        weights, layers = iter(shared_weights(bench)), []
        for kind, *args in bench.settings["layers"]:
            if kind in ("conv", "linear"):
                layer = nn.Conv2d(*args) if kind == "conv" else nn.Linear(*args)
                self.load(layer, next(weights))
            else:
                layer = {"relu": nn.ReLU, "pool": lambda: nn.MaxPool2d(2), "flatten": nn.Flatten,
                         "sigmoid": nn.Sigmoid}[kind]()
            layers.append(layer)
        tower = nn.Sequential(*layers).to(self.device)
        head = None
        if bench.settings["head"]:
            head = nn.Linear(bench.settings["head"], 1)
            self.load(head, next(weights))
            head.to(self.device)
        params = list(tower.parameters()) + (list(head.parameters()) if head else [])
        optimizer = self.torch.optim.SGD(params, lr=1e-3, momentum=0.9)
        x1, x2, same = (self.constant(a) for a in step_arrays(bench))
        both = self.torch.cat([x1, x2])  # one tower pass over both branches, as tinysiam's TwinNetwork does

        def step():
            e1, e2 = tower(both).chunk(2)
            loss = F.binary_cross_entropy_with_logits(head((e1 - e2).abs())[:, 0], same) if head \
                else self.contrastive(e1, e2, same)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        return step, params

    def load(self, layer, weight_and_bias):
        with self.torch.no_grad():
            layer.weight.copy_(self.torch.from_numpy(weight_and_bias[0]))
            layer.bias.copy_(self.torch.from_numpy(weight_and_bias[1]))

    def backward(self, out, grad):
        out.backward(grad)

    def clear_grad(self, leaf):
        leaf.grad = None

    def grad_dtype(self, leaf):
        return str(leaf.grad.dtype).removeprefix("torch.")

    def value(self, loss):
        return loss.item()

    def synchronize(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def gpu_memory_mb(self):
        return self.torch.cuda.max_memory_reserved() / MB if self.device.type == "cuda" else None


def import_dezero():
    """Import DeZero 0.0.13 with two documented compatibility shims (benchmark workers only).

    1. It still names ``np.int`` (removed in NumPy 1.24): alias it to ``int``.
    2. It turns Python numbers into 0-d float64 arrays (``1 - y`` in its own sigmoid backward);
       under NumPy 2's promotion rules these upcast float32 arrays, so DeZero silently trains in
       float64. Its ``as_array`` is replaced by one that makes float32 numbers instead.
    The harness checks every gradient's dtype, so a shim that stops working is noticed.
    """
    if not hasattr(np, "int"):
        np.int = int
    import dezero
    import dezero.core

    def as_float32_array(x, array_module=np):
        return array_module.asarray(x, dtype=np.float32) if np.isscalar(x) else x

    dezero.core.as_array = as_float32_array
    return dezero


class DezeroContender:
    def __init__(self, device, tf32=False):
        dezero = self.dezero = import_dezero()
        self.xp = np
        if device == "gpu":
            import cupy
            import cupyx

            if cupy.cuda.runtime.getDeviceCount() == 0:
                raise RuntimeError("CuPy sees no CUDA device")
            if not hasattr(cupy, "scatter_add"):  # moved to cupyx in CuPy 13; DeZero's GetItem backward calls it
                cupy.scatter_add = cupyx.scatter_add
            self.xp = cupy
        self.device = device

        class Abs(dezero.Function):  # DeZero has no abs: |x|, derivative sign(x)
            def forward(self, x):
                return abs(x)

            def backward(self, gy):
                x = self.inputs[0].data
                return gy * dezero.cuda.get_array_module(x).sign(x)

        class Concatenate(dezero.Function):  # nor a concatenation of two variables along the batch
            def forward(self, a, b):
                self.n = len(a)
                return dezero.cuda.get_array_module(a).concatenate([a, b])

            def backward(self, gy):
                return gy[:self.n], gy[self.n:]

        self.abs = lambda x: Abs()(x)
        self.concatenate = lambda a, b: Concatenate()(a, b)

    def constant(self, array):
        return self.xp.asarray(array)

    def tensor(self, array):
        return self.dezero.Variable(self.constant(array))

    def op(self, bench, leaves, same):
        F = self.dezero.functions
        if bench.kind == "conv":
            return lambda: F.conv2d(leaves["x"], leaves["weight"], leaves["bias"])
        if bench.kind == "pool":
            return lambda: F.pooling(leaves["x"], 2, 2)
        if bench.kind == "linear":
            return lambda: F.linear(leaves["x"], leaves["weight"].T, leaves["bias"])  # DeZero's W is (in, out)
        loss = bench.settings["loss"]
        if loss == "contrastive":
            return lambda: self.contrastive(leaves["a"], leaves["p"], same)
        if loss == "triplet":
            return lambda: F.sum(F.relu(self.l2(leaves["a"], leaves["p"]) - self.l2(leaves["a"], leaves["q"]) + 1)) \
                / len(same)
        if loss == "bce":
            return lambda: self.bce_with_logits(leaves["logits"], same)
        n = bench.settings["n"]
        partner = self.xp.concatenate([self.xp.arange(n, 2 * n), self.xp.arange(n)])
        itself = self.xp.diag(self.xp.full(2 * n, -np.inf, dtype=np.float32))

        def nt_xent():
            z = self.concatenate(leaves["a"], leaves["p"])
            u = z / F.sum(z * z, axis=1, keepdims=True) ** 0.5
            log_p = F.log_softmax(F.matmul(u, u.T) / 0.5 + itself)
            return -F.sum(log_p[self.xp.arange(2 * n), partner]) / (2 * n)

        return nt_xent

    def l2(self, e1, e2):
        return self.dezero.functions.sum((e1 - e2) ** 2, axis=1) ** 0.5

    def contrastive(self, e1, e2, same):
        d = self.l2(e1, e2)
        gap = self.dezero.functions.relu(1 - d)
        return self.dezero.functions.sum(same * d * d / 2 + (1 - same) * gap * gap / 2) / len(same)

    def bce_with_logits(self, z, same):
        F = self.dezero.functions  # the overflow-free form: max(z, 0) - z y + log(1 + exp(-|z|))
        return F.sum(F.relu(z) - z * same + F.log(1 + F.exp(-self.abs(z)))) / len(same)

    def step(self, bench):
        dezero, F, L = self.dezero, self.dezero.functions, self.dezero.layers
        model, calls, weights = dezero.Model(), [], iter(shared_weights(bench))
        for i, (kind, *args) in enumerate(bench.settings["layers"]):
            if kind == "conv":
                c, oc, k = args
                layer = L.Conv2d(oc, k, in_channels=c)
                layer.W.data, layer.b.data = next(weights)
            elif kind == "linear":
                layer = L.Linear(args[1], in_size=args[0])
                w, layer.b.data = next(weights)
                layer.W.data = w.T.copy()
            else:
                calls.append({"relu": F.relu, "pool": lambda x: F.pooling(x, 2, 2), "sigmoid": F.sigmoid,
                              "flatten": lambda x: F.reshape(x, (len(x), -1))}[kind])
                continue
            setattr(model, f"layer{i}", layer)
            calls.append(layer)
        head = None
        if bench.settings["head"]:
            head = model.head = L.Linear(1, in_size=bench.settings["head"])
            w, head.b.data = next(weights)
            head.W.data = w.T.copy()
        if self.device == "gpu":
            model.to_gpu()
        optimizer = dezero.optimizers.MomentumSGD(lr=1e-3, momentum=0.9).setup(model)
        x1, x2, same = (self.constant(a) for a in step_arrays(bench))
        both, n = dezero.Variable(self.xp.concatenate([x1, x2])), len(x1)  # one tower pass, as the others

        def step():
            h = both
            for call in calls:
                h = call(h)
            e1, e2 = h[:n], h[n:]
            loss = self.bce_with_logits(F.reshape(head(self.abs(e1 - e2)), (n,)), same) if head \
                else self.contrastive(e1, e2, same)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            return loss

        return step, list(model.params())

    def backward(self, out, grad):
        if grad is not None:
            out.grad = self.dezero.Variable(grad)
        out.backward()

    def clear_grad(self, leaf):
        leaf.cleargrad()

    def grad_dtype(self, leaf):
        return str(leaf.grad.dtype)

    def value(self, loss):
        return float(loss.data)

    def synchronize(self):
        if self.device == "gpu":
            self.xp.cuda.Device().synchronize()

    def gpu_memory_mb(self):
        return _cupy_pool_mb() if self.device == "gpu" else None


FRAMEWORKS = {"tinysiam": TinysiamContender, "torch": TorchContender, "dezero": DezeroContender}


def _cupy_pool_mb():
    """Bytes CuPy's memory pool holds (it keeps freed blocks, so this is about the peak)."""
    import cupy

    return cupy.get_default_memory_pool().total_bytes() / MB


# ----- the worker process: one contender, commands on stdin, one JSON reply per line on stdout -------
@dataclass
class Case:
    """A loaded benchmark: a callable per mode, and the tensors whose gradients are checked."""
    modes: dict
    leaves: list


def build_case(contender, bench):
    if bench.kind == "step":
        step, params = contender.step(bench)
        return Case({"step": step}, params)
    arrays, grad = op_arrays(bench)
    leaves = {name: contender.tensor(array) for name, array in arrays.items()}
    forward = contender.op(bench, leaves, contender.constant(labels(bench)) if bench.kind == "loss" else None)
    grad = None if grad is None else contender.constant(grad)  # on the device before the clock starts

    def forward_and_backward():
        for leaf in leaves.values():  # fresh gradients each time, not accumulated ones
            contender.clear_grad(leaf)
        out = forward()
        contender.backward(out, grad)

    return Case({"forward": forward, "forward+backward": forward_and_backward}, list(leaves.values()))


def resident_mb(field="VmHWM"):
    """This process's resident memory in MB: its peak (VmHWM) or current (VmRSS) size on Linux.

    Elsewhere the peak comes from ru_maxrss and the current size is None.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024 / MB
    if field != "VmHWM":
        return None
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak * 1024 / MB  # bytes on macOS, KiB elsewhere


def reset_peak_memory():
    """Restart the peak reading from the current size (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def limit_threads(threads):
    """Hold every BLAS/OpenMP pool of this process to ``threads`` (the environment already asks for it)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(threads)


def worker_main(name, device, threads, tf32):
    """Serve one contender: load a benchmark, run a mode once, report memory, profile."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints of the frameworks go to stderr, not into the replies

    def reply(**message):
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    try:
        contender = FRAMEWORKS[name](device, tf32)
    except ImportError as e:
        missing = e.name or str(e)
        return reply(unavailable=f"{name} not installed" if missing == name else f"{name}: {missing} not installed")
    except RuntimeError as e:
        return reply(unavailable=f"{name} on {device}: {e}")
    if name == "torch":
        contender.torch.set_num_threads(threads)
    limit_threads(threads)
    reply(ready=True)
    case = before = None
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["do"] == "load":
                case = None  # free the previous benchmark's arrays first
                bench = benchmarks(command["smoke"])[command["name"]]
                before = resident_mb("VmRSS")
                case = build_case(contender, bench)
                reset_peak_memory()  # the peak of the runs, not of building the model (float64 init arrays)
                reply(ok=True)
            elif command["do"] == "run":
                contender.synchronize()
                start = time.perf_counter()
                out = case.modes[command["mode"]]()
                contender.synchronize()
                seconds = time.perf_counter() - start
                loss = contender.value(out) if command["mode"] == "step" else None
                del out  # a loss still referenced keeps its whole graph's arrays alive into the next run
                dtypes = sorted({contender.grad_dtype(leaf) for leaf in case.leaves}) if command["mode"] != "forward" \
                    else None
                reply(seconds=seconds, loss=loss, grad_dtypes=dtypes)
            elif command["do"] == "memory":
                peak = resident_mb()
                reply(peak_rss_mb=peak, growth_mb=None if None in (peak, before) else peak - before,
                      gpu_mb=contender.gpu_memory_mb())
            elif command["do"] == "profile":
                reply(**profile(case.modes["step"], command["steps"], contender.synchronize))
        except Exception as e:  # reported to the harness, which skips this contender for this benchmark
            reply(error=f"{type(e).__name__}: {e}")
    return None


def profile(step, steps, synchronize):
    """Milliseconds per training step inside each op's forward and backward, the optimizer and the autograd walk.

    Wraps ``forward``/``backward`` of every Function subclass (outermost call only, so an op that calls
    another op's forward is counted once), ``Tensor.backward`` and ``Optimizer.step`` with timers. On a
    GPU each timer synchronises the device first and last, or it would time kernel launches only.
    """
    from collections import defaultdict

    from tinysiam.engine.tensor import Function, Tensor
    from tinysiam.optim import Optimizer

    totals, depth = defaultdict(float), [0]

    def timed(original, label, outermost_only):
        def wrapper(*args, **kwargs):
            if outermost_only and depth[0]:
                return original(*args, **kwargs)
            depth[0] += outermost_only
            synchronize()
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                synchronize()
                totals[label] += time.perf_counter() - start
                depth[0] -= outermost_only

        return wrapper

    classes, pending = [], list(Function.__subclasses__())
    while pending:
        cls = pending.pop()
        classes.append(cls)
        pending.extend(cls.__subclasses__())
    patches = [(cls, method, f"{cls.__name__}.{method}", True) for cls in classes
               for method in ("forward", "backward") if method in vars(cls)]
    patches += [(Tensor, "backward", "Tensor.backward", False), (Optimizer, "step", "optimizer step", False)]
    originals = [(cls, method, vars(cls)[method]) for cls, method, _, _ in patches]
    for cls, method, label, outermost_only in patches:
        setattr(cls, method, timed(vars(cls)[method], label, outermost_only))
    try:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        total = (time.perf_counter() - start) / steps
    finally:
        for cls, method, original in originals:
            setattr(cls, method, original)
    per_step = {label: seconds / steps * 1e3 for label, seconds in totals.items()}
    op_backward = sum(ms for label, ms in per_step.items()
                      if label.endswith(".backward") and label != "Tensor.backward")
    op_forward = sum(ms for label, ms in per_step.items() if label.endswith(".forward"))
    rows = [(label, ms) for label, ms in per_step.items() if label != "Tensor.backward"]
    rows.append(("autograd walk (Tensor.backward minus the ops' backward: gradient sums, leaf copies)",
                 per_step.get("Tensor.backward", 0) - op_backward))
    rows.append(("the rest (module calls, argument checks, graph recording)",
                 total * 1e3 - op_forward - per_step.get("Tensor.backward", 0) - per_step.get("optimizer step", 0)))
    return {"step_ms": total * 1e3, "rows": sorted(rows, key=lambda row: -row[1])}


class Worker:
    """The harness's handle on one worker process."""

    def __init__(self, contender, device, threads, tf32):
        self.contender = contender
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", contender, "--device", device,
                   "--threads", str(threads)] + (["--tf32"] if tf32 else [])
        env = worker_environment(threads, tf32)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.unavailable = None

    def greet(self):
        """Wait for the worker's first line: False (reason in ``unavailable``) if its contender cannot run here."""
        hello = self._read()
        self.unavailable = hello.get("unavailable") or hello.get("error")
        return not self.unavailable

    def ask(self, **command):
        if self.process.poll() is not None:
            return {"error": f"worker exited with code {self.process.returncode}"}
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self):
        line = self.process.stdout.readline()
        if not line:
            return {"error": f"worker exited with code {self.process.wait()} (see its stderr above)"}
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def worker_environment(threads, tf32=False):
    """The environment of a child process: thread counts set before any library starts its pools."""
    env = dict(os.environ, CUPY_TF32="1" if tf32 else "0")
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[variable] = str(threads)
    package_parent = str(Path(__file__).resolve().parent.parent)  # works from a checkout, installed or not
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    return env


# ----- measuring one benchmark -------------------------------------------------------------------
def measure(bench, workers, repeat, warmup, smoke, settle, profile_steps):
    """Load ``bench`` in every worker, then time each mode, the workers taking turns run by run."""
    results, active = {}, []
    for worker in workers:
        answer = worker.ask(do="load", name=bench.name, smoke=smoke)
        if "error" in answer:
            results[worker.contender] = {"skipped": f"error: {answer['error'][:300]}"}
        else:
            results[worker.contender] = {"modes": {}}
            active.append(worker)
    for mode in bench.modes:
        for worker in active:
            results[worker.contender]["modes"][mode] = {"times": []}
        for r in range(warmup + repeat):
            turn = r % len(active) if active else 0
            for worker in active[turn:] + active[:turn]:  # rotate who goes first
                time.sleep(settle)  # let the previous contender's spinning BLAS threads fall asleep
                answer = worker.ask(do="run", mode=mode)
                if "error" in answer:  # this contender leaves the benchmark, the others go on
                    active.remove(worker)
                    results[worker.contender] = {"skipped": f"error: {answer['error'][:300]}"}
                    continue
                entry = results[worker.contender]["modes"][mode]
                if r == 0:  # the first step starts from the shared weights: its loss must agree across contenders
                    entry.update(first_loss=answer["loss"], grad_dtypes=answer["grad_dtypes"])
                if r >= warmup:
                    entry["times"].append(answer["seconds"])
    for worker in active:
        results[worker.contender].update(worker.ask(do="memory"))
        if profile_steps and bench.kind == "step" and worker.contender == "tinysiam":
            results["tinysiam"]["profile"] = worker.ask(do="profile", steps=profile_steps)
    return results


# ----- the machine ---------------------------------------------------------------------------------
GEMM_CODE = """
import time, {module} as xp
a = xp.random.random(({n}, {n})).astype(xp.float32); b = a.copy()
def timed():
    {sync}; start = time.perf_counter(); a @ b; {sync}
    return time.perf_counter() - start
timed()
print(2 * {n} ** 3 / min(timed() for _ in range(5)) / 1e9)
"""


def gemm_peak_gflops(device, threads, n, tf32):
    """float32 GEMM GFLOP/s of an n x n x n product, best of 5 (NumPy on CPU, CuPy on GPU), or None."""
    module, sync = ("numpy", "pass") if device == "cpu" else ("cupy", "xp.cuda.Device().synchronize()")
    done = subprocess.run([sys.executable, "-c", GEMM_CODE.format(module=module, n=n, sync=sync)],
                          env=worker_environment(threads, tf32), capture_output=True, text=True)
    return float(done.stdout) if done.returncode == 0 else None


def machine_info(threads, device):
    import importlib.metadata as metadata

    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")]
        cpu = models[0] if models else cpu
    versions = {"python": platform.python_version()}
    for package in ("numpy", "torch", "dezero", "cupy", "cupy-cuda12x", "cupy-cuda11x", "cupy-cuda13x"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "platform": platform.platform(),
            "versions": versions, "blas": blas_info()}
    if device == "gpu":
        try:
            import cupy

            info["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        except Exception:  # no CuPy, or no device: the report says which columns were skipped
            pass
    return info


def blas_info():
    """NumPy's BLAS: name, version and kernel from threadpoolctl if installed, else from numpy's build config."""
    try:
        from threadpoolctl import threadpool_info

        return "; ".join(f"{pool['internal_api']} {pool['version']} ({pool.get('architecture')})"
                         for pool in threadpool_info() if pool["user_api"] == "blas")
    except ImportError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas.get('version', '')}".strip()
    except (TypeError, KeyError):  # NumPy < 1.26 prints its config only
        return "unknown"


def memory_method():
    if Path("/proc/self/clear_refs").exists():
        return "VmHWM of /proc/self/status, reset through /proc/self/clear_refs once the model is built"
    return "ru_maxrss: the whole process's peak, model building included"


def load_average():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return None


# ----- the report ----------------------------------------------------------------------------------
def summarise(bench, results, device, peak_gflops):
    """The report entry of one benchmark: per mode, each contender's statistics and the ratios to the peers."""
    entry = {"benchmark": bench.name, "kind": bench.kind, "settings": bench.settings, "modes": {}, "memory": {}}
    flops = forward_flops(bench)
    for contender, result in results.items():
        if "skipped" in result:
            entry["memory"][contender] = {"skipped": result["skipped"]}
            continue
        entry["memory"][contender] = {key: result.get(key) for key in ("peak_rss_mb", "growth_mb", "gpu_mb")}
        if "profile" in result:
            entry["profile"] = result["profile"]
    for mode in bench.modes:
        row = entry["modes"][mode] = {"contenders": {}, "ratios": {}}
        work = flops and flops * FLOP_FACTOR[mode]
        for contender, result in results.items():
            times = result.get("modes", {}).get(mode, {}).get("times")
            if not times:
                row["contenders"][contender] = {"skipped": result.get("skipped", "not run")}
                continue
            stats = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "times": times,
                     **{k: result["modes"][mode][k] for k in ("first_loss", "grad_dtypes")}}
            if work:
                stats["gflops"] = work / stats["median_s"] / 1e9
                stats["fraction_of_gemm_peak"] = stats["gflops"] / peak_gflops if peak_gflops else None
            row["contenders"][contender] = stats
        ours = row["contenders"].get("tinysiam", {}).get("times")
        for peer in ("torch", "dezero"):
            theirs = row["contenders"].get(peer, {}).get("times")
            if ours and theirs:
                paired = [a / b for a, b in zip(ours, theirs)]  # runs made one after the other
                row["ratios"][peer] = {"of_medians": statistics.median(ours) / statistics.median(theirs),
                                       "paired": paired, "median_paired": statistics.median(paired)}
    return entry


TARGETS = [  # the targets for the CPU, float32, 2 threads
    ("mini step: tinysiam time <= 0.8 x PyTorch's", "step_mini", "torch", 0.8),
    ("Koch step: tinysiam time <= 0.8 x PyTorch's", "step_koch", "torch", 0.8),
    ("mini step: DeZero >= 3 x slower than tinysiam", "step_mini", "dezero", 1 / 3),
    ("Koch step: DeZero >= 3 x slower than tinysiam", "step_koch", "dezero", 1 / 3),
]
KOCH_MEMORY_TARGET_MB = 2000  # 2 GB


def evaluate_targets(report):
    """[(target, measured, verdict)] for the steps in this report (CPU runs only)."""
    entries = {entry["benchmark"]: entry for entry in report["benchmarks"]}
    verdicts = []
    for target, name, peer, limit in TARGETS:
        ratio = entries.get(name, {}).get("modes", {}).get("step", {}).get("ratios", {}).get(peer)
        if ratio is None:
            verdicts.append((target, "not measured", "-"))
        else:
            verdict = "met" if ratio["of_medians"] <= limit else "NOT met"
            if peer == "torch":
                measured = f"tinysiam / PyTorch = {ratio['of_medians']:.2f} (paired {ratio['median_paired']:.2f})"
            else:
                measured = (f"DeZero / tinysiam = {1 / ratio['of_medians']:.2f} "
                            f"(paired {1 / ratio['median_paired']:.2f})")
            verdicts.append((target, measured, verdict))
    peak = entries.get("step_koch", {}).get("memory", {}).get("tinysiam", {}).get("peak_rss_mb")
    verdicts.append(("Koch step: tinysiam peak memory <= 2 GB", "not measured" if peak is None else
                     f"{peak:.0f} MB (whole process, during the steps)", "-" if peak is None else
                     "met" if peak <= KOCH_MEMORY_TARGET_MB else "NOT met"))
    return verdicts


def _seconds(t, *spread):
    """``t`` in s or ms, then (min-max) in the same unit if given."""
    scale, unit, digits = (1, "s", 2) if t >= 1 else (1e3, "ms", 1) if t >= 0.01 else (1e3, "ms", 2)
    text = f"{t * scale:.{digits}f} {unit}"
    return text + (f" ({spread[0] * scale:.{digits}f}-{spread[1] * scale:.{digits}f})" if spread else "")


def _mb(value):
    return "-" if value is None else f"{value:.0f}"


def markdown(report):
    info, contenders = report["machine"], report["contenders"]
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    lines = [f"# tinysiam benchmarks: {report['device']}, {report['threads']} threads", "",
             f"Produced by `{report['command']}` ({report['date']}).", "",
             f"- Machine: {info['cpu']}, {info['cores']} cores; {info['platform']}; {versions}; BLAS: {info['blas']}"
             + (f"; GPU: {info['gpu']}" if info.get("gpu") else "") + ".",
             "- Arithmetic: " + ("TF32 allowed for every contender (--tf32)." if report["tf32"] else
                                 "strict float32 for every contender."),
             "- Allocator: tinysiam runs as it ships (it asks glibc to keep large freed blocks, "
             "TINYSIAM_MALLOC_TUNING); PyTorch and DeZero with their stock allocators.",
             "- float32 GEMM peak measured in this run: " + (f"{report['gemm_peak_gflops']:.0f} GFLOP/s "
             f"({report['gemm_peak_source']})." if report["gemm_peak_gflops"] else "not measured."),
             f"- Timing: median (min-max) of {report['repeat']} runs after {report['warmup']} warm-up runs; the "
             f"contenders take turns run by run, {report['settle_s']} s apart. Paired ratio: median of the "
             "per-run ratios.",
             "- 1-minute load average at start / end: " + " / ".join(
                 "-" if load is None else f"{load:.2f}" for load in report["load_average"])
             + " (other work on the machine slows every contender).",
             "- FLOPs: 2*M*N*K of the convolution and dense-layer GEMMs; forward+backward and step count 3x the "
             "forward."]
    lines += [f"- {reason}: column skipped." for reason in report["skipped"].values()]
    titles = [TITLES[c] for c in contenders]
    peers = [c for c in contenders if c != "tinysiam"] if "tinysiam" in contenders else []
    lines += ["", "## Time", "", "| benchmark | mode | " + " | ".join(titles)
              + "".join(f" | tinysiam / {TITLES[p]}" for p in peers)
              + " | GFLOP/s (" + " / ".join(titles) + ") | tinysiam % of GEMM peak |",
              "| --- " * (4 + len(titles) + len(peers)) + "|"]
    for entry in report["benchmarks"]:
        for mode, row in entry["modes"].items():
            cells = []
            for c in contenders:
                stats = row["contenders"].get(c, {})
                cells.append(_seconds(stats["median_s"], stats["min_s"], stats["max_s"]) if "median_s" in stats
                             else stats.get("skipped", "-"))
            for peer in peers:
                ratio = row["ratios"].get(peer)
                cells.append(f"{ratio['of_medians']:.2f} (paired {ratio['median_paired']:.2f})" if ratio else "-")
            gflops = [row["contenders"].get(c, {}).get("gflops") for c in contenders]
            cells.append(" / ".join("-" if g is None else f"{g:.1f}" for g in gflops) if any(gflops) else "-")
            fraction = row["contenders"].get("tinysiam", {}).get("fraction_of_gemm_peak")
            cells.append("-" if fraction is None else f"{fraction:.0%}")
            lines.append(f"| {entry['benchmark']} | {mode} | " + " | ".join(cells) + " |")
    lines += ["", "## Peak memory", "",
              "Peak resident set of each contender's process during the benchmark's runs, minus its size before "
              f"the benchmark's arrays and model were built, in MB ({report['memory_method']}); in parentheses the "
              "peak itself, interpreter and framework included."
              + (" GPU: memory held by the framework's caching allocator (PyTorch: peak reserved; CuPy: pool size)."
                 if report["device"] == "gpu" else ""), "",
              "| benchmark | " + " | ".join(titles) + " |", "| --- " * (1 + len(titles)) + "|"]
    for entry in report["benchmarks"]:
        cells = []
        for c in contenders:
            memory = entry["memory"].get(c, {})
            cell = "-" if "skipped" in memory else f"{_mb(memory.get('growth_mb'))} ({_mb(memory.get('peak_rss_mb'))})"
            cells.append(cell + (f"; GPU {_mb(memory['gpu_mb'])}" if memory.get("gpu_mb") is not None else ""))
        lines.append(f"| {entry['benchmark']} | " + " | ".join(cells) + " |")
    lines += same_computation(report)
    if report["device"] == "cpu":
        lines += ["", "## Targets (CPU, float32" + ("" if report["threads"] == 2 else
                  f"; the targets are stated for 2 threads, this run used {report['threads']}") + ")", "",
                  "| target | measured | verdict |", "| --- | --- | --- |"]
        lines += [f"| {target} | {measured} | {verdict} |" for target, measured, verdict in evaluate_targets(report)]
    for entry in report["benchmarks"]:
        if "profile" in entry and "rows" in entry["profile"]:
            step_ms = entry["profile"]["step_ms"]
            lines += ["", f"## Where the time goes: tinysiam {entry['benchmark']}", "",
                      f"One step took {step_ms:.1f} ms under the profiler (timers around every op's forward and "
                      "backward, the autograd walk and the optimizer).", "", "| part | ms per step | share |",
                      "| --- | --- | --- |"]
            rows = [(label, ms) for label, ms in entry["profile"]["rows"] if ms >= 0.01 * step_ms]
            small = [ms for label, ms in entry["profile"]["rows"] if ms < 0.01 * step_ms]
            rows += [(f"{len(small)} other parts, each under 1%", sum(small))] if small else []
            lines += [f"| {label} | {ms:.1f} | {ms / step_ms:.0%} |" for label, ms in rows]
    return "\n".join(lines) + "\n"


def same_computation(report):
    """Markdown lines: the first-step losses side by side, and any gradient that is not float32."""
    contenders = report["contenders"]
    lines = ["", "## Same computation", "", "First training step from the shared weights (the loss before any "
             "update) and the dtypes of the gradients:", "",
             "| benchmark | " + " | ".join(f"{TITLES[c]} loss" for c in contenders) + " | gradient dtypes |",
             "| --- " * (2 + len(contenders)) + "|"]
    wrong = []
    for entry in report["benchmarks"]:
        for mode, row in entry["modes"].items():
            for c, stats in row["contenders"].items():
                if stats.get("grad_dtypes") not in (None, ["float32"]):
                    wrong.append(f"- {entry['benchmark']} {mode}: {TITLES[c]} gradients are {stats['grad_dtypes']}")
        step = entry["modes"].get("step")
        if step:
            losses = [step["contenders"].get(c, {}).get("first_loss") for c in contenders]
            dtypes = sorted({d for stats in step["contenders"].values() for d in stats.get("grad_dtypes") or []})
            lines.append(f"| {entry['benchmark']} | " + " | ".join("-" if v is None else f"{v:.6f}" for v in losses)
                         + f" | {', '.join(dtypes) or '-'} |")
    return lines + (["", "Not float32:"] + wrong if wrong else ["", "Every gradient of every benchmark was float32."])


# ----- the command line ----------------------------------------------------------------------------
def build_parser():
    parser = argparse.ArgumentParser(prog="tinysiam bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run this benchmark only (repeatable)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per benchmark and contender")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before them")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="BLAS/OpenMP threads of every contender")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated subset of %(default)s")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run, no warm-up: checks that it runs")
    parser.add_argument("--tf32", action="store_true", help="GPU: let every contender use TF32 tensor cores")
    parser.add_argument("--profile", action="store_true", help="add a per-op profile of the tinysiam training steps")
    parser.add_argument("--json", metavar="PATH", help="write the full report here")
    parser.add_argument("--markdown", metavar="PATH", help="write the tables here")
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)  # internal: serve one contender
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.device, args.threads, args.tf32)
        return 0
    table = benchmarks(args.smoke)
    unknown = [name for name in args.only or [] if name not in table]
    if unknown:
        print(f"tinysiam bench: unknown benchmark {unknown[0]!r}; the benchmarks are: {', '.join(table)}",
              file=sys.stderr)
        return 2
    contenders = [c for c in args.contenders.split(",") if c]
    if not contenders or set(contenders) - set(CONTENDERS):
        parser.error(f"--contenders must name some of {', '.join(CONTENDERS)}, got {args.contenders!r}")
    if args.repeat < 1 or args.warmup < 0 or args.threads < 1:
        parser.error(f"need --repeat >= 1, --warmup >= 0, --threads >= 1; got {args.repeat}, {args.warmup}, "
                     f"{args.threads}")
    repeat, warmup, settle = (1, 0, 0) if args.smoke else (args.repeat, args.warmup, SETTLE_SECONDS)
    load_at_start = load_average()
    report = {"command": "tinysiam bench " + shlex.join(argv),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": machine_info(args.threads, args.device), "device": args.device, "tf32": args.tf32,
              "threads": args.threads, "repeat": repeat, "warmup": warmup, "smoke": args.smoke,
              "settle_s": settle, "contenders": contenders, "skipped": {}, "benchmarks": [],
              "memory_method": memory_method()}
    peak_n = 256 if args.smoke else 2048 if args.device == "cpu" else 8192
    report["gemm_peak_gflops"] = gemm_peak_gflops(args.device, args.threads, peak_n, args.tf32)
    report["gemm_peak_source"] = f"{'NumPy' if args.device == 'cpu' else 'CuPy'} {peak_n}^3 matmul, best of 5"
    workers = []
    for name in args.only or table:
        bench = table[name]
        reuse = args.smoke and workers and all(w.process.poll() is None for w in workers)  # smoke: one each
        if not reuse:
            workers = start_workers(contenders, args, report["skipped"], workers)
        profile_steps = (1 if args.smoke else 3) if args.profile else 0
        results = measure(bench, workers, repeat, warmup, args.smoke, settle, profile_steps)
        for contender, reason in report["skipped"].items():
            results.setdefault(contender, {"skipped": reason})
        entry = summarise(bench, results, args.device, report["gemm_peak_gflops"])
        report["benchmarks"].append(entry)
        for mode, row in entry["modes"].items():
            print(f"{name} {mode}: " + (", ".join(f"{TITLES[c]} {_seconds(stats['median_s'])}"
                                                   for c, stats in row["contenders"].items() if "median_s" in stats)
                                         or "nothing measured"), flush=True)
    for worker in workers:
        worker.close()
    report["load_average"] = (load_at_start, load_average())
    text = markdown(report)
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=1))
    if args.markdown:
        write_text_atomic(args.markdown, text)
    print("\n" + text)
    return 0


def start_workers(contenders, args, skipped, old_workers):
    """Fresh worker processes for the contenders not known to be unavailable; reports the unavailable ones."""
    for worker in old_workers:
        worker.close()
    started = [Worker(c, args.device, args.threads, args.tf32) for c in contenders if c not in skipped]
    workers = []
    for worker in started:
        if worker.greet():
            workers.append(worker)
        else:
            skipped[worker.contender] = worker.unavailable
            print(f"{worker.unavailable}: column skipped", flush=True)
            worker.close()
    return workers


if __name__ == "__main__":
    sys.exit(main())
