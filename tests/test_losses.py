"""Every loss three ways (fused == composed == finite differences), its edge cases, and bad input."""
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinysiam as ts
from tinysiam.engine.gradcheck import gradcheck
from tinysiam.siamese import composed, losses
from tinysiam.siamese.distances import l2_distance

FAST = settings(max_examples=40, deadline=None)
REDUCTION = st.sampled_from(losses.REDUCTIONS)
DISTANCE = st.sampled_from(["l2", "squared_l2", "l1", "cosine"])


def value_and_grads(fn, *arrays):
    tensors = [ts.Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(np.linspace(0.5, 1.5, out.size).reshape(out.shape))  # unequal weights for "none"
    return out.numpy(), [t.grad for t in tensors]


def three_ways(fused, plain, *arrays):
    """Fused and composed give the same value and gradients, and both pass gradcheck."""
    fused_value, fused_grads = value_and_grads(fused, *arrays)
    plain_value, plain_grads = value_and_grads(plain, *arrays)
    np.testing.assert_allclose(fused_value, plain_value, rtol=1e-10, atol=1e-12)
    for f, p in zip(fused_grads, plain_grads):
        np.testing.assert_allclose(f, p, rtol=1e-9, atol=1e-12)
    gradcheck(fused, *arrays)
    gradcheck(plain, *arrays)


PAIR_LOSSES = {  # name -> (fused, composed, keyword holding the positive constant)
    "contrastive": (losses.contrastive_loss, composed.contrastive_loss, "margin"),
    "contrastive_linear": (losses.contrastive_linear_loss, composed.contrastive_linear_loss, "margin"),
    "chopra_energy": (losses.chopra_energy_loss, composed.chopra_energy_loss, "q"),
}


@FAST
@given(n=st.integers(1, 6), margin=st.floats(0.2, 5.0), seed=st.integers(0, 999), reduction=REDUCTION,
       name=st.sampled_from(sorted(PAIR_LOSSES)))
def test_pair_losses(n, margin, seed, reduction, name):
    fused, plain, keyword = PAIR_LOSSES[name]
    rng = np.random.default_rng(seed)
    same = rng.integers(0, 2, n)
    d = rng.uniform(0, 2 * margin, n)
    d[np.abs(d - margin) < 1e-3] += 2e-3  # finite differences straddling the hinge's corner (tested exactly below)
    kw = {keyword: margin, "reduction": reduction}
    three_ways(lambda x: fused(x, same, **kw), lambda x: plain(x, same, **kw), d)


@FAST
@given(n=st.integers(1, 6), scale=st.floats(0.1, 30), seed=st.integers(0, 999), reduction=REDUCTION)
def test_bce_with_logits(n, scale, seed, reduction):
    rng = np.random.default_rng(seed)
    z, same = rng.standard_normal(n) * scale, rng.integers(0, 2, n)
    z[np.abs(z) < 1e-3] = 0.1  # the composed form's |z| has a kink at 0 (the fused form has none; see below)
    three_ways(lambda x: losses.bce_with_logits(x, same, reduction=reduction),
               lambda x: composed.bce_with_logits(x, same, reduction=reduction), z)


@FAST
@given(n=st.integers(1, 5), shape=st.sampled_from([(), (3,), (2, 2)]), seed=st.integers(0, 999), reduction=REDUCTION)
def test_mse(n, shape, seed, reduction):
    rng = np.random.default_rng(seed)
    p, t = rng.standard_normal((n,) + shape), rng.standard_normal((n,) + shape)
    three_ways(lambda a, b: losses.mse_loss(a, b, reduction), lambda a, b: composed.mse_loss(a, b, reduction), p, t)


@FAST
@given(n=st.integers(1, 5), d=st.integers(1, 4), margin=st.floats(0.1, 2.0), seed=st.integers(0, 999),
       distance=DISTANCE, reduction=REDUCTION)
def test_triplet(n, d, margin, seed, distance, reduction):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, d))
    p = a + rng.uniform(0.1, 1, (n, d)) * rng.choice([-1, 1], (n, d))
    q = a + rng.uniform(0.1, 2, (n, d)) * rng.choice([-1, 1], (n, d))
    kind = composed.DISTANCES[distance]
    hinge = margin + kind(ts.Tensor(a), ts.Tensor(p)).numpy() - kind(ts.Tensor(a), ts.Tensor(q)).numpy()
    assume(np.abs(hinge).min() >= 1e-3)  # else finite differences would straddle the corner; tested exactly below
    three_ways(lambda x, y, z: losses.triplet_loss(x, y, z, margin, distance, reduction),
               lambda x, y, z: composed.triplet_loss(x, y, z, margin, distance, reduction), a, p, q)


