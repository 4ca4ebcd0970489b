"""Every distance and loss three ways: fused == composed == finite differences, plus edge cases."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysiam as ts
from tinysiam import composed, distances, losses
from tinysiam.gradcheck import gradcheck

FAST = settings(max_examples=12, deadline=None)


def grads(fn, *arrays):
    tensors = [ts.Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.sum().backward()
    return out.numpy(), [t.grad for t in tensors]


def agree(fused, plain, *arrays):
    """Same value and gradient from both versions, and the fused one passes gradcheck."""
    v1, g1 = grads(fused, *arrays)
    v2, g2 = grads(plain, *arrays)
    np.testing.assert_allclose(v1, v2, rtol=1e-10, atol=1e-12)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    gradcheck(fused, *arrays)
    gradcheck(plain, *arrays)


@FAST
@given(n=st.integers(1, 5), d=st.integers(1, 4), seed=st.integers(0, 99),
       name=st.sampled_from(["l1", "l2", "squared_l2", "cosine"]))
def test_distances(n, d, seed, name):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    if name == "l1":
        b = a + rng.uniform(0.05, 1, (n, d)) * rng.choice([-1, 1], (n, d))  # away from the kink of |.|
    agree(lambda x, y: distances.distance_op(name)(x, y), composed.DISTANCES[name], a, b)


def draw_pairs(seed, n, margin):
    rng = np.random.default_rng(seed)
    same = rng.integers(0, 2, n)
    d = rng.uniform(0.05, 2 * margin, n)
    d[np.abs(d - margin) < 0.02] += 0.05  # keep off the margin, tested exactly below
    return d, same


@FAST
@given(n=st.integers(1, 6), margin=st.floats(0.2, 3.0), seed=st.integers(0, 99),
       reduction=st.sampled_from(losses.REDUCTIONS))
def test_pair_losses(n, margin, seed, reduction):
    d, same = draw_pairs(seed, n, margin)
    for fused, plain, kw in [(losses.contrastive_loss, composed.contrastive_loss, {"margin": margin}),
                             (losses.contrastive_linear_loss, composed.contrastive_linear_loss, {"margin": margin}),
                             (losses.chopra_energy_loss, composed.chopra_energy_loss, {"q": margin * 3})]:
        agree(lambda x: fused(x, same, reduction=reduction, **kw), lambda x: plain(x, same, reduction=reduction, **kw), d)


@FAST
@given(n=st.integers(1, 6), scale=st.floats(0.1, 30), seed=st.integers(0, 99),
       reduction=st.sampled_from(losses.REDUCTIONS))
def test_bce_and_mse(n, scale, seed, reduction):
    rng = np.random.default_rng(seed)
    z, same = rng.standard_normal(n) * scale, rng.integers(0, 2, n)
    z[np.abs(z) < 1e-3] = 0.1  # the composed form's |z| has a kink at 0
    agree(lambda x: losses.bce_with_logits(x, same, reduction=reduction),
          lambda x: composed.bce_with_logits(x, same, reduction=reduction), z)
    p, t = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
    agree(lambda a, b: losses.mse_loss(a, b, reduction=reduction), lambda a, b: composed.mse_loss(a, b, reduction=reduction), p, t)


@FAST
@given(n=st.integers(1, 5), margin=st.floats(0.1, 2.0), seed=st.integers(0, 99),
       distance=st.sampled_from(["l2", "squared_l2", "l1", "cosine"]))
def test_triplet(n, margin, seed, distance):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, 3))
    p = a + rng.uniform(0.1, 1, (n, 3)) * rng.choice([-1, 1], (n, 3))
    q = a + rng.uniform(0.1, 2, (n, 3)) * rng.choice([-1, 1], (n, 3))
    hinge = margin + composed.DISTANCES[distance](*map(ts.Tensor, (a, p))).numpy() - \
        composed.DISTANCES[distance](*map(ts.Tensor, (a, q))).numpy()
    if np.abs(hinge).min() < 1e-3:  # a draw that lands on the corner of max(0, .)
        return
    agree(lambda x, y, z: losses.triplet_loss(x, y, z, margin, distance),
          lambda x, y, z: composed.triplet_loss(x, y, z, margin, distance), a, p, q)


@FAST
@given(n=st.integers(2, 5), d=st.integers(2, 4), t=st.floats(0.05, 2.0), seed=st.integers(0, 99),
       reduction=st.sampled_from(losses.REDUCTIONS))
def test_nt_xent(n, d, t, seed, reduction):
    rng = np.random.default_rng(seed)
    agree(lambda a, b: losses.nt_xent_loss(a, b, t, reduction), lambda a, b: composed.nt_xent_loss(a, b, t, reduction),
          rng.standard_normal((n, d)), rng.standard_normal((n, d)))


# ----- edge cases, explicitly -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["l1", "l2", "squared_l2", "cosine"])
def test_identical_embeddings_give_zero_distance_and_finite_gradients(name):
    a = np.random.default_rng(0).standard_normal((3, 4))
    value, (ga, gb) = grads(lambda x, y: distances.distance_op(name)(x, y), a, a.copy())
    np.testing.assert_allclose(value, 0, atol=1e-12)
    assert np.isfinite(ga).all() and np.isfinite(gb).all()
    if name in ("l1", "l2"):
        np.testing.assert_array_equal(ga, 0)  # the documented subgradient


def test_contrastive_at_zero_distance_and_exactly_at_the_margin():
    d = np.array([0.0, 1.0, 1.0])
    same = np.array([1, 0, 1])
    value, (g,) = grads(lambda x: losses.contrastive_loss(x, same, margin=1.0, reduction="none"), d)
    np.testing.assert_array_equal(value, [0, 0, 0.5])
    np.testing.assert_array_equal(g, [0, 0, 1])
    value, (g,) = grads(lambda x: losses.contrastive_linear_loss(x, same, margin=1.0, reduction="none"), d)
    np.testing.assert_array_equal(value, [0, 0, 1])
    np.testing.assert_array_equal(g, [1, 0, 1])  # at D = m the hinge's derivative is taken as 0


def test_triplet_exactly_at_the_margin_has_zero_gradient():
    a, p, q = np.zeros((1, 2)), np.array([[1.0, 0.0]]), np.array([[2.0, 0.0]])
    value, (ga, gp, gq) = grads(lambda x, y, z: losses.triplet_loss(x, y, z, margin=1.0), a, p, q)
    assert value == 0 and not ga.any() and not gp.any() and not gq.any()


@pytest.mark.parametrize("same", [np.ones(4, int), np.zeros(4, int)])
def test_all_same_and_all_different_batches(same):
    d = np.array([0.2, 0.5, 1.5, 0.9])
    agree(lambda x: losses.contrastive_loss(x, same), lambda x: composed.contrastive_loss(x, same), d)
    agree(lambda x: losses.chopra_energy_loss(x, same, q=2.0), lambda x: composed.chopra_energy_loss(x, same, q=2.0), d)


def test_bce_is_finite_for_saturated_logits():
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0])
    same = np.array([1, 0, 0, 1])
    value, (g,) = grads(lambda x: losses.bce_with_logits(x, same, reduction="none"), z)
    np.testing.assert_allclose(value, [0, 0, 1000, 1000])
    np.testing.assert_allclose(g, [0, 0, 1, -1])


BAD_INPUTS = [
    (lambda: losses.contrastive_loss(ts.Tensor(np.ones(3)), np.array([0, 1, 2])), ValueError, "only 0"),
    (lambda: losses.contrastive_loss(ts.Tensor(np.ones(3)), np.array([0, 1])), ValueError, "same has shape"),
    (lambda: losses.contrastive_loss(ts.Tensor(np.ones(3)), np.ones((3, 1))), ValueError, "same has shape"),
    (lambda: losses.contrastive_loss(ts.Tensor(np.ones(3)), np.ones(3), margin=0), ValueError, "margin"),
    (lambda: losses.chopra_energy_loss(ts.Tensor(np.ones(3)), np.ones(3), q=-1), ValueError, "q must"),
    (lambda: losses.nt_xent_loss(ts.Tensor(np.ones((3, 2))), ts.Tensor(np.ones((3, 2))), 0), ValueError, "temperature"),
    (lambda: losses.contrastive_loss(ts.Tensor(np.ones(0)), np.ones(0)), ValueError, "non-empty"),
    (lambda: losses.contrastive_loss(ts.Tensor(np.array([np.nan])), np.ones(1)), ValueError, "NaN"),
    (lambda: losses.triplet_loss(*[ts.Tensor(np.ones((2, 3)))] * 2, ts.Tensor(np.ones((3, 3)))), ValueError, "one shape"),
    (lambda: losses.triplet_loss(*[ts.Tensor(np.ones((2, 3)))] * 3, distance="l3"), ValueError, "distance must"),
    (lambda: losses.contrastive_loss(ts.Tensor(np.ones(2)), np.ones(2), reduction="avg"), ValueError, "reduction"),
    (lambda: distances.l2_distance(ts.Tensor(np.full((1, 2), np.nan)), ts.Tensor(np.ones((1, 2)))), ValueError, "NaN"),
]


@pytest.mark.parametrize("call, error, message", BAD_INPUTS)
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
