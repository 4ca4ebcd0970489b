"""Convolution and max-pooling: finite differences on drawn shapes, and hand-computed values."""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from split_threads import on_three_threads

import tinysiam as ts
import tinysiam.engine.conv as conv
import tinysiam.engine.conv_algorithms as algorithms
import tinysiam.engine.fftconv as fftconv
from tinysiam.engine.conv import ALGORITHMS, conv2d, max_pool2d
from tinysiam.engine.conv_algorithms import NAMES, applicable
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
    for algorithm in applicable((kh, kw), (sh, sw)):
        out = conv2d(ts.Tensor(x), ts.Tensor(weight), ts.Tensor(bias), stride=(sh, sw), padding=(ph, pw),
                     algorithm=algorithm)
        np.testing.assert_allclose(out.numpy(), naive_conv(x, weight, bias, (sh, sw), (ph, pw)), atol=1e-12)
        gradcheck(lambda a, b, c_: conv2d(a, b, c_, stride=(sh, sw), padding=(ph, pw), algorithm=algorithm),
                  x, weight, bias)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), oc=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)), bias=st.booleans(), seed=st.integers(0, 99))
def test_winograd_matches_definition_and_finite_differences(n, c, oc, h, w, padding, bias, seed):
    h, w = max(h, 3 - 2 * padding[0]), max(w, 3 - 2 * padding[1])  # at least one output; odd and even sizes
    rng = np.random.default_rng(seed)
    x, weight, b = rng.standard_normal((n, c, h, w)), rng.standard_normal((oc, c, 3, 3)), rng.standard_normal(oc)
    inputs = (x, weight, b) if bias else (x, weight)

    def winograd(*tensors):
        return conv2d(*tensors, padding=padding, algorithm="winograd")

    out = winograd(*map(ts.Tensor, inputs))
    assert isinstance(out.creator, ALGORITHMS["winograd"]) or out.creator is None
    np.testing.assert_allclose(out.numpy(), naive_conv(x, weight, b if bias else np.zeros(oc), (1, 1), padding),
                               atol=1e-12)
    gradcheck(winograd, *inputs)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), oc=st.integers(1, 3), kernel=st.tuples(st.integers(1, 6),
       st.integers(2, 6)), extra=st.tuples(st.integers(0, 5), st.integers(0, 5)),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)), seed=st.integers(0, 99))
def test_fft_matches_definition_and_finite_differences(n, c, oc, kernel, extra, padding, seed):
    rng = np.random.default_rng(seed)
    (kh, kw), (ph, pw) = kernel, padding
    h, w = max(1, kh - 2 * ph) + extra[0], max(1, kw - 2 * pw) + extra[1]
    x, weight, bias = rng.standard_normal((n, c, h, w)), rng.standard_normal((oc, c, kh, kw)), rng.standard_normal(oc)

    def fft(*tensors):
        return conv2d(*tensors, padding=padding, algorithm="fft")

    np.testing.assert_allclose(fft(*map(ts.Tensor, (x, weight, bias))).numpy(),
                               naive_conv(x, weight, bias, (1, 1), padding), atol=1e-12)
    gradcheck(fft, x, weight, bias)


@pytest.mark.parametrize("algorithm, kernel, padding", [("winograd", 3, 1), ("winograd", 3, 0), ("fft", 3, 1),
                                                        ("fft", 7, 0), ("fft", 10, 2)])
def test_fast_algorithms_are_exact_to_float32_rounding(algorithm, kernel, padding):
    """float32 outputs and gradients as close to the float64 truth as the direct (im2col) computation's."""
    rng = np.random.default_rng(kernel)
    x = rng.standard_normal((3, 16, 19, 22)).astype(np.float32)
    weight = rng.standard_normal((8, 16, kernel, kernel)).astype(np.float32)
    bias, g = rng.standard_normal(8).astype(np.float32), None
    results = {}
    for name, dtype in ((algorithm, np.float32), ("im2col", np.float32), ("im2col", np.float64)):
        leaves = [ts.Tensor(a.astype(dtype), requires_grad=True) for a in (x, weight, bias)]
        out = conv2d(*leaves, padding=padding, algorithm=name)
        g = rng.standard_normal(out.shape) if g is None else g
        out.backward(g.astype(dtype))
        results[name, dtype] = [out.numpy()] + [leaf.grad for leaf in leaves]
    for fast, direct, truth in zip(results[algorithm, np.float32], results["im2col", np.float32],
                                   results["im2col", np.float64]):
        assert fast.dtype == np.float32
        scale = np.abs(truth).max()
        direct_error = np.abs(direct - truth).max() / scale
        assert np.abs(fast - truth).max() / scale <= max(8 * direct_error, 4e-6), (direct_error, scale)


def test_the_fft_without_scipy_uses_numpy(monkeypatch):
    rng = np.random.default_rng(0)
    x, weight = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 4, 3))
    monkeypatch.setattr(fftconv, "scipy_fft", None)
    assert fftconv._FFT(x).module is np.fft
    out = conv2d(ts.Tensor(x), ts.Tensor(weight), padding=(1, 0), algorithm="fft")
    np.testing.assert_allclose(out.numpy(), naive_conv(x, weight, np.zeros(4), (1, 1), (1, 0)), atol=1e-12)
    gradcheck(lambda a, b: conv2d(a, b, padding=(1, 0), algorithm="fft"), x, weight)


def test_fft_sizes_have_only_small_prime_factors():
    assert [fftconv.fast_size(n) for n in (1, 7, 16, 97, 105, 121)] == [1, 8, 16, 100, 108, 125]


def test_the_choice_names_every_algorithm_op():
    assert set(NAMES) == set(ALGORITHMS)