@FAST
@given(n=st.integers(2, 5), d=st.integers(2, 4), temperature=st.floats(0.05, 2.0), seed=st.integers(0, 999),
       reduction=REDUCTION)
def test_nt_xent(n, d, temperature, seed, reduction):
    rng = np.random.default_rng(seed)
    z1, z2 = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    three_ways(lambda a, b: losses.nt_xent_loss(a, b, temperature, reduction),
               lambda a, b: composed.nt_xent_loss(a, b, temperature, reduction), z1, z2)


# ----- edge cases, explicitly -------------------------------------------------------------------
def test_exactly_at_the_margin_the_hinge_derivative_is_zero_in_both_versions():
    d, same = np.array([1.0, 1.0, 0.0, 0.0]), np.array([0, 1, 0, 1])
    for fused, plain, _ in PAIR_LOSSES.values():
        _, (g_fused,) = value_and_grads(lambda x: fused(x, same, 1.0, reduction="none"), d)
        _, (g_plain,) = value_and_grads(lambda x: plain(x, same, 1.0, reduction="none"), d)
        np.testing.assert_array_equal(g_fused, g_plain)
    weights = np.linspace(0.5, 1.5, 4)  # the upstream gradient value_and_grads sends
    value, (g,) = value_and_grads(lambda x: losses.contrastive_loss(x, same, 1.0, reduction="none"), d)
    np.testing.assert_array_equal(value, [0, 0.5, 0.5, 0])
    np.testing.assert_array_equal(g, weights * [0, 1, -1, 0])  # both one-sided slopes are 0 at D = m
    value, (g,) = value_and_grads(lambda x: losses.contrastive_linear_loss(x, same, 1.0, reduction="none"), d)
    np.testing.assert_array_equal(value, [0, 1, 1, 0])
    np.testing.assert_array_equal(g, weights * [0, 1, -1, 1])  # at D = m: 0, the right-hand slope


def test_triplet_exactly_at_the_margin_has_zero_gradient():
    a, p, q = np.zeros((1, 2)), np.array([[1.0, 0.0]]), np.array([[2.0, 0.0]])  # 1 + 1 - 2 = 0 exactly
    for fn in (losses.triplet_loss, composed.triplet_loss):
        value, grads = value_and_grads(lambda x, y, z: fn(x, y, z, margin=1.0), a, p, q)
        assert value == 0 and not any(g.any() for g in grads)


def test_identical_embeddings_through_the_losses_give_finite_gradients():
    a = np.random.default_rng(3).standard_normal((4, 3))
    same = np.array([1, 0, 1, 0])
    for loss, at_zero in ((losses.contrastive_loss, 0.5), (losses.contrastive_linear_loss, 1.0)):
        value, (g1, g2) = value_and_grads(lambda x, y: loss(l2_distance(x, y), same, 1.0, "none"), a, a.copy())
        np.testing.assert_array_equal(value, [0, at_zero, 0, at_zero])  # m^2 / 2 and m for different pairs
        # a different pair at D = 0 has no direction to be pushed apart in: the L2 subgradient 0 stops it
        np.testing.assert_array_equal(g1, 0)
        np.testing.assert_array_equal(g2, 0)
    value, (ga, gp, gn) = value_and_grads(lambda x, y, z: losses.triplet_loss(x, y, z, 1.0, reduction="none"),
                                          a, a.copy(), a + 0.5)
    assert np.isfinite(ga).all() and not gp.any()  # d(a, p) = 0: the positive gets the subgradient 0
    np.testing.assert_allclose(value, 1 - np.sqrt(0.75))


