"""Convolution and max-pooling: finite differences on drawn shapes, and hand-computed values."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysiam as ts
import tinysiam.engine.conv as conv
from tinysiam.engine.conv import conv2d, max_pool2d
from tinysiam.engine.gradcheck import gradcheck


def naive_conv(x, w, b, stride, padding):
    """The definition, loop by loop."""
    (sh, sw), (ph, pw) = stride, padding
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, _, h, wd = x.shape
    oc, _, kh, kw = w.shape
    out = np.zeros((n, oc, (h - kh) // sh + 1, (wd - kw) // sw + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


conv_cases = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
                       st.integers(1, 3), st.integers(1, 2), st.integers(1, 2), st.integers(0, 2), st.integers(0, 1),
                       st.integers(0, 99))


@settings(max_examples=15, deadline=None)
@given(case=conv_cases)
def test_conv2d_matches_definition_and_finite_differences(case):
    n, c, oc, kh, kw, sh, sw, ph, pw, seed = case
    rng = np.random.default_rng(seed)
    h, w = kh + int(rng.integers(0, 5)), kw + int(rng.integers(0, 4))
    x, weight, bias = rng.standard_normal((n, c, h, w)), rng.standard_normal((oc, c, kh, kw)), rng.standard_normal(oc)
    out = conv2d(ts.Tensor(x), ts.Tensor(weight), ts.Tensor(bias), stride=(sh, sw), padding=(ph, pw))
    np.testing.assert_allclose(out.numpy(), naive_conv(x, weight, bias, (sh, sw), (ph, pw)), atol=1e-12)
    gradcheck(lambda a, b, c_: conv2d(a, b, c_, stride=(sh, sw), padding=(ph, pw)), x, weight, bias)


def test_conv2d_hand_computed():
    x = ts.Tensor(np.arange(9.0).reshape(1, 1, 3, 3))
    w = ts.Tensor(np.array([[[[1.0, 0.0], [0.0, -1.0]]]]))
    # each output is x[i, j] - x[i + 1, j + 1] = -4
    np.testing.assert_array_equal(conv2d(x, w).numpy(), np.full((1, 1, 2, 2), -4.0))


def test_conv2d_in_batch_slices_gives_the_same_result(monkeypatch):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((5, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    whole = conv2d(ts.Tensor(x), ts.Tensor(w), ts.Tensor(b), padding=1).numpy()
    monkeypatch.setattr(conv, "COLUMN_BUDGET_BYTES", 2 * 18 * 36 * 8)  # two samples per slice
    np.testing.assert_allclose(conv2d(ts.Tensor(x), ts.Tensor(w), ts.Tensor(b), padding=1).numpy(), whole, atol=1e-12)
    gradcheck(lambda a, b_, c_: conv2d(a, b_, c_, padding=1), x, w, b)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(2, 7), w=st.integers(2, 7), k=st.integers(1, 3),
       s=st.integers(1, 3), seed=st.integers(0, 99))
def test_max_pool_matches_definition_and_finite_differences(n, c, h, w, k, s, seed):
    k = min(k, h, w)
    rng = np.random.default_rng(seed)
    x = rng.permutation(n * c * h * w).reshape(n, c, h, w) * 0.1  # distinct: no ties
    out = max_pool2d(ts.Tensor(x), k, s).numpy()
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    expected = np.array([[[[x[a, b, i * s:i * s + k, j * s:j * s + k].max() for j in range(ow)] for i in range(oh)]
                          for b in range(c)] for a in range(n)])
    np.testing.assert_array_equal(out, expected)
    gradcheck(lambda t: max_pool2d(t, k, s), x)


def naive_pool_and_grad(x, g, k, s):
    """Max-pooling by its rule, window by window: scanning row-major, a value takes over when it is greater
    than the maximum so far or is NaN (PyTorch's rule); the input that holds the window's output gets its gradient."""
    n, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out, grad = np.zeros((n, c, oh, ow)), np.zeros_like(x)
    for a, b, i, j in np.ndindex(n, c, oh, ow):
        best = (i * s, j * s)
        for p, q in np.ndindex(k, k):
            value = x[a, b, i * s + p, j * s + q]
            if value > x[(a, b) + best] or np.isnan(value):
                best = (i * s + p, j * s + q)
        out[a, b, i, j] = x[(a, b) + best]
        grad[(a, b) + best] += g[a, b, i, j]
    return out, grad


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 3), s=st.integers(1, 3), extra=st.tuples(st.integers(0, 3), st.integers(0, 3)),
       seed=st.integers(0, 999))
def test_max_pool_ties_and_nan_follow_one_rule(k, s, extra, seed):
    rng = np.random.default_rng(seed)
    # few distinct values, so windows hold ties, and some NaN: every branch of the rule is met
    x = rng.integers(0, 3, (2, 2, k + extra[0], k + extra[1])).astype(np.float64)
    x[rng.random(x.shape) < 0.15] = np.nan
    g = rng.standard_normal(((2, 2) + ((x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1)))
    xt = ts.Tensor(x, requires_grad=True)
    out = max_pool2d(xt, k, s)
    out.backward(g)
    expected_out, expected_grad = naive_pool_and_grad(x, g, k, s)
    np.testing.assert_array_equal(out.numpy(), expected_out)  # NaN where the window holds one
    np.testing.assert_allclose(xt.grad, expected_grad, atol=1e-12)


def test_max_pool_tie_sends_the_gradient_to_the_first_maximum():
    x = ts.Tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[1, 0], [0, 0]])


def test_max_pool_nan_window_outputs_nan_and_sends_the_gradient_to_its_nan():
    # values as PyTorch 2.13 computes them for the same inputs (F.max_pool2d on CPU)
    nan = np.nan
    x = ts.Tensor(np.array([[[[1.0, nan, 0.0, 5.0], [nan, 2.0, 7.0, 7.0]]]]), requires_grad=True)
    out = max_pool2d(x, 2)
    out.sum().backward()
    np.testing.assert_array_equal(out.numpy()[0, 0], [[nan, 7.0]])
    np.testing.assert_array_equal(x.grad[0, 0], [[0, 0, 0, 0], [1, 0, 1, 0]])  # the last NaN; the first 7
    x = ts.Tensor(np.array([[[[nan, 1.0, 5.0], [0.0, 2.0, 1.0], [0.0, 0.0, 0.0]]]]), requires_grad=True)
    out = max_pool2d(x, 2, 1)  # overlapping windows
    out.sum().backward()
    np.testing.assert_array_equal(out.numpy()[0, 0], [[nan, 5.0], [2.0, 2.0]])
    np.testing.assert_array_equal(x.grad[0, 0], [[1, 0, 1], [0, 2, 0], [0, 0, 0]])


def test_max_pool_takes_large_kernels():
    x = np.random.default_rng(0).permutation(2 * 16 * 16).reshape(1, 2, 16, 16) * 1.0
    np.testing.assert_array_equal(max_pool2d(ts.Tensor(x), 16).numpy()[0, :, 0, 0], x.max(axis=(2, 3))[0])


def test_conv_and_pool_errors_name_the_shapes():
    x = ts.Tensor(np.ones((2, 3, 5, 5), np.float32))
    with pytest.raises(ValueError, match="3 channels"):
        conv2d(x, ts.Tensor(np.ones((4, 1, 3, 3), np.float32)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv2d(x, ts.Tensor(np.ones((4, 3, 7, 7), np.float32)))
    with pytest.raises(TypeError, match="dtypes differ"):
        conv2d(x, ts.Tensor(np.ones((4, 3, 3, 3))))
    with pytest.raises(ValueError, match="stride"):
        conv2d(x, ts.Tensor(np.ones((4, 3, 3, 3), np.float32)), stride=0)
    with pytest.raises(ValueError, match="larger than the input"):
        max_pool2d(x, 6)
