"""The differentiable operations: one small class each, forward next to backward.

Every ``backward(g)`` receives ``g = dL/d(output)`` and returns ``dL/d(input)``
for each input; the comment on it gives the derivative it multiplies by.
Arrays may be NumPy or CuPy: array methods (``a.sum()``) work on both, and
``xp_of`` gives the module where a function (``xp.exp``) is needed.
"""
import builtins
import operator

import numpy as np

from . import threads, workspace
from .backend import xp_of
from .pytorch_habits import no_attribute, numpy_names, transpose_problem
from .tensor import Function, Tensor


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``: the backward of NumPy broadcasting.

    An input broadcast along an axis was used once per position on that axis,
    so its gradient is the sum over that axis.
    """
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _operands(op_name, *operands):
    """Tensors of one floating dtype; Python numbers take the dtype of the first tensor."""
    if not operands:
        raise ValueError(f"{op_name}: needs at least one tensor, got none")
    ref = next((x for x in operands if isinstance(x, Tensor)), None)
    tensors = [_tensor_like(x, ref) for x in operands]
    for x in tensors:
        if x.dtype.kind != "f":
            raise TypeError(f"{op_name}: needs floating-point operands, got dtype {x.dtype} (shape {x.shape}); "
                            "convert with .astype('float32')")
    if len({x.dtype for x in tensors}) > 1:
        dtypes = " vs ".join(str(x.dtype) for x in tensors)
        shapes = ", ".join(str(x.shape) for x in tensors)
        raise TypeError(f"{op_name}: dtype mismatch {dtypes} (shapes {shapes}); "
                        "convert one with .astype() so nothing is silently upcast")
    return tensors


def _tensor_like(x, ref):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float)) and ref is not None:
        return Tensor(xp_of(ref.data).asarray(x, dtype=ref.dtype))
    return Tensor(x)


# ----- arithmetic ---------------------------------------------------------------
class Add(Function):
    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, g):  # d(a+b)/da = 1, d(a+b)/db = 1
        return unbroadcast(g, self.a_shape), unbroadcast(g, self.b_shape)


def add(a, b):
    return Add()(*_operands("add", a, b))


class Sub(Function):
    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, g):  # d(a-b)/da = 1, d(a-b)/db = -1
        return unbroadcast(g, self.a_shape), unbroadcast(-g, self.b_shape)


def sub(a, b):
    return Sub()(*_operands("sub", a, b))


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):  # d(ab)/da = b, d(ab)/db = a
        return unbroadcast(g * self.b, self.a.shape), unbroadcast(g * self.a, self.b.shape)


def mul(a, b):
    return Mul()(*_operands("mul", a, b))


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):  # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
        grad_a = g / self.b
        return unbroadcast(grad_a, self.a.shape), unbroadcast(-grad_a * self.a / self.b, self.b.shape)


def div(a, b):
    return Div()(*_operands("div", a, b))


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):  # d(-x)/dx = -1
        return -g


def neg(x):
    return Neg()(x)


class Pow(Function):
    """x ** p for a constant exponent p."""

    def __init__(self, exponent):
        if not isinstance(exponent, (int, float)):
            raise TypeError(f"pow: exponent must be a Python number, got {type(exponent).__name__}")
        self.p = exponent

    def forward(self, x):
        self.x = x
        return x**self.p

    def backward(self, g):  # d(x^p)/dx = p x^(p-1)
        return g * self.p * self.x ** (self.p - 1)


def pow(x, exponent):
    return Pow(exponent)(x)


class MatMul(Function):
    """a @ b for 2-D (or batched, broadcasting) matrices."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):  # dL/da = g b^T, dL/db = a^T g
        grad_a = g @ self.b.swapaxes(-1, -2)
        grad_b = self.a.swapaxes(-1, -2) @ g
        return unbroadcast(grad_a, self.a.shape), unbroadcast(grad_b, self.b.shape)


