"""What is measured: the per-op cases, the training-step nets, their inputs and their FLOPs.

The step nets are tinysiam's own presets (``tinysiam.app.presets``), as
``tinysiam train`` builds them. ``describe`` walks a preset's ``Sequential``
and writes it down layer by layer, with the initial weights; the PyTorch and
DeZero twins are built from that description, so all three frameworks train
the same net from the same weights.
"""
import functools
from dataclasses import dataclass, field

import numpy as np

from tinysiam import nn
from tinysiam.app.presets import get_preset
from tinysiam.engine.checks import int_pair
from tinysiam.siamese import KochHead

LOSS_INPUTS = {"contrastive": ("a", "p"), "triplet": ("a", "p", "q"), "bce": ("logits",), "nt_xent": ("a", "p")}
FLOP_FACTOR = {"forward": 1, "forward+backward": 3, "step": 3, "epoch": 3}  # backward: two GEMMs of the forward's size
PER_CLASS = 4  # images per class in a batch-hard triplet batch, as tinysiam train samples them
WEIGHT_SEED, INPUT_SEED = 0, 1


@dataclass(frozen=True)
class Benchmark:
    name: str
    kind: str  # "conv", "pool", "batchnorm", "linear", "loss", "step" or "epoch"
    settings: dict

    @property
    def modes(self):
        return (self.kind,) if self.kind in ("step", "epoch") else ("forward", "forward+backward")


STEPS = {  # the training steps: a preset, its loss and optimizer, images per step
    "step_mini": dict(preset="mini", loss="contrastive", optimizer="sgd", images=128),
    "step_koch": dict(preset="koch", loss="koch", optimizer="sgd", images=64),
    "step_omniglot28": dict(preset="omniglot28", loss="triplet", optimizer="adam", images=128),
    "step_faces": dict(preset="faces", loss="contrastive", optimizer="adam", images=64),
}
LOSS_TEXT = {"contrastive": "contrastive loss on the L2 distance (pairs)",
             "koch": "Koch's L1 + linear head, BCE on logits (pairs)",
             "triplet": f"batch-hard triplet loss ({PER_CLASS} images per class)"}


def benchmarks(smoke=False):
    """Every benchmark, by name. Smoke mode keeps every code path and shrinks the sizes."""
    def conv(n, c, oc, k, size, padding=0):
        if smoke:
            n, c, oc, size = 2, min(c, 4), 4, k + 3
        return "conv", dict(n=n, c=c, oc=oc, k=k, size=size, padding=padding)

    def sized(kind, n, c, size):
        return kind, dict(n=2, c=4, size=12) if smoke else dict(n=n, c=c, size=size)

    table = {
        "conv_koch1": conv(64, 1, 64, 10, 105), "conv_koch2": conv(64, 64, 128, 7, 48),
        "conv_koch3": conv(64, 128, 128, 4, 21), "conv_koch4": conv(64, 128, 256, 4, 9),
        "conv_mini1": conv(128, 1, 32, 3, 28), "conv_mini2": conv(128, 32, 64, 3, 13),
        "conv_omniglot2": conv(128, 64, 64, 3, 14, padding=1), "conv_3x3_28": conv(128, 64, 64, 3, 28, padding=1),
        "maxpool_koch1": sized("pool", 64, 64, 96), "maxpool_mini1": sized("pool", 128, 32, 26),
        "maxpool_omniglot1": sized("pool", 128, 64, 28), "batchnorm_omniglot1": sized("batchnorm", 128, 64, 28),
        "linear_koch": ("linear", dict(n=4, fin=64, fout=32) if smoke else dict(n=64, fin=9216, fout=4096)),
    }
    for loss in LOSS_INPUTS:
        table[f"loss_{loss}"] = "loss", dict(loss=loss, n=8 if smoke else 256, d=16 if smoke else 128)
    for name, step in STEPS.items():
        smoke_images = 2 * PER_CLASS if step["loss"] == "triplet" else 4  # two classes; two pairs
        table[name] = "step", dict(step, images=smoke_images if smoke else step["images"])
    table["epoch_omniglot28"] = "epoch", dict(STEPS["step_omniglot28"], images=2 * PER_CLASS if smoke else 128,
                                              steps=2 if smoke else 20, classes=10 if smoke else 200, per_class=20)
    return {name: Benchmark(name, kind, settings) for name, (kind, settings) in table.items()}


