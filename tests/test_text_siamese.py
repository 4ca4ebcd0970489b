"""The sentence encoder's parts: the KL loss to a score distribution, the relatedness heads, the text tower and
twin (finite differences on drawn shapes, the definitions, padding invariance, errors)."""
import numpy as np
import pytest
from conftest import DEVICES, on
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysiam as ts
from tinysiam.app.catalogue.layers import module_check
from tinysiam.engine.gradcheck import gradcheck
from tinysiam.siamese import composed
from tinysiam.siamese.losses import expected_score, kl_divergence_loss, score_distribution
from tinysiam.siamese.text import DistributionHead, ExpL1Head, TextConvTower, TextTwin, pad_batch

FAST = settings(max_examples=15, deadline=None)
on_each_device = pytest.mark.parametrize("device", DEVICES)
seeds = st.integers(0, 2**16)


def as_float64(module):
    return module.astype(np.float64)


# ----- the KL loss and the score distribution ----------------------------------------------------------------
@on_each_device
@FAST
@given(n=st.integers(1, 4), k=st.integers(2, 6), seed=seeds, sparse=st.booleans(),
       reduction=st.sampled_from(["mean", "sum", "none"]))
def test_kl_divergence_gradients(device, n, k, seed, sparse, reduction):
    rng = np.random.default_rng(seed)
    if sparse:  # Tai et al.'s targets: mass on one or two neighbouring levels
        p = score_distribution(rng.uniform(1, k, n), low=1, high=k)
    else:
        p = rng.dirichlet(np.ones(k), n)
    z = rng.standard_normal((n, k)) * 3
    gradcheck(lambda t: kl_divergence_loss(t, on(device, p)[0], reduction), *on(device, z))


@FAST
@given(n=st.integers(1, 4), k=st.integers(2, 6), seed=seeds, reduction=st.sampled_from(["mean", "sum", "none"]))
def test_kl_divergence_fused_equals_composed(n, k, seed, reduction):
    rng = np.random.default_rng(seed)
    p = score_distribution(rng.uniform(1, k, n), low=1, high=k)
    z = rng.standard_normal((n, k)) * 3
    fused, plain = (ts.Tensor(z, requires_grad=True) for _ in range(2))
    a = kl_divergence_loss(fused, p, reduction)
    b = composed.kl_divergence_loss(plain, p, reduction)
    upstream = np.linspace(0.5, 1.5, a.size).reshape(a.shape)
    a.backward(upstream)
    b.backward(upstream)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fused.grad, plain.grad, rtol=1e-9, atol=1e-12)


def test_kl_divergence_values():
    z = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]]))
    p = np.array([[0.5, 0.5, 0.0], [0.1, 0.6, 0.3]])
    loss = kl_divergence_loss(ts.Tensor(z), p, reduction="none").numpy()
    np.testing.assert_allclose(loss, [0.5 * np.log(0.5 / 0.5) + 0.5 * np.log(0.5 / 0.25), 0.0], atol=1e-12)
    assert kl_divergence_loss(ts.Tensor(z), p).item() == pytest.approx(loss.mean())
    big = kl_divergence_loss(ts.Tensor(np.array([[1000.0, -1000.0]])), np.array([[0.0, 1.0]]))
    assert np.isfinite(big.item()) and big.item() == pytest.approx(2000.0)  # no overflow in the softmax
    t = ts.Tensor(z, requires_grad=True)
    kl_divergence_loss(t, p, reduction="sum").backward()
    q = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(t.grad, q - p, atol=1e-12)  # dL/dz = softmax(z) - p