def matmul(a, b):
    a, b = _operands("matmul", a, b)
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align (need (..., n, k) @ (..., k, m))")
    return MatMul()(a, b)


# ----- reductions ---------------------------------------------------------------
def _normalize_axis(axis, ndim):
    """``axis`` as a sorted tuple of non-negative axes (None = all)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axes))


class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.shape = x.shape
        self.axes = _normalize_axis(self.axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):  # d(sum x)/dx_i = 1: copy g to every summed position
        if not self.keepdims:
            g = g.reshape([1 if i in self.axes else n for i, n in enumerate(self.shape)])
        return xp_of(g).broadcast_to(g, self.shape)


@numpy_names
def sum(x, axis=None, keepdims=False):
    return Sum(axis, keepdims)(x)


class Mean(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.shape = x.shape
        self.axes = _normalize_axis(self.axis, x.ndim)
        self.count = int(np.prod([x.shape[a] for a in self.axes]))
        return x.mean(axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):  # d(mean x)/dx_i = 1/n
        if not self.keepdims:
            g = g.reshape([1 if i in self.axes else n for i, n in enumerate(self.shape)])
        return xp_of(g).broadcast_to(g / self.count, self.shape)


@numpy_names
def mean(x, axis=None, keepdims=False):
    return Mean(axis, keepdims)(x)


class Max(Function):
    """Maximum over axes. A tie sends the whole gradient to the FIRST maximum (row-major order
    over the reduced axes), the rule max-pooling follows too.  (docs/derivations.md#sum-mean-and-max)"""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        axes = _normalize_axis(self.axis, x.ndim)
        kept = [a for a in range(x.ndim) if a not in axes]
        self.order = kept + list(axes)  # move the reduced axes last and flatten them: one row per output
        self.moved_shape = tuple(x.shape[a] for a in self.order)
        rows = x.transpose(self.order).reshape(self.moved_shape[:len(kept)] + (-1,))
        self.first = rows.argmax(axis=-1)  # argmax finds the first maximum of each row
        top = rows.max(axis=-1)
        return top.reshape([1 if a in axes else n for a, n in enumerate(x.shape)]) if self.keepdims else top

    def backward(self, g):  # d(max x)/dx_i = 1 at the first maximum, 0 elsewhere
        xp = xp_of(g)
        row_length = int(np.prod(self.moved_shape[self.first.ndim:]))
        winners = xp.arange(row_length) == xp.expand_dims(self.first, -1)  # one True per row
        grad_rows = winners * g.reshape(self.first.shape + (1,))
        return grad_rows.reshape(self.moved_shape).transpose(np.argsort(self.order))


@numpy_names
def max(x, axis=None, keepdims=False):
    """The maximum values only (PyTorch's ``t.max(dim)`` also returns their indices)."""
    return Max(axis, keepdims)(x)


# ----- shape ----------------------------------------------------------------------
class Reshape(Function):
    def __init__(self, shape):
        self.new_shape = shape

    def forward(self, x):
        self.shape = x.shape
        try:
            return x.reshape(self.new_shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape {x.shape} ({x.size} elements) into {self.new_shape}") from None

    def backward(self, g):  # reshaping moves no value: reshape the gradient back
        return g.reshape(self.shape)


def reshape(x, *shape):
    return Reshape(shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)(x)


def squeeze(x, axis=None):
    """x without its axes of length 1 (all of them, or ``axis``): a reshape."""
    axes = [a for a, n in enumerate(x.shape) if n == 1] if axis is None else _normalize_axis(axis, x.ndim)
    if builtins.any(x.shape[a] != 1 for a in axes):
        raise ValueError(f"squeeze: axis {axis} of a tensor of shape {x.shape} does not have length 1")
    return reshape(x, tuple(n for a, n in enumerate(x.shape) if a not in axes))


class Transpose(Function):
    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        axes = tuple(reversed(range(x.ndim))) if self.axes is None else tuple(self.axes)
        out = x.transpose(axes)  # raises on a bad permutation
        self.axes = tuple(a % x.ndim for a in axes)  # non-negative, so argsort in backward inverts it
        return out

    def backward(self, g):  # undo the permutation
        return g.transpose(np.argsort(self.axes))


def transpose(x, *axes):
    """x with its axes permuted: ``axes`` is a permutation of all of them (None reverses them), as in NumPy."""
    axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes or None
    if axes is not None and len(axes) != x.ndim:
        raise ValueError(transpose_problem(axes, x.shape))
    return Transpose(axes)(x)


def _has_array_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    return builtins.any(hasattr(p, "__len__") for p in parts)


class GetItem(Function):
    """x[index]: basic slicing and integer-array (fancy) indexing."""

    def __init__(self, index):
        parts = index if isinstance(index, tuple) else (index,)
        parts = tuple(p.data if isinstance(p, Tensor) else p for p in parts)
        self.index = parts if isinstance(index, tuple) else parts[0]

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, g):  # each read element sends its gradient back where it came from
        grad = xp_of(g).zeros(self.shape, dtype=self.dtype)
        if _has_array_index(self.index):
            xp_of(g).add.at(grad, self.index, g)  # unbuffered: an index read twice gets both gradients
        else:
            grad[self.index] = g
        return grad


def getitem(x, index):
    return GetItem(index)(x)


class Concatenate(Function):
    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *arrays):
        self.sizes = [a.shape[self.axis] for a in arrays]
        return xp_of(arrays[0]).concatenate(arrays, axis=self.axis)

    def backward(self, g):  # each input gets its own slice of g
        cuts = np.cumsum(self.sizes)[:-1].tolist()
        return tuple(xp_of(g).split(g, cuts, axis=self.axis))


