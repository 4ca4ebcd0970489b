"""Every elementary op against finite differences (hypothesis-drawn shapes) and closed forms."""
import warnings

import numpy as np
import pytest
from conftest import DEVICES, on
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysiam as ts
from tinysiam import ops
from tinysiam.app.catalogue.ops import away_from_zero, distinct
from tinysiam.engine.gradcheck import gradcheck

FAST = settings(max_examples=15, deadline=None)
on_each_device = pytest.mark.parametrize("device", DEVICES)

sizes = st.integers(1, 5)  # size 1 (broadcast axes) and odd sizes
shapes = st.lists(sizes, min_size=0, max_size=3).map(tuple)
seeds = st.integers(0, 2**16)


@st.composite
def broadcast_pairs(draw, min_ndim=0):
    """Two shapes that broadcast together, e.g. (3, 1) and (1, 4), or (2, 3, 4) and (4,)."""
    shape = draw(st.lists(sizes, min_size=min_ndim, max_size=3).map(tuple))

    def partner():
        ones = draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
        dropped = draw(st.integers(0, len(shape)))  # missing leading axes broadcast too
        return tuple(1 if one else n for n, one in zip(shape, ones))[dropped:]

    return partner(), partner()


def normal(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape)


def positive(seed, shape):
    return np.random.default_rng(seed).uniform(0.2, 2.0, shape)


# ----- gradients against finite differences, on every device ------------------------------------------------
@on_each_device
@FAST
@given(pair=broadcast_pairs(), seed=seeds, op=st.sampled_from(["add", "sub", "mul", "div"]))
def test_binary_ops_with_broadcasting(device, pair, seed, op):
    a, b = normal(seed, pair[0]), positive(seed + 1, pair[1])  # b positive: safe to divide by
    gradcheck(getattr(ops, op), *on(device, a, b))
    gradcheck(getattr(ops, op), *on(device, b, a))


@on_each_device
@FAST
@given(shape=shapes, seed=seeds, op=st.sampled_from(["add", "sub", "mul", "div", "rsub", "rdiv"]))
def test_ops_with_a_python_number(device, shape, seed, op):
    fns = {"add": lambda t: t + 1.5, "sub": lambda t: t - 1.5, "mul": lambda t: t * -2.0, "div": lambda t: t / 3.0,
           "rsub": lambda t: 1.5 - t, "rdiv": lambda t: 2.0 / t}
    gradcheck(fns[op], *on(device, positive(seed, shape)))


UNARY = {  # name: (function, input kind): "normal", "positive" (log, sqrt, fractional powers) or "kinked"
    "neg": (lambda x: -x, "normal"),
    "exp": (ops.exp, "normal"),
    "sigmoid": (ops.sigmoid, "normal"),
    "tanh": (ops.tanh, "normal"),
    "pow 2": (lambda x: x**2, "normal"),
    "pow 3": (lambda x: x**3, "normal"),
    "pow 0.5": (lambda x: x**0.5, "positive"),
    "pow 1.5": (lambda x: x**1.5, "positive"),
    "pow -1": (lambda x: x**-1, "positive"),
    "log": (ops.log, "positive"),
    "sqrt": (ops.sqrt, "positive"),
    "astype float64": (lambda x: x.astype(np.float64), "normal"),
    "abs": (ops.abs, "kinked"),  # kink at 0
    "relu": (ops.relu, "kinked"),  # kink at 0
    "maximum 0": (lambda x: ops.maximum(x, 0.0), "kinked"),  # kink at 0
    "clip [-1, 1]": (lambda x: ops.clip(x + 1.0, -1.0, 1.0), "kinked"),  # kinks where x + 1 = -1 or 1
}


@on_each_device
@FAST
@given(shape=shapes, seed=seeds, name=st.sampled_from(sorted(UNARY)))
def test_unary_ops(device, shape, seed, name):
    fn, kind = UNARY[name]
    rng = np.random.default_rng(seed)
    x = {"normal": lambda: rng.standard_normal(shape), "positive": lambda: positive(seed, shape),
         "kinked": lambda: away_from_zero(rng, shape)}[kind]()  # |x| >= 0.1, far from the kinks
    gradcheck(fn, *on(device, x))


