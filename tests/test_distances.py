"""Distances: fused == composed == finite differences, the zero-distance guard, pairwise matrices, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysiam as ts
from tinysiam.engine.gradcheck import gradcheck
from tinysiam.siamese import composed, distances

FAST = settings(max_examples=40, deadline=None)
NAMES = ["l1", "l2", "squared_l2", "cosine"]
PUBLIC = {"l1": distances.l1_distance, "l2": distances.l2_distance,
          "squared_l2": distances.squared_l2_distance, "cosine": distances.cosine_distance}


def value_and_grads(fn, *arrays):
    tensors = [ts.Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(np.linspace(0.5, 1.5, out.size).reshape(out.shape))  # unequal weights per row
    return out.numpy(), [t.grad for t in tensors]


@FAST
@given(n=st.integers(1, 5), d=st.integers(1, 4), seed=st.integers(0, 999), name=st.sampled_from(NAMES))
def test_fused_equals_composed_equals_finite_differences(n, d, seed, name):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, d))
    b = a + rng.uniform(0.05, 1, (n, d)) * rng.choice([-1, 1], (n, d))  # no coordinate on the kink of |.|
    fused_value, fused_grads = value_and_grads(PUBLIC[name], a, b)
    plain_value, plain_grads = value_and_grads(composed.DISTANCES[name], a, b)
    np.testing.assert_allclose(fused_value, plain_value, rtol=1e-12, atol=1e-14)
    # the gradients' terms grow as 1 / |row| (cosine), and cancel to round-off of that size where the sum is 0
    round_off = 1e-13 * (1 + 1 / np.linalg.norm(np.concatenate([a, b]), axis=1).min())
    for fused, plain in zip(fused_grads, plain_grads):
        np.testing.assert_allclose(fused, plain, rtol=1e-10, atol=round_off)
    gradcheck(PUBLIC[name], a, b)
    gradcheck(composed.DISTANCES[name], a, b)


# ----- identical embeddings: distance exactly 0 ---------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_identical_embeddings_give_zero_distance_and_zero_gradient(name):
    a = np.random.default_rng(0).standard_normal((3, 4))
    value, (grad_a, grad_b) = value_and_grads(PUBLIC[name], a, a.copy())
    np.testing.assert_allclose(value, 0, atol=1e-15)
    # L1 and L2: the documented subgradient 0; squared L2 and cosine: the true derivative, which is 0 there
    np.testing.assert_allclose(grad_a, 0, atol=1e-15)
    np.testing.assert_allclose(grad_b, 0, atol=1e-15)


def test_the_textbook_l2_is_nan_at_zero_which_is_why_the_fused_op_guards_it():
    a = np.ones((1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        _, (grad,) = value_and_grads(lambda x: composed.l2_distance(x, ts.Tensor(a)), a)
    assert np.isnan(grad).all()
    _, (grad,) = value_and_grads(lambda x: distances.l2_distance(x, ts.Tensor(a)), a)
    np.testing.assert_array_equal(grad, 0)


def test_composed_l1_uses_the_same_subgradient_at_zero():
    a = np.array([[1.0, 2.0, 3.0]])
    b = np.array([[1.0, 0.0, 3.0]])  # equal in two coordinates, different in one
    _, fused = value_and_grads(distances.l1_distance, a, b)
    _, plain = value_and_grads(composed.l1_distance, a, b)
    np.testing.assert_array_equal(fused[0], [[0, 0.5, 0]])
    for f, p in zip(fused, plain):
        np.testing.assert_array_equal(f, p)


def test_l2_gradient_is_a_unit_vector_even_for_tiny_distances():
    a = np.zeros((1, 3))
    b = np.array([[3e-160, 4e-160, 0.0]])  # d^2 = 2.5e-319 is subnormal: about 5 significant digits
    _, (grad_a, _) = value_and_grads(distances.l2_distance, a, b)
    np.testing.assert_allclose(grad_a, [[-0.3, -0.4, 0]], rtol=1e-4)  # 0.5 (upstream) * (-0.6, -0.8, 0)


def test_cosine_of_a_zero_vector_is_finite():
    zero, b = np.zeros((2, 3)), np.array([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]])
    value, (grad_zero, grad_b) = value_and_grads(distances.cosine_distance, zero, b)
    np.testing.assert_array_equal(value, [1, 1])  # a zero vector is at cosine distance 1 from anything
    assert np.isfinite(grad_zero).all() and np.isfinite(grad_b).all()
    np.testing.assert_array_equal(grad_zero[1], 0)  # both zero: nothing to move towards


def test_float32_stays_float32():
    a = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    for name in NAMES:
        value, (grad, _) = value_and_grads(PUBLIC[name], a, a[::-1].copy())
        assert value.dtype == np.float32 and grad.dtype == np.float32, name


# ----- pairwise matrices ------------------------------------------------------------------------------
@FAST
@given(n=st.integers(1, 6), m=st.integers(1, 6), d=st.integers(1, 5), seed=st.integers(0, 999),
       name=st.sampled_from(NAMES))
def test_pairwise_matrix_holds_every_row_distance(n, m, d, seed, name):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((n, d)), rng.standard_normal((m, d))
    matrix = distances.pairwise_distances(a, b, name)
    rows = PUBLIC[name](ts.Tensor(np.repeat(a, m, axis=0)), ts.Tensor(np.tile(b, (n, 1)))).numpy()
    assert matrix.shape == (n, m)
    np.testing.assert_allclose(matrix, rows.reshape(n, m), rtol=1e-9, atol=1e-9)


def test_pairwise_l2_of_a_set_with_itself_has_an_exact_zero_diagonal_and_no_nan():
    a = np.random.default_rng(2).standard_normal((50, 8)) * 1e3  # large values: rounding in |a|^2 + |b|^2 - 2ab
    matrix = distances.pairwise_distances(a, a, "l2")
    assert not np.isnan(matrix).any() and (matrix >= 0).all()
    np.testing.assert_allclose(np.diag(matrix), 0, atol=1e-4)


# ----- bad input --------------------------------------------------------------------------------------
def t(shape, value=1.0, dtype=np.float64):
    return ts.Tensor(np.full(shape, value, dtype=dtype))


@pytest.mark.parametrize("call, error, message", [
    (lambda: distances.l2_distance(t((2, 3)), t((3, 3))), ValueError, r"b has shape \(3, 3\) but a has shape \(2, 3\)"),
    (lambda: distances.l1_distance(t((3,)), t((3,))), ValueError, r"a must be \(N, D\).*\(3,\)"),
    (lambda: distances.cosine_distance(t((2, 3)), t((2, 3, 1))), ValueError, r"b must be \(N, D\)"),
    (lambda: distances.l2_distance(t((0, 3)), t((0, 3))), ValueError, "empty batch"),
    (lambda: distances.l2_distance(t((1, 2)), t((1, 2), np.nan)), ValueError, "b contains NaN"),
    (lambda: distances.squared_l2_distance(t((1, 2)), t((1, 2), dtype=np.float32)), TypeError, "b has dtype float32"),
    (lambda: distances.l1_distance(t((1, 2)), np.ones((1, 2))), TypeError, "b must be a Tensor"),
    (lambda: distances.distance_op("l3"), ValueError, "distance must be one of .* got 'l3'"),
    (lambda: distances.pairwise_distances(np.ones((2, 3)), np.ones((2, 4))), ValueError, r"\(2, 3\) and \(2, 4\)"),
    (lambda: distances.pairwise_distances(np.ones((2, 3)), np.ones((2, 3)), "hamming"), ValueError, "'hamming'"),
])
def test_bad_input_names_the_argument_and_value(call, error, message):
    with pytest.raises(error, match=message):
        call()