@numpy_names
def concatenate(tensors, axis=0):
    return Concatenate(axis)(*_operands("concatenate", *tensors))


class Stack(Function):
    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *arrays):
        return xp_of(arrays[0]).stack(arrays, axis=self.axis)

    def backward(self, g):  # input i gets g[..., i, ...] along the new axis
        return tuple(xp_of(g).moveaxis(g, self.axis, 0))


@numpy_names
def stack(tensors, axis=0):
    return Stack(axis)(*_operands("stack", *tensors))


class AsType(Function):
    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def forward(self, x):
        self.in_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, g):  # identity, cast back
        return g.astype(self.in_dtype)


def astype(x, dtype):
    return AsType(dtype)(x)


# ----- element-wise functions ------------------------------------------------------
class Exp(Function):
    def forward(self, x):
        self.out = xp_of(x).exp(x)
        return self.out

    def backward(self, g):  # d(e^x)/dx = e^x
        return g * self.out


def exp(x):
    return Exp()(x)


class Log(Function):
    def forward(self, x):
        self.x = x
        return xp_of(x).log(x)

    def backward(self, g):  # d(log x)/dx = 1/x
        return g / self.x


def log(x):
    return Log()(x)


class Sqrt(Function):
    def forward(self, x):
        self.out = xp_of(x).sqrt(x)
        return self.out

    def backward(self, g):  # d(sqrt x)/dx = 1 / (2 sqrt x)
        return g / (2 * self.out)


def sqrt(x):
    return Sqrt()(x)


class Abs(Function):
    def forward(self, x):
        self.x = x
        return xp_of(x).abs(x)

    def backward(self, g):  # d|x|/dx = sign(x), taken as 0 at x = 0
        return g * xp_of(g).sign(self.x)


def abs(x):
    return Abs()(x)


