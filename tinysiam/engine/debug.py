"""Seeing what autograd does: the graph as a picture, the backward pass as it runs, the first NaN.

* ``to_dot(loss)`` writes the graph behind a tensor in Graphviz's DOT language:
  an ellipse per tensor (shape, dtype and, once ``backward(retain_graph=True)``
  has filled it, the norm of its ``.grad``; a plain ``backward()`` frees the
  graph's links, so that a kept loss holds no activations), a box per op. ``render(loss, "graph.svg")`` draws
  it with the ``graphviz`` package (``pip install tinysiam[graph]``, plus
  Graphviz's ``dot`` program); the DOT text itself needs nothing.
* ``with trace():`` prints every backward call in the order ``backward()``
  makes it: the op, the gradient arriving from above, the gradients it returns
  (shapes and norms, or with ``values=True`` the numbers themselves).
* ``with detect_anomaly():`` raises ``FloatingPointError`` at the first op
  whose forward or backward pass makes a NaN or an infinity, naming the op and
  the shapes of its inputs.

The last two watch every op through ``tensor.observing``.
"""
import contextlib
import sys
from pathlib import Path

import numpy as np

from .backend import is_gpu_array, to_numpy, xp_of
from .tensor import observing


def _norm(array):
    return float(xp_of(array).linalg.norm(array.ravel()))


def _shapes(tensors):
    return ", ".join(str(t.shape) for t in tensors)


# ----- the graph as DOT text -------------------------------------------------------------
def _label(lines):
    """A DOT label of several lines: quotes and backslashes escaped, lines joined by DOT's \\n."""
    return '"' + "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines) + '"'


def to_dot(output, names=None):
    """The graph that computed ``output``, as DOT text (``dot -Tsvg`` draws it).

    ``names`` maps labels to tensors, e.g. ``dict(model.named_parameters())``,
    to name those nodes. Tensors that need a gradient are filled; constants
    (data, labels) are dashed. Edges run from inputs to ops to results, so an
    input used twice by one op has two edges.
    """
    labels = {id(tensor): name for name, tensor in (names or {}).items()}
    node_ids = {}

    def node_id(obj, prefix):  # "t" for tensors, "f" for ops, numbered in order of discovery
        if id(obj) not in node_ids:
            node_ids[id(obj)] = f"{prefix}{len(node_ids)}"
        return node_ids[id(obj)]

    lines = ["digraph autograd {", '  node [fontname="Helvetica"];']
    stack, seen = [output], set()
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        text = [labels[id(tensor)]] if id(tensor) in labels else []
        text.append(f"{tensor.shape} {tensor.dtype}")
        if tensor.size == 1:  # a loss, a scalar: its value helps to follow the numbers
            text.append(f"value {tensor.item():.6g}")
        if tensor.grad is not None:
            text.append(f"grad norm {_norm(tensor.grad):.6g}")
        style = "filled" if tensor.requires_grad else "dashed"
        lines.append(f"  {node_id(tensor, 't')} [label={_label(text)}, style={style}];")
        fn = tensor.creator
        if fn is not None:
            lines.append(f"  {node_id(fn, 'f')} [label={_label([type(fn).__name__])}, shape=box];")
            lines.append(f"  {node_id(fn, 'f')} -> {node_id(tensor, 't')};")
            for inp in fn.inputs:
                lines.append(f"  {node_id(inp, 't')} -> {node_id(fn, 'f')};")
                stack.append(inp)
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(output, path, names=None):
    """Draw ``to_dot(output, names)`` into ``path``; its suffix picks the format (.svg, .png, .pdf)."""
    try:
        import graphviz
    except ImportError:
        raise ImportError("render() needs the graphviz package: pip install tinysiam[graph] (and Graphviz's "
                          "dot program); to_dot() gives the DOT text without either") from None
    path = Path(path)
    path.write_bytes(graphviz.Source(to_dot(output, names)).pipe(format=path.suffix.lstrip(".")))
    return path