@st.composite
def axes(draw, ndim):
    """None, one axis (maybe negative) or a tuple of distinct axes."""
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none" or ndim == 0:
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    return tuple(draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)))


@on_each_device
@FAST
@given(data=st.data(), shape=st.lists(sizes, min_size=1, max_size=3).map(tuple), seed=seeds,
       keepdims=st.booleans(), reduction=st.sampled_from(["sum", "mean", "max"]))
def test_reductions(device, data, shape, seed, keepdims, reduction):
    axis = data.draw(axes(len(shape)))
    x = distinct(np.random.default_rng(seed), shape)  # no ties for max
    gradcheck(lambda t: getattr(ops, reduction)(t, axis=axis, keepdims=keepdims), *on(device, x))


@on_each_device
@FAST
@given(batches=broadcast_pairs(), n=sizes, k=sizes, m=sizes, seed=seeds)
def test_matmul(device, batches, n, k, m, seed):
    a, b = normal(seed, batches[0] + (n, k)), normal(seed + 1, batches[1] + (k, m))
    gradcheck(ops.matmul, *on(device, a, b))


@on_each_device
@FAST
@given(data=st.data(), shape=st.lists(sizes, min_size=1, max_size=3).map(tuple), seed=seeds)
def test_reshape_and_transpose(device, data, shape, seed):
    x, = on(device, normal(seed, shape))
    gradcheck(lambda t: t.reshape(shape[::-1]), x)
    gradcheck(lambda t: t.reshape(-1, 1), x)
    gradcheck(lambda t: t.T, x)
    perm = data.draw(st.permutations(range(len(shape))))
    negatives = data.draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    perm = [p - len(shape) if neg else p for p, neg in zip(perm, negatives)]  # numpy accepts -1 for the last axis
    gradcheck(lambda t: t.transpose(perm), x)


@st.composite
def basic_indices(draw, shape):
    """A tuple of slices (any step, negative too) and integers, one per axis."""
    parts = []
    for n in shape:
        if draw(st.booleans()):
            parts.append(draw(st.integers(-n, n - 1)))
        else:
            bound = st.none() | st.integers(-n, n)
            parts.append(slice(draw(bound), draw(bound), draw(st.sampled_from([1, 2, -1, -3]))))
    return tuple(parts)


@on_each_device
@FAST
@given(data=st.data(), shape=st.lists(sizes, min_size=1, max_size=3).map(tuple), seed=seeds)
def test_basic_indexing(device, data, shape, seed):
    index = data.draw(basic_indices(shape))
    gradcheck(lambda t: t[index], *on(device, normal(seed, shape)))


@on_each_device
@FAST
@given(n=sizes, picks=st.lists(st.integers(-5, 4), min_size=1, max_size=8), seed=seeds)
def test_integer_array_indexing_with_repeats(device, n, picks, seed):
    rows = np.array([p % n for p in picks])  # repeated indices are likely: few rows, many picks
    x, = on(device, normal(seed, (n, 3)))
    gradcheck(lambda t: t[rows], x)
    gradcheck(lambda t: t[rows, rows % 3], x)  # one element per (row, column) pair
    gradcheck(lambda t: t[:, rows % 3], x)


@on_each_device
@FAST
@given(data=st.data(), shape=st.lists(sizes, min_size=1, max_size=3).map(tuple), seed=seeds,
       count=st.integers(1, 3))