def test_kl_divergence_refuses_bad_targets():
    z = ts.Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"target row 1 is not a distribution .*got \[0.5, 0.0, 0.0\]"):
        kl_divergence_loss(z, np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"target row 0 is not a distribution"):
        kl_divergence_loss(z, np.array([[1.5, -0.5, 0.0], [1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"target has shape \(2, 2\) but logits \(2, 3\)"):
        kl_divergence_loss(z, np.full((2, 2), 0.5))
    with pytest.raises(TypeError, match="target must be floating point"):
        kl_divergence_loss(z, np.array([[1, 0, 0], [0, 1, 0]]))
    with pytest.raises(ValueError, match=r"logits must be \(N, K\) with N >= 1 and K >= 2"):
        kl_divergence_loss(ts.Tensor(np.zeros(3)), np.full(3, 1 / 3))


@settings(max_examples=50, deadline=None)
@given(scores=st.lists(st.floats(1, 5), min_size=1, max_size=10))
def test_score_distribution_expects_the_score(scores):
    p = score_distribution(scores)
    assert p.shape == (len(scores), 5) and (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1)
    np.testing.assert_allclose(p @ np.arange(1, 6), scores, atol=1e-12)
    assert ((p > 0).sum(axis=1) <= 2).all()
    np.testing.assert_allclose(expected_score(np.log(np.maximum(p, 1e-300))), scores, atol=1e-9)


def test_score_distribution_hand_values_and_errors():
    np.testing.assert_allclose(score_distribution([1.0, 3.6, 5.0]),
                               [[1, 0, 0, 0, 0], [0, 0, 0.4, 0.6, 0], [0, 0, 0, 0, 1]], atol=1e-12)
    for bad in ([0.5], [5.5], [np.nan], [[3.0]]):
        with pytest.raises(ValueError, match=r"scores must be an \(N,\) array of numbers in \[1, 5\]"):
            score_distribution(bad)


# ----- heads --------------------------------------------------------------------------------------------
@on_each_device
@FAST
@given(n=st.integers(1, 4), features=st.integers(1, 4), hidden=st.integers(1, 4), seed=seeds)
def test_heads_gradients(device, n, features, hidden, seed):
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal((n, features)), rng.standard_normal((n, features))
    check = module_check("head", "head", DistributionHead(features, hidden=hidden, rng=rng), [u, v])
    gradcheck(check.fn, *on(device, *check.inputs))
    v_apart = u + rng.uniform(0.1, 1, u.shape) * rng.choice([-1, 1], u.shape)  # away from |u - v|'s kink
    gradcheck(lambda a, b: ExpL1Head(scale=2.0)(a, b), *on(device, u, v_apart))


def test_exp_l1_head_values():
    u = ts.Tensor(np.array([[0.0, 0.0], [1.0, 1.0]]))
    v = ts.Tensor(np.array([[0.0, 0.0], [0.0, 2.0]]))
    np.testing.assert_allclose(ExpL1Head()(u, v).numpy(), [5.0, 1 + 4 * np.exp(-2)])
    np.testing.assert_allclose(ExpL1Head(scale=2.0)(u, v).numpy(), [5.0, 1 + 4 * np.exp(-1)])
    with pytest.raises(ValueError, match="ExpL1Head: scale must be a finite number > 0, got 0"):
        ExpL1Head(scale=0)


# ----- the tower and the twin -------------------------------------------------------------------------------
def tiny_tower(rng, **settings):
    options = dict(embed_dim=3, channels=2, widths=(1, 3), out_dim=2, rng=rng)
    return as_float64(TextConvTower(8, **{**options, **settings}))


@FAST
@given(n=st.integers(1, 3), seed=seeds, pooling=st.sampled_from([("max",), ("mean",), ("max", "mean")]),
       project=st.booleans())
def test_twin_gradients_reach_every_parameter(n, seed, pooling, project):
    rng = np.random.default_rng(seed)
    tower = tiny_tower(rng, pooling=pooling, out_dim=2 if project else None)
    twin = TextTwin(tower, as_float64(DistributionHead(tower.out_dim, hidden=2, rng=rng)))
    lengths_a, lengths_b = rng.integers(1, 5, n), rng.integers(1, 4, n)
    ids_a = np.where(np.arange(4) < lengths_a[:, None], rng.integers(1, 8, (n, 4)), 0)
    ids_b = np.where(np.arange(3) < lengths_b[:, None], rng.integers(1, 8, (n, 3)), 0)
    check = module_check("twin", "network", twin, [ids_a, lengths_a, ids_b, lengths_b])
    gradcheck(check.fn, *check.inputs)


def test_a_sentence_gets_one_embedding_whatever_its_batch():
    rng = np.random.default_rng(0)
    tower = tiny_tower(rng).eval()
    sentences = [[3, 1, 4, 1, 5], [2, 6], [7]]
    ids, lengths = pad_batch(sentences)
    together = tower(ids, lengths).numpy()
    for i, s in enumerate(sentences):
        alone = tower(*pad_batch([s])).numpy()
        np.testing.assert_allclose(alone[0], together[i], atol=1e-12)
    twin = TextTwin(tower)
    u, v = twin(ids[:2], lengths[:2], *pad_batch([[7], [2, 6]]))
    np.testing.assert_allclose(v.numpy(), together[[2, 1]], atol=1e-12)


def test_word_dropout_only_in_training():
    rng = np.random.default_rng(0)
    tower = tiny_tower(rng, word_dropout=0.5)
    ids, lengths = pad_batch([[3, 4, 5, 6, 7, 2, 3]] * 8)
    tower.eval()
    first = tower(ids, lengths).numpy()
    np.testing.assert_array_equal(first, tower(ids, lengths).numpy())
    tower.train()
    assert not np.allclose(tower(ids, lengths).numpy(), first)  # some words read as unknown


def test_same_values_on_each_device(device):
    rng = np.random.default_rng(0)
    tower = tiny_tower(rng)
    twin = TextTwin(tower, as_float64(DistributionHead(2, hidden=3, rng=rng)))
    batch = pad_batch([[1, 2, 3], [4]]) + pad_batch([[5, 6], [7, 7, 7, 7]])
    expected = twin(*batch).numpy()
    twin.to(device)
    out = twin(*on(device, *batch))
    kl_divergence_loss(out, on(device, score_distribution([2.5, 4.0]))[0]).backward()
    assert out.device == device
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)


def test_tower_errors():
    rng = np.random.default_rng(0)
    tower = tiny_tower(rng)
    with pytest.raises(ValueError, match=r"TextConvTower: ids must lie in \[0, 8\).*got 9"):
        tower(np.array([[1, 9]]), np.array([2]))
    with pytest.raises(ValueError, match=r"TextConvTower: ids must be integers"):
        tower(np.array([[1.0, 2.0]]), np.array([2]))
    with pytest.raises(ValueError, match=r"expected ids \(N, L\) and lengths \(N,\)"):
        tower(np.array([[1, 2]]), np.array([2, 1]))
    with pytest.raises(ValueError, match="sequence 0 has no valid step"):
        tower(np.array([[0, 0]]), np.array([0]))
    with pytest.raises(ValueError, match="pooling must be one or both of"):
        TextConvTower(8, pooling=("sum",))
    with pytest.raises(ValueError, match="widths must name at least one kernel width"):
        TextConvTower(8, widths=())
    with pytest.raises(ValueError, match=r"pad_batch: .*sequence 1 is empty"):
        pad_batch([[1], []])
    ids, lengths = pad_batch([[4, 2], [3], [1, 1, 1]])
    assert ids.tolist() == [[4, 2, 0], [3, 0, 0], [1, 1, 1]] and lengths.tolist() == [2, 1, 3]


def test_head_dropout_drops_pair_features_only_in_training():
    rng = np.random.default_rng(0)
    head = DistributionHead(6, hidden=4, dropout=0.5, rng=rng)
    u, v = (ts.Tensor(rng.standard_normal((5, 6)).astype(np.float32)) for _ in range(2))
    assert "dropout=0.5" in repr(head)
    head.eval()
    first = head(u, v).numpy()
    np.testing.assert_array_equal(first, head(u, v).numpy())
    head.train()
    assert not np.allclose(head(u, v).numpy(), first)