# ----- the nets ------------------------------------------------------------------------------------
@dataclass
class Layer:
    """One layer of a net: its kind, its sizes, and for conv / linear / batchnorm its initial parameters."""
    kind: str  # conv, batchnorm, relu, pool, flatten, linear, sigmoid
    sizes: dict = field(default_factory=dict)
    weights: tuple = ()  # float32 NumPy arrays: (weight, bias) or (gamma, beta); bias None when absent

    def __str__(self):
        z = self.sizes
        if self.kind == "conv":
            return (f"conv {z['c']}->{z['oc']} {z['k'][0]}x{z['k'][1]}" + ("" if z["stride"] == (1, 1) else
                    f" stride {z['stride']}") + ("" if z["padding"] == (0, 0) else f" pad {z['padding'][0]}"))
        if self.kind == "pool":
            return f"maxpool {z['k'][0]}" + ("" if z["stride"] == z["k"] else f" stride {z['stride']}")
        return f"linear {z['fin']}->{z['fout']}" if self.kind == "linear" else self.kind


def _arrays(*params):
    return tuple(None if p is None else p.numpy().copy() for p in params)


def describe(tower):
    """The layers of a tinysiam ``Sequential``, in order, with copies of their parameters."""
    layers = []
    for module in tower:
        if isinstance(module, nn.Conv2d):
            sizes = dict(c=module.in_channels, oc=module.out_channels, k=module.kernel_size,
                         stride=int_pair("stride", module.stride), padding=int_pair("padding", module.padding))
            layers.append(Layer("conv", sizes, _arrays(module.weight, module.bias)))
        elif isinstance(module, nn.BatchNorm2d):
            sizes = dict(c=module.num_features, eps=module.eps, momentum=module.momentum)
            layers.append(Layer("batchnorm", sizes, _arrays(module.weight, module.bias)))
        elif isinstance(module, nn.MaxPool2d):
            kernel = int_pair("kernel_size", module.kernel_size)
            stride = kernel if module.stride is None else int_pair("stride", module.stride)
            layers.append(Layer("pool", dict(k=kernel, stride=stride)))
        elif isinstance(module, nn.Linear):
            sizes = dict(fin=module.in_features, fout=module.out_features)
            layers.append(Layer("linear", sizes, _arrays(module.weight, module.bias)))
        elif isinstance(module, (nn.ReLU, nn.Sigmoid, nn.Flatten)):
            layers.append(Layer(type(module).__name__.lower()))
        else:
            raise TypeError(f"describe: no PyTorch or DeZero twin for {type(module).__name__}")
    return layers


def tinysiam_net(bench):
    """(tower, head, rng): the preset's tower and Koch's head (for the "koch" loss, else None) drawn from a
    fixed seed, as ``tinysiam train --seed 0`` draws them, so every worker builds the same; and the generator
    after those draws, which that training loop goes on to sample batches and augmentations from."""
    rng = np.random.default_rng(WEIGHT_SEED)
    preset = get_preset(bench.settings["preset"])
    tower = preset.build(rng)
    head = KochHead(preset.embedding_size, rng=rng) if bench.settings["loss"] == "koch" else None
    return tower, head, rng


def described_net(bench):
    """(tower layers, head's linear layer or None, rng): what the PyTorch and DeZero twins are built from."""
    tower, head, rng = tinysiam_net(bench)
    return describe(tower), (describe([head.linear])[0] if head else None), rng


def net_text(bench):
    """One line naming the layers of a step's tower."""
    layers, head, _ = described_net(bench)
    return " - ".join(map(str, layers)) + (f"; head {head}" if head else "")