# ----- trace: every backward call as it happens -----------------------------------------
def _shape_and_norm(array):
    return f"{array.shape} norm {_norm(array):.6g}"


def _values(array):  # on one line, 4 decimals ("+ 0.0" turns -0.0 into 0.0)
    text = np.array2string(to_numpy(array), separator=", ", max_line_width=10**9,
                           formatter={"float_kind": lambda v: f"{v + 0.0:.4f}"})
    return text.replace("\n", "")


class _Trace:
    def __init__(self, file, describe):
        self.file, self.describe, self.calls = file, describe, 0

    def forward(self, fn, inputs, output):
        pass

    def backward(self, fn, grad_output, input_grads):
        self.calls += 1
        returned = ", ".join("none" if g is None else self.describe(g) for g in input_grads)
        print(f"{self.calls:3d} {type(fn).__name__}.backward: grad {self.describe(grad_output)} -> {returned}",
              file=self.file)


@contextlib.contextmanager
def trace(file=None, values=False):
    """Print each backward call made inside this block (to ``file``, default standard output).

    One line per call: its number, the op, the gradient arriving from above,
    and the gradient it returns for each input ("none" where an input needs
    none). Each gradient is shown by its shape and norm, or, with
    ``values=True``, by its values (4 decimals), to follow a small example by hand.
    """
    with observing(_Trace(file or sys.stdout, _values if values else _shape_and_norm)):
        yield


# ----- anomaly detection ------------------------------------------------------------------
def _non_finite(array):
    """{"NaN", "Inf"}: which kinds of non-finite value ``array`` holds."""
    if array.dtype.kind != "f":
        return set()
    xp = xp_of(array)
    return {kind for kind, test in (("NaN", xp.isnan), ("Inf", xp.isinf)) if bool(test(array).any())}


class _AnomalyDetector:
    def forward(self, fn, inputs, output):
        made = _non_finite(output.data) - set().union(*(_non_finite(x.data) for x in inputs))
        if made:
            raise FloatingPointError(
                f"{type(fn).__name__} produced {' and '.join(sorted(made))} in its forward pass, from inputs "
                f"holding none; input shapes {_shapes(inputs)}, output shape {output.shape}")

    def backward(self, fn, grad_output, input_grads):
        for i, g in enumerate(input_grads):
            made = set() if g is None else _non_finite(g) - _non_finite(grad_output)
            if made:
                raise FloatingPointError(
                    f"{type(fn).__name__} produced {' and '.join(sorted(made))} in its backward pass: the gradient "
                    f"for input {i} (shape {g.shape}) holds it, the gradient from above (shape {grad_output.shape}) "
                    f"does not; input shapes {_shapes(fn.inputs)}")


@contextlib.contextmanager
def detect_anomaly():
    """Raise ``FloatingPointError`` at the first op inside this block that makes a NaN or an infinity.

    Forward: an op whose output holds a kind of non-finite value (NaN, Inf)
    that none of its inputs holds. Backward: an op that returns such a value
    for an input while the gradient arriving from above holds none. So values
    that enter already non-finite (a -inf mask, broken data) are not blamed on
    the ops they pass through; the op that first made them is named. Checking
    every array costs time: use it to find a bug, not to train.

    Inside it, the value checks of tinysiam's losses and distances also run on
    CuPy arrays (outside it they are skipped there: each would wait for the GPU).
    """
    global _anomaly_detectors
    _anomaly_detectors += 1
    try:
        with observing(_AnomalyDetector()):
            yield
    finally:
        _anomaly_detectors -= 1


_anomaly_detectors = 0  # how many detect_anomaly() blocks are open


def detecting_anomalies():
    """True inside ``detect_anomaly()``."""
    return _anomaly_detectors > 0


def may_read(array):
    """Whether a check may read ``array``'s values: always for a NumPy array; for a CuPy array only inside
    ``detect_anomaly()``, since elsewhere each read would make Python wait for the GPU (a host sync)."""
    return not is_gpu_array(array) or detecting_anomalies()