class ReLU(Function):
    def forward(self, x):
        self.positive, out = workspace.empty_like(x, bool), workspace.empty_like(x)
        threads.split(_positive_part, [x, self.positive, out])  # a slice per core
        return out

    def backward(self, g):  # d relu(x)/dx = 1 if x > 0 else 0
        grad = workspace.empty_like(g)
        threads.split(lambda g, positive, grad: xp_of(g).multiply(g, positive, out=grad), [g, self.positive, grad])
        return grad


def _positive_part(x, positive, out):
    xp_of(x).greater(x, 0, out=positive)
    xp_of(x).maximum(x, 0, out=out)  # not x * positive: that gives -inf * 0 = nan


def relu(x):
    return ReLU()(x)


class Sigmoid(Function):
    def forward(self, x):
        # 1 / (1 + e^-x) written as exp(-log(1 + e^-x)): logaddexp never overflows
        self.out = xp_of(x).exp(-xp_of(x).logaddexp(0, -x))
        return self.out

    def backward(self, g):  # d sigma(x)/dx = sigma(x) (1 - sigma(x))
        return g * self.out * (1 - self.out)


def sigmoid(x):
    return Sigmoid()(x)


class Tanh(Function):
    def forward(self, x):
        self.out = xp_of(x).tanh(x)
        return self.out

    def backward(self, g):  # d tanh(x)/dx = 1 - tanh(x)^2
        return g * (1 - self.out * self.out)


def tanh(x):
    return Tanh()(x)


class Clip(Function):
    """Limit to [low, high] (either may be None)."""

    def __init__(self, low=None, high=None):
        if low is not None and high is not None and low > high:
            raise ValueError(f"clip: low={low} is greater than high={high}")
        self.low, self.high = low, high

    def forward(self, x):
        self.x = x
        return xp_of(x).clip(x, self.low, self.high)

    def backward(self, g):  # 1 inside [low, high] (bounds included), 0 where clipped
        inside = xp_of(g).ones(self.x.shape, dtype=bool)
        if self.low is not None:
            inside &= self.x >= self.low
        if self.high is not None:
            inside &= self.x <= self.high
        return g * inside


def clip(x, low=None, high=None):
    return Clip(low, high)(x)


def maximum(x, value):
    """max(x, value) for a scalar ``value``; the gradient passes where x >= value."""
    return Clip(low=value)(x)


# ----- Tensor's operators and methods ----------------------------------------------
def _swapped(fn):
    """``fn`` with its two arguments swapped: ``2 - t`` calls ``t.__rsub__(2)``, which is sub(2, t)."""
    return lambda a, b: fn(b, a)


def _comparison(compare):
    """An element-wise comparison (``t > 0``): a boolean Tensor, outside the graph, since it has no gradient."""
    return lambda a, b: Tensor(compare(a.data, b.data if isinstance(b, Tensor) else b))


# The one place where Tensor gets its operators and methods: each calls a function of this module.
_TENSOR_METHODS = {
    "__add__": add, "__radd__": _swapped(add), "__sub__": sub, "__rsub__": _swapped(sub),
    "__mul__": mul, "__rmul__": _swapped(mul), "__truediv__": div, "__rtruediv__": _swapped(div),
    "__matmul__": matmul, "__rmatmul__": _swapped(matmul), "__neg__": neg, "__pow__": pow,
    "__getitem__": getitem, "astype": astype, "sum": sum, "mean": mean, "max": max, "reshape": reshape,
    "squeeze": squeeze, "transpose": transpose, "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "__abs__": abs,
    "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "clip": clip, "maximum": maximum, "T": property(transpose),
    "__lt__": _comparison(operator.lt), "__le__": _comparison(operator.le), "__gt__": _comparison(operator.gt),
    "__ge__": _comparison(operator.ge), "__eq__": _comparison(operator.eq), "__ne__": _comparison(operator.ne),
    "__hash__": object.__hash__,  # == compares values, so a tensor hashes by identity, as in PyTorch
    "__getattr__": no_attribute,
}
for _name, _method in _TENSOR_METHODS.items():
    setattr(Tensor, _name, _method)
