"""Argument checks, in one place: every layer of tinysiam refuses a bad number or tensor with the same words.

``check_number("margin", 0, low=0, low_included=False)`` raises
``ValueError("margin must be a finite number > 0, got 0")``. The ``*_problem``
functions return that phrase without the name (None when the value is fine),
for callers that raise their own error type (the training config's).
Booleans are refused as numbers: ``True`` is an int to Python, never a size.
``check_tensor``, ``check_float_tensor`` and ``check_conv_inputs`` refuse what
an op cannot take, naming the function and the argument.
"""
import math
import numbers

from .tensor import Tensor


def number_problem(value, low=None, high=None, low_included=True):
    """Why ``value`` is not a finite real number in [low, high) (or (low, high)), or None if it is."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low is None or (value >= low if low_included else value > low)) and (high is None or value < high)
    if ok:
        return None
    bounds = ([f"{'>=' if low_included else '>'} {low}"] if low is not None else []) + \
        ([f"< {high}"] if high is not None else [])
    return " ".join(["must be a finite number", " and ".join(bounds)]).rstrip() + f", got {value!r}"


def integer_problem(value, low=None):
    """Why ``value`` is not an integer >= ``low``, or None if it is (NumPy integers count)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and (low is None or value >= low):
        return None
    return f"must be an integer{'' if low is None else f' >= {low}'}, got {value!r}"


def check_number(name, value, low=None, high=None, low_included=True):
    """``value`` if it is a finite real number in range, else ValueError naming ``name``."""
    problem = number_problem(value, low, high, low_included)
    if problem:
        raise ValueError(f"{name} {problem}")
    return value


def check_integer(name, value, low=None):
    """``value`` if it is an integer >= ``low``, else ValueError naming ``name``."""
    problem = integer_problem(value, low)
    if problem:
        raise ValueError(f"{name} {problem}")
    return value


def int_pair(name, value):
    """``value`` as (a, b): an int is used for both, else a pair of ints; ValueError naming ``name`` otherwise."""
    pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value) if hasattr(value, "__len__") else ()
    if len(pair) != 2 or integer_problem(pair[0]) or integer_problem(pair[1]):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return pair


def check_tensor(caller, name, t):
    """``t`` if it is a Tensor, else TypeError naming ``caller`` and the argument ``name``."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{caller}: {name} must be a Tensor, got {type(t).__name__}")
    return t


def check_float_tensor(caller, name, t):
    """``t`` if it is a floating-point Tensor (what every differentiable op computes in), else TypeError."""
    check_tensor(caller, name, t)
    if t.dtype.kind != "f":
        raise TypeError(f"{caller}: {name} has dtype {t.dtype}, not floating-point; convert it with "
                        ".astype('float32')")
    return t


# the layouts of x and weight, by the number of axes convolved over
CONV_LAYOUTS = {1: ("(N, C, L)", "(OC, C, K)"), 2: ("(N, C, H, W)", "(OC, C, KH, KW)")}


def check_conv_inputs(fn, x, weight, bias, dims=2):
    """(x, weight[, bias]): Tensors of one floating dtype in the layouts of a ``dims``-D convolution, x and
    weight with the same channels, a bias per output channel; else an error naming ``fn`` and the shapes."""
    inputs = (x, weight) if bias is None else (x, weight, bias)
    for name, t in zip(("x", "weight", "bias"), inputs):
        check_float_tensor(fn, name, t)
    x_layout, weight_layout = CONV_LAYOUTS[dims]
    if x.ndim != dims + 2 or weight.ndim != dims + 2:
        raise ValueError(f"{fn}: x must be {x_layout} and weight {weight_layout}; got x {x.shape}, "
                         f"weight {weight.shape}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"{fn}: x has {x.shape[1]} channels (shape {x.shape}) but weight expects "
                         f"{weight.shape[1]} (weight shape {weight.shape})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{fn}: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    if len({t.dtype for t in inputs}) > 1:
        raise TypeError(f"{fn}: dtypes differ: {[str(t.dtype) for t in inputs]}")
    return inputs
