"""Every elementary op against finite differences (hypothesis-drawn shapes) and closed forms."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysiam as ts
from tinysiam import ops
from tinysiam.gradcheck import gradcheck

from conftest import on

FAST = settings(max_examples=12, deadline=None)
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


def arrays(seed, shape, low=None):
    rng = np.random.default_rng(seed)
    if low is None:
        return rng.standard_normal(shape)
    return rng.uniform(low, 2.0, shape) * rng.choice([-1.0, 1.0], shape)  # |x| >= low: away from kinks


def broadcast_partner(shape, mask):
    """``shape`` with the axes picked by ``mask`` set to 1, and maybe a leading axis dropped."""
    partner = tuple(1 if m else n for n, m in zip(shape, mask))
    return partner[1:] if len(partner) > 1 and mask[-1] else partner


@FAST
@given(shape=shapes, mask=st.lists(st.booleans(), min_size=3, max_size=3), seed=st.integers(0, 99),
       op=st.sampled_from(["add", "sub", "mul", "div"]))
def test_binary_ops_with_broadcasting(shape, mask, seed, op):
    a = arrays(seed, shape)
    b = np.abs(arrays(seed + 1, broadcast_partner(shape, mask))) + 0.5  # positive: safe to divide by
    gradcheck(getattr(ops, op), a, b)
    gradcheck(getattr(ops, op), b, a)


@FAST
@given(shape=shapes, seed=st.integers(0, 99),
       name=st.sampled_from(["neg", "exp", "sigmoid", "tanh", "pow3", "abs", "relu", "log", "sqrt", "pow_half"]))
def test_unary_ops(shape, seed, name):
    smooth = {"neg": lambda x: -x, "exp": ops.exp, "sigmoid": ops.sigmoid, "tanh": ops.tanh,
              "pow3": lambda x: x**3}
    kinked = {"abs": ops.abs, "relu": ops.relu}
    positive = {"log": ops.log, "sqrt": ops.sqrt, "pow_half": lambda x: x**0.5}
    if name in smooth:
        gradcheck(smooth[name], arrays(seed, shape))
    elif name in kinked:
        gradcheck(kinked[name], arrays(seed, shape, low=0.05))
    else:
        gradcheck(positive[name], np.abs(arrays(seed, shape)) + 0.2)


@FAST
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=3).map(tuple), seed=st.integers(0, 99),
       keepdims=st.booleans(), reduction=st.sampled_from(["sum", "mean", "max"]))
def test_reductions(shape, seed, keepdims, reduction):
    rng = np.random.default_rng(seed)
    x = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1  # distinct values: no ties for max
    axis = int(rng.integers(-len(shape), len(shape)))
    gradcheck(lambda t: getattr(t, reduction)(axis=axis, keepdims=keepdims), x)
    gradcheck(lambda t: getattr(t, reduction)(), x)


@FAST
@given(n=st.integers(1, 4), k=st.integers(1, 4), m=st.integers(1, 4), batch=st.integers(0, 2), seed=st.integers(0, 99))
def test_matmul(n, k, m, batch, seed):
    a_shape = (batch, n, k) if batch else (n, k)
    gradcheck(ops.matmul, arrays(seed, a_shape), arrays(seed + 1, (k, m)))


@FAST
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=3).map(tuple), seed=st.integers(0, 99))
def test_shape_ops(shape, seed):
    x = arrays(seed, shape)
    gradcheck(lambda t: t.reshape(-1), x)
    gradcheck(lambda t: t.transpose(), x)
    gradcheck(lambda t: t.T[..., :1], x)
    gradcheck(lambda a, b: ops.concatenate([a, b], axis=0), x, arrays(seed + 1, shape))
    gradcheck(lambda a, b: ops.stack([a, b], axis=-1), x, arrays(seed + 1, shape))


@FAST
@given(n=st.integers(1, 5), picks=st.lists(st.integers(0, 4), min_size=1, max_size=8), seed=st.integers(0, 99))
def test_integer_indexing_with_repeats(n, picks, seed):
    index = np.array([p % n for p in picks])
    gradcheck(lambda t: t[index], arrays(seed, (n, 3)))


def test_repeated_index_gradients_add_up():
    x = ts.Tensor(np.arange(3.0), requires_grad=True)
    x[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


def test_clip_and_maximum_pass_gradient_only_inside():
    x = ts.Tensor(np.array([-2.0, -0.5, 0.5, 2.0]), requires_grad=True)
    x.clip(-1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 1, 1, 0])
    y = ts.Tensor(np.array([-1.0, 3.0]), requires_grad=True)
    y.maximum(1.0).sum().backward()
    np.testing.assert_array_equal(y.grad, [0, 1])


def test_max_splits_gradient_between_ties():
    x = ts.Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [1, 0, 0]])


def test_known_matmul():
    a, b = ts.Tensor([[1.0, 2.0], [3.0, 4.0]]), ts.Tensor([[5.0, 6.0], [7.0, 8.0]])
    np.testing.assert_array_equal((a @ b).numpy(), [[19, 22], [43, 50]])


def test_sigmoid_and_tanh_are_stable_at_extremes():
    x = ts.Tensor(np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning fails the test
        s = x.sigmoid()
        s.sum().backward()
        t = ts.Tensor(x.data).tanh()
    np.testing.assert_allclose(s.numpy(), [0, 1 / (1 + np.exp(30)), 0.5, 1 / (1 + np.exp(-30)), 1], rtol=1e-12)
    np.testing.assert_allclose(t.numpy(), np.tanh(x.data))
    assert np.isfinite(x.grad).all()


def test_op_errors_name_the_shapes_and_dtypes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 3\)"):
        ts.Tensor(np.ones((2, 3))) @ ts.Tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match="float32 vs float64"):
        ts.Tensor(np.ones(2, np.float32)) + ts.Tensor(np.ones(2))
    with pytest.raises(TypeError, match="int64"):
        ts.Tensor(np.ones(2)) * ts.Tensor(np.arange(2))
    with pytest.raises(ValueError, match="cannot reshape"):
        ts.Tensor(np.ones(6)).reshape(4, 2)
    with pytest.raises(TypeError, match="floating-point"):
        ts.Tensor(np.arange(3), requires_grad=True)


@pytest.mark.parametrize("name", ["add", "mul", "matmul", "exp", "sigmoid", "getitem", "conv"])
def test_ops_on_each_device(device, name):
    from tinysiam.conv import conv2d

    rng = np.random.default_rng(0)
    fns = {"add": (ops.add, [(3, 4), (4,)]), "mul": (ops.mul, [(3, 4), (3, 1)]), "matmul": (ops.matmul, [(3, 4), (4, 2)]),
           "exp": (ops.exp, [(3, 4)]), "sigmoid": (ops.sigmoid, [(3, 4)]),
           "getitem": (lambda t: t[np.array([0, 0, 1])], [(3, 4)]),
           "conv": (lambda x, w: conv2d(x, w, padding=1), [(2, 2, 5, 5), (3, 2, 3, 3)])}
    fn, input_shapes = fns[name]
    gradcheck(fn, *on(device, *[rng.standard_normal(s) for s in input_shapes]))
