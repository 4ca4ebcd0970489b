"""1-D convolution and pooling over time: the definition loop by loop, finite differences on drawn shapes, errors."""
import numpy as np
import pytest
from conftest import on
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysiam as ts
from tinysiam import nn
from tinysiam.engine.conv1d import avg_pool1d, conv1d, max_pool1d
from tinysiam.engine.gradcheck import gradcheck


def naive_conv1d(x, w, b, stride, padding, dilation):
    """out[n, o, t] = b[o] + sum over c, k of w[o, c, k] x_padded[n, c, t*stride + k*dilation], loop by loop."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    n, c, length = x.shape
    oc, _, k = w.shape
    out_length = (length - dilation * (k - 1) - 1) // stride + 1
    out = np.zeros((n, oc, out_length))
    for i in range(n):
        for o in range(oc):
            for t in range(out_length):
                out[i, o, t] = b[o] + sum(w[o, ci, j] * x[i, ci, t * stride + j * dilation]
                                          for ci in range(c) for j in range(k))
    return out


def naive_pool1d(x, kernel, stride, reduce):
    out_length = (x.shape[2] - kernel) // stride + 1
    return np.stack([reduce(x[:, :, t * stride:t * stride + kernel], axis=2) for t in range(out_length)], axis=2)


conv_cases = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 4),
                       st.integers(1, 3), st.integers(0, 3), st.integers(1, 3), st.integers(0, 5), st.booleans(),
                       st.integers(0, 99))


@settings(max_examples=25, deadline=None)
@given(case=conv_cases)
def test_conv1d_matches_definition_and_finite_differences(case):
    n, c, oc, k, stride, padding, dilation, extra, with_bias, seed = case
    rng = np.random.default_rng(seed)
    length = max(1, dilation * (k - 1) + 1 - 2 * padding) + extra  # at least one window
    x, w, b = rng.standard_normal((n, c, length)), rng.standard_normal((oc, c, k)), rng.standard_normal(oc)
    args = dict(stride=stride, padding=padding, dilation=dilation)
    out = conv1d(ts.Tensor(x), ts.Tensor(w), ts.Tensor(b) if with_bias else None, **args)
    np.testing.assert_allclose(out.numpy(), naive_conv1d(x, w, b if with_bias else np.zeros(oc), **args), atol=1e-12)
    if with_bias:
        gradcheck(lambda x_, w_, b_: conv1d(x_, w_, b_, **args), x, w, b)
    else:
        gradcheck(lambda x_, w_: conv1d(x_, w_, **args), x, w)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), length=st.integers(1, 12), k=st.integers(1, 4),
       stride=st.integers(1, 4), seed=st.integers(0, 99))
def test_pool1d_matches_definition_and_finite_differences(n, c, length, k, stride, seed):
    k = min(k, length)
    rng = np.random.default_rng(seed)
    x = rng.permutation(n * c * length).reshape(n, c, length) * 0.1  # distinct values: no ties
    np.testing.assert_array_equal(max_pool1d(ts.Tensor(x), k, stride).numpy(), naive_pool1d(x, k, stride, np.max))
    np.testing.assert_allclose(avg_pool1d(ts.Tensor(x), k, stride).numpy(), naive_pool1d(x, k, stride, np.mean),
                               atol=1e-12)
    gradcheck(lambda t: max_pool1d(t, k, stride), x)
    gradcheck(lambda t: avg_pool1d(t, k, stride), x)


def test_max_pool1d_tie_sends_the_gradient_to_the_first_maximum():
    x = ts.Tensor(np.array([[[1.0, 3.0, 3.0, 2.0, 2.0]]]), requires_grad=True)
    max_pool1d(x, 2, 1).sum().backward()  # windows (1,3) (3,3) (3,2) (2,2)
    np.testing.assert_array_equal(x.grad, [[[0, 2, 1, 1, 0]]])


def test_hand_computed_values():
    x = ts.Tensor(np.arange(6.0).reshape(1, 1, 6))
    difference = ts.Tensor(np.array([[[-1.0, 0.0, 1.0]]]))  # x[t + 2] - x[t]; with dilation 2, x[t + 4] - x[t]
    np.testing.assert_array_equal(conv1d(x, difference).numpy(), [[[2, 2, 2, 2]]])
    np.testing.assert_array_equal(conv1d(x, difference, dilation=2).numpy(), [[[4, 4]]])
    np.testing.assert_array_equal(conv1d(x, difference, padding=1, stride=3).numpy(), [[[1, 2]]])
    np.testing.assert_array_equal(avg_pool1d(x, 3).numpy(), [[[1, 4]]])
    np.testing.assert_array_equal(max_pool1d(x, 4, 2).numpy(), [[[3, 5]]])


def test_same_values_on_each_device(device):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((3, 2, 20)), rng.standard_normal((4, 2, 5)), rng.standard_normal(4)
    expected = max_pool1d(conv1d(ts.Tensor(x), ts.Tensor(w), ts.Tensor(b), padding=2, dilation=2), 3).numpy()
    tensors = [ts.Tensor(a, requires_grad=True) for a in on(device, x, w, b)]
    out = max_pool1d(conv1d(*tensors, padding=2, dilation=2), 3)
    out.sum().backward()
    assert out.device == device
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)


def test_errors_name_the_argument_and_the_value():
    x = ts.Tensor(np.ones((2, 3, 10), np.float32))
    w = ts.Tensor(np.ones((4, 3, 5), np.float32))
    with pytest.raises(ValueError, match=r"x has 10 steps, fewer than the 13 steps one window spans"):
        conv1d(x, w, dilation=3)
    with pytest.raises(ValueError, match=r"x has 10 steps \(12 with the padding\), fewer than the 13"):
        conv1d(x, w, padding=1, dilation=3)
    with pytest.raises(ValueError, match=r"conv1d: x has 3 channels \(shape \(2, 3, 10\)\) but weight expects 2"):
        conv1d(x, ts.Tensor(np.ones((4, 2, 3), np.float32)))
    with pytest.raises(ValueError, match=r"conv1d: x must be \(N, C, L\) and weight \(OC, C, K\); got x \(3, 10\)"):
        conv1d(ts.Tensor(np.ones((3, 10), np.float32)), w)
    with pytest.raises(TypeError, match="dtypes differ"):
        conv1d(x, ts.Tensor(np.ones((4, 3, 5))))
    with pytest.raises(ValueError, match="bias must have shape"):
        conv1d(x, w, ts.Tensor(np.ones(3, np.float32)))
    for name, value in (("stride", 0), ("padding", -1), ("dilation", 1.5)):
        with pytest.raises(ValueError, match=f"{name} must be an integer >= ., got {value}"):
            conv1d(x, w, **{name: value})
    with pytest.raises(ValueError, match="max_pool1d: x has 10 steps, fewer than the 11"):
        max_pool1d(x, 11)
    with pytest.raises(ValueError, match="avg_pool1d: stride must be an integer >= 1, got 0"):
        avg_pool1d(x, 2, 0)
    with pytest.raises(TypeError, match="floating-point"):
        max_pool1d(ts.Tensor(np.ones((1, 1, 4), np.int64)))


def test_layers_wrap_the_ops():
    rng = np.random.default_rng(0)
    layer = nn.Conv1d(3, 5, 4, stride=2, padding=1, dilation=2, rng=rng)
    assert layer.weight.shape == (5, 3, 4) and layer.bias.shape == (5,)
    assert "kernel_size=4, stride=2, padding=1, dilation=2" in repr(layer)
    x = ts.Tensor(rng.standard_normal((2, 3, 17)).astype(np.float32))
    expected = naive_conv1d(x.numpy(), layer.weight.numpy(), layer.bias.numpy(), 2, 1, 2)
    np.testing.assert_allclose(layer(x).numpy(), expected, atol=1e-5)
    assert nn.Conv1d(3, 5, 4, bias=False, rng=rng).bias is None
    np.testing.assert_array_equal(nn.MaxPool1d(3)(x).numpy(), naive_pool1d(x.numpy(), 3, 3, np.max))
    np.testing.assert_allclose(nn.AvgPool1d(4, 2)(x).numpy(), naive_pool1d(x.numpy(), 4, 2, np.mean), atol=1e-6)
    with pytest.raises(ValueError, match=r"Conv1d\(3, 5\): expected input \(N, 3, L\), got shape \(2, 4, 17\)"):
        layer(ts.Tensor(np.ones((2, 4, 17), np.float32)))
    with pytest.raises(ValueError, match="Conv1d: kernel_size must be an integer >= 1, got 0"):
        nn.Conv1d(3, 5, 0)