@pytest.mark.parametrize("same", [np.ones(4, int), np.zeros(4, int)], ids=["all same", "all different"])
@pytest.mark.parametrize("name", sorted(PAIR_LOSSES))
def test_all_same_and_all_different_batches(same, name):
    fused, plain, keyword = PAIR_LOSSES[name]
    d = np.array([0.2, 0.5, 1.5, 0.9])
    three_ways(lambda x: fused(x, same, **{keyword: 1.2}), lambda x: plain(x, same, **{keyword: 1.2}), d)


def test_bce_is_finite_for_saturated_logits():
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0, 0.0])
    same = np.array([1, 0, 0, 1, 1])
    value, (g,) = value_and_grads(lambda x: losses.bce_with_logits(x, same, reduction="none"), z)
    np.testing.assert_allclose(value, [0, 0, 1000, 1000, np.log(2)])
    np.testing.assert_allclose(g, np.linspace(0.5, 1.5, 5) * [0, 0, 1, -1, -0.5])
    gradcheck(lambda x: losses.bce_with_logits(x, same), z)  # includes z = 0, where |z| has its kink
    for dtype in (np.float32, np.float64):
        x = ts.Tensor(z.astype(dtype), requires_grad=True)
        loss = losses.bce_with_logits(x, same, reduction="sum")
        loss.backward()
        assert np.isfinite(loss.item()) and np.isfinite(x.grad).all()
    # away from z = 0 the composed twin agrees there as well
    three_ways(lambda x: losses.bce_with_logits(x, same[:4]), lambda x: composed.bce_with_logits(x, same[:4]), z[:4])


def test_nt_xent_survives_a_zero_vector_and_identical_views():
    z1 = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]])
    value, (g1, g2) = value_and_grads(lambda a, b: losses.nt_xent_loss(a, b, 0.1), z1, z1.copy())
    assert np.isfinite(value).all() and np.isfinite(g1).all() and np.isfinite(g2).all()


def test_nt_xent_none_gives_one_value_per_view():
    z1, z2 = (ts.Tensor(np.random.default_rng(s).standard_normal((3, 4))) for s in (0, 1))
    per_view = losses.nt_xent_loss(z1, z2, reduction="none")
    assert per_view.shape == (6,)
    np.testing.assert_allclose(losses.nt_xent_loss(z1, z2).item(), per_view.numpy().mean())


@pytest.mark.parametrize("name", sorted(PAIR_LOSSES))
def test_sum_is_n_times_mean_and_none_keeps_each_sample(name):
    fused, _, keyword = PAIR_LOSSES[name]
    d, same = ts.Tensor(np.array([0.3, 0.7, 1.9])), np.array([1, 0, 0])
    per_sample = fused(d, same, **{keyword: 1.5}, reduction="none").numpy()
    assert per_sample.shape == (3,)
    np.testing.assert_allclose(fused(d, same, **{keyword: 1.5}, reduction="sum").item(), per_sample.sum())
    np.testing.assert_allclose(fused(d, same, **{keyword: 1.5}, reduction="mean").item(), per_sample.mean())


def test_float32_in_float32_out():
    d = ts.Tensor(np.array([0.3, 1.2], np.float32), requires_grad=True)
    loss = losses.contrastive_loss(d, np.array([1, 0]))
    loss.backward()
    assert loss.dtype == np.float32 and d.grad.dtype == np.float32


def test_every_loss_docstring_links_to_a_section_of_the_derivations():
    headings = Path(__file__).resolve().parents[1].joinpath("docs", "derivations.md").read_text().splitlines()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lstrip("# ").lower()).replace(" ", "-") for h in headings
               if h.startswith("## ")}
    classes = [c for c in vars(losses).values() if isinstance(c, type) and issubclass(c, losses.LossOp)
               and c is not losses.LossOp]
    assert len(classes) == 8  # the seven of the sources and the relatedness KL
    for cls in classes:
        link = re.search(r"docs/derivations\.md#([a-z0-9-]+)", cls.__doc__)
        assert link and link.group(1) in anchors, f"{cls.__name__}: no link to an existing section"