# ----- the same float32 inputs for every contender -------------------------------------------------
def step_arrays(bench, seed=INPUT_SEED):
    """Images in [0, 1), and labels: pair labels (same = 1) for the two halves, or class labels for triplets."""
    s, rng = bench.settings, np.random.default_rng(seed)
    images = rng.random((s["images"], 1, *get_preset(s["preset"]).input_size), dtype=np.float32)
    if s["loss"] == "triplet":
        return images, np.repeat(np.arange(s["images"] // PER_CLASS), PER_CLASS)
    return images, (rng.random(s["images"] // 2) < 0.5).astype(np.float32)


def epoch_data(bench, seed=INPUT_SEED):
    """A training set for the end-to-end loop: random images (the work does not depend on the pixels), labels."""
    s, rng = bench.settings, np.random.default_rng(seed)
    labels = np.repeat(np.arange(s["classes"]), s["per_class"])
    return rng.random((len(labels), 1, *get_preset(s["preset"]).input_size), dtype=np.float32), labels


def op_arrays(bench, seed=INPUT_SEED):
    """(inputs, grad): the op's float32 inputs by name, and the gradient fed back into its output."""
    s, rng = bench.settings, np.random.default_rng(seed)

    def normal(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    if bench.kind == "conv":
        out = s["size"] + 2 * s["padding"] - s["k"] + 1
        weight = normal(s["oc"], s["c"], s["k"], s["k"]) * np.float32(1 / s["k"])
        return dict(x=normal(s["n"], s["c"], s["size"], s["size"]), weight=weight, bias=normal(s["oc"])), \
            normal(s["n"], s["oc"], out, out)
    if bench.kind == "pool":
        half = s["size"] // 2
        return dict(x=normal(s["n"], s["c"], s["size"], s["size"])), normal(s["n"], s["c"], half, half)
    if bench.kind == "batchnorm":
        x = normal(s["n"], s["c"], s["size"], s["size"])
        return dict(x=x, weight=1 + normal(s["c"]) / 4, bias=normal(s["c"])), normal(*x.shape)
    if bench.kind == "linear":
        weight = normal(s["fout"], s["fin"]) * np.float32(1 / np.sqrt(s["fin"]))
        return dict(x=normal(s["n"], s["fin"]), weight=weight, bias=normal(s["fout"])), normal(s["n"], s["fout"])
    arrays = dict(a=normal(s["n"], s["d"]), p=normal(s["n"], s["d"]), q=normal(s["n"], s["d"]), logits=normal(s["n"]))
    arrays = {name: arrays[name] for name in LOSS_INPUTS[s["loss"]]}
    return arrays, None  # a loss is a scalar: its own gradient is 1


def labels(bench, seed=2):
    """The 0/1 "same" labels of a loss benchmark."""
    return (np.random.default_rng(seed).random(bench.settings["n"]) < 0.5).astype(np.float32)


# ----- FLOPs ---------------------------------------------------------------------------------------
def forward_flops(bench):
    """2*M*N*K summed over the GEMM-shaped work (convolutions, dense layers) of one forward pass, else None.

    An epoch counts its steps' forwards.
    """
    s = bench.settings
    if bench.kind == "conv":
        out = s["size"] + 2 * s["padding"] - s["k"] + 1
        return 2 * s["n"] * s["oc"] * out * out * s["c"] * s["k"] ** 2
    if bench.kind == "linear":
        return 2 * s["n"] * s["fin"] * s["fout"]
    if bench.kind not in ("step", "epoch"):
        return None
    per_image, per_pair = _step_flops(s["preset"], s["loss"])
    return (s["images"] * per_image + s["images"] // 2 * per_pair) * s.get("steps", 1)


@functools.cache
def _step_flops(preset, loss):
    """(FLOPs of the tower per image, of the head per pair) of a preset's net."""
    (h, w), per_image = get_preset(preset).input_size, 0
    layers, head, _ = described_net(Benchmark("flops", "step", dict(preset=preset, loss=loss)))
    for layer in layers:
        z = layer.sizes
        if layer.kind == "conv":
            (kh, kw), (sh, sw), (ph, pw) = z["k"], z["stride"], z["padding"]
            h, w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
            per_image += 2 * z["oc"] * h * w * z["c"] * kh * kw
        elif layer.kind == "pool":
            h, w = (h - z["k"][0]) // z["stride"][0] + 1, (w - z["k"][1]) // z["stride"][1] + 1
        elif layer.kind == "linear":
            per_image += 2 * z["fin"] * z["fout"]
    return per_image, 2 * head.sizes["fin"] if head else 0