def test_concatenate_and_stack(device, data, shape, seed, count):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    widths = data.draw(st.lists(sizes, min_size=count, max_size=count))
    pieces = [normal(seed + i, shape[:axis % len(shape)] + (w,) + shape[axis % len(shape) + 1:])
              for i, w in enumerate(widths)]  # different sizes along the joined axis
    gradcheck(lambda *ts_: ops.concatenate(ts_, axis=axis), *on(device, *pieces))
    new_axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    same = [normal(seed + i, shape) for i in range(count)]
    gradcheck(lambda *ts_: ops.stack(ts_, axis=new_axis), *on(device, *same))


# ----- values against closed forms ---------------------------------------------------------------------------
def test_known_matmul_and_its_gradients(device):
    a = ts.Tensor(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), requires_grad=True, device=device)
    b = ts.Tensor(np.array([[1.0, 0.0], [-1.0, 2.0], [0.5, 1.0]]), requires_grad=True, device=device)
    out = a @ b
    np.testing.assert_array_equal(out.numpy(), [[0.5, 7.0], [2.0, 16.0]])
    out.sum().backward()  # d sum(ab) / da = 1 b^T (row sums of b), d / db = a^T 1 (column sums of a)
    np.testing.assert_array_equal(ts.backend.to_numpy(a.grad), [[1.0, 1.0, 1.5]] * 2)
    np.testing.assert_array_equal(ts.backend.to_numpy(b.grad), [[5.0, 5.0], [7.0, 7.0], [9.0, 9.0]])


def test_sigmoid_and_tanh_are_stable_at_extremes(device):
    values = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    for dtype in (np.float32, np.float64):
        x = ts.Tensor(values.astype(dtype), requires_grad=True, device=device)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an overflow or invalid-value warning fails the test
            s, t = x.sigmoid(), x.tanh()
            (s + t).sum().backward()
        s, t, grad = s.numpy(), t.numpy(), ts.backend.to_numpy(x.grad)
        np.testing.assert_array_equal(s[[0, -1]], [0.0, 1.0])
        np.testing.assert_allclose(s[1:4], 1 / (1 + np.exp(-values[1:4])), rtol=1e-6)
        np.testing.assert_allclose(t, np.tanh(values), rtol=1e-6)
        np.testing.assert_array_equal(grad[[0, -1]], [0.0, 0.0])  # both saturated: slopes vanish, no NaN
        assert grad[2] == pytest.approx(0.25 + 1.0)  # sigmoid'(0) + tanh'(0)


def test_relu_of_minus_infinity_is_zero():
    x = ts.Tensor(np.array([-np.inf, -1.0, 0.0, 2.0]), requires_grad=True)
    y = x.relu()
    y.sum().backward()
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.0, 0.0, 2.0])
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0, 1.0])


def test_max_sends_the_gradient_to_the_first_maximum():
    x = ts.Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0], [5.0, 5.0, 5.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [1, 0, 0], [1, 0, 0]])
    y = ts.Tensor(np.array([[1.0, 7.0], [7.0, 7.0]]), requires_grad=True)
    y.max().backward()  # over both axes: row-major order, so (0, 1) comes before (1, 0)
    np.testing.assert_array_equal(y.grad, [[0, 1], [0, 0]])


@FAST
@given(data=st.data(), shape=st.lists(sizes, min_size=1, max_size=3).map(tuple), seed=seeds, keepdims=st.booleans())
def test_max_with_ties_follows_the_first_maximum_rule(data, shape, seed, keepdims):
    axis = data.draw(axes(len(shape)))
    x = np.random.default_rng(seed).integers(0, 3, shape).astype(float)  # three levels: many ties
    t = ts.Tensor(x, requires_grad=True)
    out = t.max(axis=axis, keepdims=keepdims)
    upstream = np.random.default_rng(seed + 1).uniform(1, 2, out.shape)
    out.backward(upstream)
    reduced = ops._normalize_axis(axis, x.ndim)
    kept_shape = [1 if a in reduced else n for a, n in enumerate(shape)]
    upstream = upstream.reshape(kept_shape)
    expected = np.zeros(shape)
    for out_index in np.ndindex(*kept_shape):  # each output: its block of x, scanned row-major
        block = tuple(slice(None) if a in reduced else i for a, i in enumerate(out_index))
        first = np.unravel_index(np.argmax(x[block]), x[block].shape)
        expected[block][first] = upstream[out_index]
    np.testing.assert_array_equal(t.grad, expected)


