"""Which algorithm computes a 2-D convolution: by the layer's shape (the default), by timing, or forced.

``conv2d`` (``conv.py``) has three algorithms, each an op with its own backward:
``im2col`` (any stride), ``winograd`` (3x3, stride 1) and ``fft`` (stride 1,
any kernel but 1x1). This module only chooses among their names; ``conv.py``
holds the ops. docs/convolution.md explains the choice.
"""
import math
import time

from .backend import xp_of
from .tensor import Tensor

NAMES = ("im2col", "winograd", "fft")
MODES = ("auto", "benchmark")  # choose by the layer's shape, or by timing the candidates
REQUIREMENTS = {"winograd": "a 3x3 kernel and stride 1", "fft": "stride 1 and a kernel larger than 1x1"}
_setting = {"algorithm": "auto"}
_chosen = {}  # layer shape -> the algorithm "auto" or "benchmark" picked for it


def set_algorithm(name):
    """Use one convolution algorithm ("im2col", "winograd", "fft") wherever it applies, or choose per layer:
    "auto" (the default) by the layer's shape, "benchmark" by timing those that apply on the first call for
    each layer shape (like cuDNN's benchmark mode: often a little faster, but the choice, and so the rounding,
    can differ from run to run). Returns the previous setting.

    A forced algorithm that does not apply to a layer (Winograd for a 5x5 kernel) leaves that layer to im2col.
    """
    if name not in MODES and name not in NAMES:
        raise ValueError(f"set_algorithm: choose 'auto', 'benchmark' or one of {sorted(NAMES)}, got {name!r}")
    previous, _setting["algorithm"] = _setting["algorithm"], name
    return previous


def chosen_algorithms():
    """{layer: algorithm} of every layer shape "auto" or "benchmark" has chosen for in this process."""
    return dict(_chosen)


def applicable(kernel, stride):
    """The algorithms that can compute a convolution with this kernel (KH, KW) and stride (see REQUIREMENTS)."""
    names = ["im2col"]
    if stride == (1, 1):
        names += ["winograd", "fft"] if kernel == (3, 3) else ["fft"] if kernel != (1, 1) else []
    return names


def by_shape(kernel, stride, in_channels):
    """The algorithm "auto" uses, from the layer's shape alone, so a run is the same run every time.

    The rule follows what timing chose on the project's CPU (benchmarks/RESULTS.md): im2col for the first
    layer of a net (few input channels: the transforms cost more than they save), Winograd for 3x3
    stride-1 layers, FFT for larger stride-1 kernels, im2col for the rest.
    """
    names = applicable(kernel, stride)
    if in_channels < 16:
        return "im2col"
    if "winograd" in names:
        return "winograd"
    return "fft" if "fft" in names else "im2col"


def fastest(names, inputs, make_op, backward, rounds=3):
    """Of ``names``, the algorithm that computes these inputs fastest: forward, and backward if ``backward``.

    ``make_op(name)`` builds the op. The candidates take turns for a few rounds and each keeps its best
    time, so a moment of other work on the machine does not decide; the first round also pays for touching
    fresh memory. A candidate more than 3x slower than the best so far drops out.
    """
    def seconds(name):
        leaves = [Tensor(t.data, requires_grad=t.requires_grad) for t in inputs]  # the caller's graph is not touched
        start = time.perf_counter()
        out = make_op(name)(*leaves)
        last = out.data
        if backward:
            out.backward(xp_of(last).ones_like(last))
            last = next(leaf.grad for leaf in leaves if leaf.grad is not None)
        float(last.reshape(-1)[0])  # waits for a GPU to finish
        return time.perf_counter() - start

    best = dict.fromkeys(names, math.inf)
    for _ in range(rounds):
        for name in [name for name in best if best[name] <= 3 * min(best.values())]:
            best[name] = min(best[name], seconds(name))
    return min(best, key=best.get)


def choose(algorithm, inputs, stride, padding, make_op, backward):
    """The name of the algorithm that computes ``conv2d(*inputs, stride, padding)``.

    ``algorithm`` is the caller's (None follows ``set_algorithm``); a mode is resolved once per layer shape
    and remembered. An algorithm asked for by name that cannot run here is an error; one forced by
    ``set_algorithm`` falls back to im2col.
    """
    x, weight = inputs[:2]
    kernel = weight.shape[2:]
    names = applicable(kernel, stride)
    name = algorithm or _setting["algorithm"]
    if name in MODES:
        layer = (f"x {x.shape}, weight {weight.shape}, stride {stride}, padding {padding}, "
                 f"{'bias, ' if len(inputs) == 3 else ''}{x.dtype} on {x.device}, "
                 + ("forward only" if not backward else "backward" if x.requires_grad else "backward to the weights"))
        if layer not in _chosen:
            timed = name == "benchmark" and len(names) > 1
            _chosen[layer] = fastest(names, inputs, make_op, backward) if timed else by_shape(kernel, stride,
                                                                                               x.shape[1])
        return _chosen[layer]
    if name not in NAMES:
        raise ValueError(f"conv2d: algorithm must be 'auto', 'benchmark' or one of {sorted(NAMES)}, got {name!r}")
    if name not in names:
        if algorithm:  # asked for by name in this call: say why it cannot run
            raise ValueError(f"conv2d: the {name} algorithm needs {REQUIREMENTS[name]}; got kernel "
                             f"{kernel[0]}x{kernel[1]}, stride {stride}")
        return "im2col"
    return name
