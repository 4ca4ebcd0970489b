"""The textbook convolution and pooling against the fast ones of conv.py: values and gradients, drawn cases."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysiam as ts
from tinysiam.app.catalogue.ops import distinct
from tinysiam.engine import conv, textbook
from tinysiam.engine.gradcheck import gradcheck

CASES = settings(max_examples=25, deadline=None)
pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))


def values_and_grads(fn, *arrays):
    """fn's output and the gradients of its inputs, with a random (fixed) upstream gradient."""
    tensors = [ts.Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(np.random.default_rng(1).standard_normal(out.shape))
    return [out.numpy()] + [t.grad for t in tensors]


def assert_same(fast, plain):
    for f, p in zip(fast, plain):
        np.testing.assert_allclose(p, f, rtol=1e-10, atol=1e-12)


@CASES
@given(n=st.integers(1, 2), c=st.integers(1, 3), oc=st.integers(1, 3), kernel=pairs, stride=pairs,
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)), extra=pairs, bias=st.booleans(),
       seed=st.integers(0, 99))
def test_conv2d_agrees_with_the_fast_one(n, c, oc, kernel, stride, padding, extra, bias, seed):
    rng = np.random.default_rng(seed)
    h, w = kernel[0] + extra[0], kernel[1] + extra[1]
    arrays = [rng.standard_normal((n, c, h, w)), rng.standard_normal((oc, c) + kernel)]
    arrays += [rng.standard_normal(oc)] * bias
    options = {"stride": stride, "padding": padding}
    assert_same(values_and_grads(lambda *t: conv.conv2d(*t, **options), *arrays),
                values_and_grads(lambda *t: textbook.conv2d(*t, **options), *arrays))
    gradcheck(lambda *t: textbook.conv2d(*t, **options), *arrays)


@CASES
@given(n=st.integers(1, 2), c=st.integers(1, 3), kernel=pairs, stride=st.none() | pairs, extra=pairs,
       ties=st.booleans(), seed=st.integers(0, 99))
def test_max_pool2d_agrees_with_the_fast_one_ties_included(n, c, kernel, stride, extra, ties, seed):
    rng = np.random.default_rng(seed)
    shape = (n, c, kernel[0] + extra[0], kernel[1] + extra[1])
    x = rng.integers(0, 3, shape).astype(float) if ties else distinct(rng, shape)  # three levels: many ties
    assert_same(values_and_grads(lambda t: conv.max_pool2d(t, kernel, stride), x),
                values_and_grads(lambda t: textbook.max_pool2d(t, kernel, stride), x))
    if not ties:  # at a tie max has no derivative, so finite differences cannot check it
        gradcheck(lambda t: textbook.max_pool2d(t, kernel, stride), x)


def test_conv2d_by_hand():
    x = ts.Tensor(np.arange(9.0).reshape(1, 1, 3, 3), requires_grad=True)
    w = ts.Tensor(np.array([[[[1.0, 0.0], [0.0, -1.0]]]]), requires_grad=True)
    out = textbook.conv2d(x, w, padding=(0, 1))
    # padded rows [0 0 1 2 0], [0 3 4 5 0], [0 6 7 8 0]; each output is padded[i, j] - padded[i + 1, j + 1]
    np.testing.assert_array_equal(out.numpy()[0, 0], [[-3, -4, -4, 2], [-6, -4, -4, 5]])
    out.sum().backward()
    # every pixel of row 0 is read once with weight +1, of row 2 once with -1, of row 1 once with each
    np.testing.assert_array_equal(x.grad[0, 0], [[1, 1, 1], [0, 0, 0], [-1, -1, -1]])


def test_max_pool2d_tie_goes_to_the_first_maximum_in_row_major_order():
    x = ts.Tensor(np.array([[[[0.0, 5.0], [5.0, 5.0]]]]), requires_grad=True)
    textbook.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[0, 1], [0, 0]])


def test_pad2d_surrounds_with_zeros_and_sends_back_the_inner_gradient():
    x = ts.Tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    padded = textbook.pad2d(x, (1, 2))
    assert padded.shape == (1, 1, 4, 6) and padded.numpy().sum() == 4 and padded.numpy()[0, 0, 1:3, 2:4].all()
    (padded * padded).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * np.ones((1, 1, 2, 2)))