def test_repeated_index_gradients_add_up(device):
    x = ts.Tensor(np.arange(3.0), requires_grad=True, device=device)
    x[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(ts.backend.to_numpy(x.grad), [3.0, 0.0, 1.0])
    y = ts.Tensor(np.zeros((2, 2)), requires_grad=True, device=device)
    weights = ts.Tensor(np.array([1.0, 10.0, 100.0]), device=device)
    (y[np.array([1, 1, 0]), np.array([0, 0, 1])] * weights).sum().backward()
    np.testing.assert_array_equal(ts.backend.to_numpy(y.grad), [[0.0, 100.0], [11.0, 0.0]])


def test_clip_and_maximum_pass_the_gradient_only_inside():
    x = ts.Tensor(np.array([-2.0, -0.5, 0.5, 2.0]), requires_grad=True)
    x.clip(-1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 1, 1, 0])
    y = ts.Tensor(np.array([-1.0, 3.0]), requires_grad=True)
    y.maximum(1.0).sum().backward()
    np.testing.assert_array_equal(y.grad, [0, 1])


def test_broadcast_gradients_are_summed_over_the_stretched_axes():
    a = ts.Tensor(np.ones((3, 1)), requires_grad=True)
    b = ts.Tensor(np.arange(4.0), requires_grad=True)
    (a * b).sum().backward()  # (3, 1) * (4,) -> (3, 4)
    np.testing.assert_array_equal(a.grad, [[6.0], [6.0], [6.0]])  # sum of b, once per row
    np.testing.assert_array_equal(b.grad, [3.0, 3.0, 3.0, 3.0])  # sum of a, once per column


# ----- bad input -------------------------------------------------------------------------------------------
def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        ts.Tensor(np.ones((2, 3))) @ ts.Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(3,\) and \(3, 2\)"):
        ts.Tensor(np.ones(3)) @ ts.Tensor(np.ones((3, 2)))


def test_mixed_float_dtypes_raise():
    f32, f64 = ts.Tensor(np.ones(2, np.float32)), ts.Tensor(np.ones(2))
    for combine in (ops.add, ops.sub, ops.mul, ops.div):
        with pytest.raises(TypeError, match="float32 vs float64"):
            combine(f32, f64)
    with pytest.raises(TypeError, match="float32 vs float64"):
        ts.Tensor(np.ones((2, 2), np.float32)) @ ts.Tensor(np.ones((2, 2)))
    with pytest.raises(TypeError, match="float32 vs float64 vs float32"):
        ops.concatenate([f32, f64, f32])
    with pytest.raises(TypeError, match="float64 vs float32"):
        ops.stack([f64, f32])


def test_integer_operands_raise():
    with pytest.raises(TypeError, match="int64"):
        ts.Tensor(np.ones(2)) * ts.Tensor(np.arange(2))
    with pytest.raises(TypeError, match="int64"):
        ops.concatenate([ts.Tensor(np.ones(2)), ts.Tensor(np.arange(2))])
    with pytest.raises(TypeError, match="floating-point"):
        ts.Tensor(np.arange(3), requires_grad=True)


def test_other_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"cannot reshape \(6,\).*\(4, 2\)"):
        ts.Tensor(np.ones(6)).reshape(4, 2)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        ts.Tensor(np.ones((2, 3))).sum(axis=2)
    with pytest.raises(ValueError, match="low=1.0 is greater than high=0.0"):
        ts.Tensor(np.ones(2)).clip(1.0, 0.0)
    with pytest.raises(TypeError, match="exponent must be a Python number"):
        ts.Tensor(np.ones(2)) ** ts.Tensor(np.ones(2))
    with pytest.raises(ValueError, match="concatenate: needs at least one tensor"):
        ops.concatenate([])