# ----- bad input ----------------------------------------------------------------------------------
def t(*shape, value=1.0):
    return ts.Tensor(np.full(shape, value))


BAD_INPUTS = [
    (lambda: losses.contrastive_loss(t(3), np.array([0, 1, 2])), ValueError, r"same must hold only 0.*\[2\]"),
    (lambda: losses.bce_with_logits(t(2), np.array([0.5, 1.0])), ValueError, r"same must hold only 0.*\[0.5\]"),
    (lambda: losses.contrastive_loss(t(3), np.array([0, 1])), ValueError, r"same has shape \(2,\) but distance"),
    (lambda: losses.contrastive_loss(t(3), np.ones((3, 1))), ValueError, r"same has shape \(3, 1\)"),
    (lambda: losses.bce_with_logits(t(3, 1), np.ones(3)), ValueError, r"logits must be a non-empty \(N,\).*\(3, 1\)"),
    (lambda: losses.contrastive_loss(t(3), np.ones(3), margin=0), ValueError, "margin must be .* got 0"),
    (lambda: losses.contrastive_linear_loss(t(3), np.ones(3), margin=-1.0), ValueError, "margin .* got -1.0"),
    (lambda: losses.triplet_loss(t(1, 2), t(1, 2), t(1, 2), margin=float("inf")), ValueError, "margin .* got inf"),
    (lambda: losses.chopra_energy_loss(t(3), np.ones(3), q=-1), ValueError, "q must .* got -1"),
    (lambda: losses.chopra_energy_loss(t(3), np.ones(3), q=True), ValueError, "q must .* got True"),
    (lambda: losses.nt_xent_loss(t(3, 2), t(3, 2), 0), ValueError, "temperature must .* got 0"),
    (lambda: losses.nt_xent_loss(t(1, 2), t(1, 2)), ValueError, "at least 2 pairs"),
    (lambda: losses.nt_xent_loss(t(3, 2), t(2, 2)), ValueError, r"z2 has shape \(2, 2\) but z1"),
    (lambda: losses.contrastive_loss(t(0), np.ones(0)), ValueError, "non-empty"),
    (lambda: losses.triplet_loss(t(0, 2), t(0, 2), t(0, 2)), ValueError, "empty batch"),
    (lambda: losses.contrastive_loss(t(1, value=np.nan), np.ones(1)), ValueError, "distance contains NaN"),
    (lambda: losses.triplet_loss(t(2, 3), t(2, 3, value=np.nan), t(2, 3)), ValueError, "positive contains NaN"),
    (lambda: losses.triplet_loss(t(2, 3), t(2, 3), t(3, 3)), ValueError, r"negative has shape \(3, 3\) but anchor"),
    (lambda: losses.triplet_loss(t(2, 3), t(2, 3), t(2, 3), distance="l3"), ValueError, "distance must .* 'l3'"),
    (lambda: losses.contrastive_loss(t(2), np.ones(2), reduction="avg"), ValueError, "reduction must .* 'avg'"),
    (lambda: losses.mse_loss(t(3), np.ones((3, 1))), ValueError, r"prediction has shape \(3,\) and target \(3, 1\)"),
    (lambda: losses.mse_loss(t(2), t(2, value=np.nan)), ValueError, "target contains NaN"),
    (lambda: losses.mse_loss(np.ones(2), t(2)), TypeError, "prediction must be a Tensor"),
    (lambda: losses.contrastive_loss(np.ones(2), np.ones(2)), TypeError, "distance must be a Tensor"),
]


@pytest.mark.parametrize("call, error, message", BAD_INPUTS)
def test_bad_input_names_the_argument_and_value(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_mse_takes_plain_label_arrays_as_constant_targets():
    score = ts.Tensor(np.array([0.9, 0.2, 0.6]), requires_grad=True)
    loss = losses.mse_loss(score, np.array([1, 0, 0]))  # integer labels become score's dtype
    loss.backward()
    np.testing.assert_allclose(loss.item(), (0.01 + 0.04 + 0.36) / 3)
    np.testing.assert_allclose(score.grad, 2 * np.array([-0.1, 0.2, 0.6]) / 3)