def test_auto_chooses_by_the_layer_shape_without_timing(monkeypatch):
    monkeypatch.setattr(algorithms, "_chosen", {})
    monkeypatch.setattr(algorithms, "fastest", lambda *args: pytest.fail("auto must not time"))
    rng = np.random.default_rng(0)

    def chosen(c, k, stride=1):
        x = ts.Tensor(rng.standard_normal((2, c, 9, 9)).astype(np.float32))
        w = ts.Tensor(rng.standard_normal((4, c, k, k)).astype(np.float32), requires_grad=True)
        return type(conv2d(x, w, stride=stride, algorithm="auto").creator).__name__

    assert chosen(1, 3) == "Conv2dIm2colOp"  # a first layer
    assert chosen(32, 3) == "Conv2dWinogradOp"
    assert chosen(32, 5) == "Conv2dFFTOp"
    assert chosen(32, 3, stride=2) == "Conv2dIm2colOp"
    assert len(algorithms.chosen_algorithms()) == 4


def test_benchmark_mode_times_once_per_layer_shape_and_keeps_the_caller_graph_untouched(monkeypatch):
    monkeypatch.setattr(algorithms, "_chosen", {})
    timed = []
    fastest = algorithms.fastest
    monkeypatch.setattr(algorithms, "fastest", lambda *args: timed.append(args[0]) or fastest(*args))
    rng = np.random.default_rng(0)
    x = ts.Tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    weight = ts.Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    outs = [conv2d(x, weight, padding=1, algorithm="benchmark") for _ in range(3)]
    assert timed == [["im2col", "winograd", "fft"]]  # the first call only
    assert x.grad is None and weight.grad is None  # timing ran on its own leaves
    (layer, name), = algorithms.chosen_algorithms().items()
    assert layer == "x (2, 3, 8, 8), weight (4, 3, 3, 3), stride (1, 1), padding (1, 1), float32 on cpu, backward"
    assert all(isinstance(o.creator, ALGORITHMS[name]) for o in outs)
    conv2d(x, weight, stride=2, algorithm="benchmark")  # another shape, where im2col alone applies: nothing to time
    assert len(timed) == 1 and "stride (2, 2)" in " ".join(algorithms.chosen_algorithms())


def test_set_algorithm_forces_one_where_it_applies(monkeypatch):
    rng = np.random.default_rng(0)
    x = ts.Tensor(rng.standard_normal((1, 2, 6, 6)), requires_grad=True)
    w3, w5 = (ts.Tensor(rng.standard_normal((2, 2, k, k)), requires_grad=True) for k in (3, 5))
    previous = algorithms.set_algorithm("winograd")
    try:
        assert previous == "auto"
        assert type(conv2d(x, w3).creator).__name__ == "Conv2dWinogradOp"
        assert type(conv2d(x, w5).creator).__name__ == "Conv2dIm2colOp"  # Winograd is for 3x3 only
        assert type(conv2d(x, w3, stride=2).creator).__name__ == "Conv2dIm2colOp"
        assert type(conv2d(x, w3, algorithm="fft").creator).__name__ == "Conv2dFFTOp"  # the argument wins
    finally:
        algorithms.set_algorithm(previous)
    with pytest.raises(ValueError, match="the winograd algorithm needs a 3x3 kernel and stride 1"):
        conv2d(x, w5, algorithm="winograd")
    with pytest.raises(ValueError, match="the fft algorithm needs stride 1 and a kernel larger than 1x1"):
        conv2d(x, w5, stride=2, algorithm="fft")
    with pytest.raises(ValueError, match="set_algorithm: choose 'auto', 'benchmark' or one of"):
        algorithms.set_algorithm("direct")
    with pytest.raises(ValueError, match="algorithm must be 'auto', 'benchmark' or one of"):
        conv2d(x, w3, algorithm="cudnn")


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
    sliced = conv2d(ts.Tensor(x), ts.Tensor(w), ts.Tensor(b), padding=1, algorithm="im2col")
    np.testing.assert_allclose(sliced.numpy(), whole, atol=1e-12)
    gradcheck(lambda a, b_, c_: conv2d(a, b_, c_, padding=1, algorithm="im2col"), x, w, b)


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
       channels=st.integers(1, 5), threaded=st.booleans(), seed=st.integers(0, 999))
def test_max_pool_ties_and_nan_follow_one_rule(k, s, extra, channels, threaded, seed):
    rng = np.random.default_rng(seed)
    # few distinct values, so windows hold ties, and some NaN: every branch of the rule is met
    x = rng.integers(0, 3, (2, channels, k + extra[0], k + extra[1])).astype(np.float64)
    x[rng.random(x.shape) < 0.15] = np.nan
    g = rng.standard_normal((2, channels) + ((x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1))
    xt = ts.Tensor(x, requires_grad=True)
    with on_three_threads() if threaded else contextlib.nullcontext():  # each thread takes a slice of channels
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


def test_the_worked_example_of_docs_convolution_is_what_the_matrices_compute():
    from pathlib import Path

    from tinysiam.engine.winograd import A_T, B_T, G

    doc = (Path(__file__).resolve().parents[1] / "docs" / "convolution.md").read_text()
    d, g = np.array([1.0, 2, 3, 4]), np.array([1.0, 0, -1])
    np.testing.assert_array_equal(B_T @ d, [-2, 5, 1, -2])
    np.testing.assert_array_equal(G @ g, [1, 0, 0, -1])
    np.testing.assert_array_equal(A_T @ ((G @ g) * (B_T @ d)), [d[0:3] @ g, d[1:4] @ g])  # = (-2, -2)
    assert "B^T d = (-2, 5, 1, -2), G g = (1, 0, 0, -1)" in doc and "A^T of it (-2, -2)" in doc
