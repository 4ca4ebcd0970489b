"""Pair and triplet sampling, and the miners (checked against plain loops over the batch)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysiam as ts
from tinysiam.siamese.mining import (
    PairSampler,
    TripletSampler,
    batch_hard_triplets,
    random_triplets,
    semi_hard_triplets,
)

FAST = settings(max_examples=20, deadline=None)


def test_pair_sampler_is_balanced_and_correct():
    labels = np.repeat(np.arange(10), 5)
    left, right, same = PairSampler(labels, seed=0).sample(1000)
    assert same.sum() == 500
    np.testing.assert_array_equal(labels[left] == labels[right], same == 1)
    assert (left != right).all()
    assert len(np.unique(labels[left[same == 1]])) == 10  # every class takes part


def test_pair_sampler_odd_count_and_seed():
    labels = np.repeat(np.arange(5), 3)
    first, again = PairSampler(labels, seed=3).sample(21), PairSampler(labels, seed=3).sample(21)
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)
    assert first[2].sum() == 11
    assert not np.array_equal(first[0], PairSampler(labels, seed=4).sample(21)[0])


def test_pair_sampler_skips_singleton_classes_for_same_pairs():
    labels = np.array([0, 1, 1, 2, 3])  # only class 1 can form a same pair
    left, right, same = PairSampler(labels, seed=0).sample(50)
    assert set(labels[left[same == 1]]) == {1} and (left != right).all()
    assert (labels[left[same == 0]] != labels[right[same == 0]]).all()


def test_triplet_sampler():
    labels = np.repeat(np.arange(4), 3)
    a, p, n = TripletSampler(labels, seed=0).sample(200)
    assert (labels[a] == labels[p]).all() and (a != p).all() and (labels[a] != labels[n]).all()


@pytest.mark.parametrize("labels, message", [(np.zeros(5), "at least 2 classes"), (np.arange(5), "2 or more items"),
                                             (np.zeros((2, 2)), "1-D"), (np.array([]), "non-empty")])
def test_samplers_refuse_unusable_labels(labels, message):
    with pytest.raises(ValueError, match=message):
        PairSampler(labels)


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_samplers_refuse_a_bad_count(n):
    labels = np.repeat(np.arange(3), 2)
    for sampler in (PairSampler(labels), TripletSampler(labels)):
        with pytest.raises(ValueError, match=f"n must be an integer >= 1, got {n!r}"):
            sampler.sample(n)


# ----- miners -------------------------------------------------------------------------------------------
def test_batch_hard_picks_the_farthest_positive_and_nearest_negative():
    emb = np.array([[0.0], [1.0], [3.0], [1.5], [10.0]])
    labels = np.array([0, 0, 0, 1, 1])
    anchor, positive, negative = batch_hard_triplets(emb, labels)
    np.testing.assert_array_equal(anchor, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(positive, [2, 2, 0, 4, 3])
    np.testing.assert_array_equal(negative, [3, 3, 3, 1, 2])


def test_semi_hard_by_hand():
    # anchor 0 at 0 with its positive 1 at 1; margin 1, so the semi-hard band is 1 < d(a, n) < 2
    emb = np.array([[0.0], [1.0], [0.5], [1.6], [1.8], [2.5]])
    labels = np.array([0, 0, 1, 1, 1, 1])
    anchor, positive, negative = semi_hard_triplets(emb, labels, margin=1.0)
    pair = (anchor == 0) & (positive == 1)
    assert negative[pair] == [3]  # 1.6 and 1.8 are semi-hard; the nearer one wins, not 0.5 (hard) or 2.5 (easy)
    # with a margin of 0.5 the band is (1, 1.5): empty; 0.5 lies 0.5 below it and 1.6 lies 0.1 above it
    anchor, positive, negative = semi_hard_triplets(emb, labels, margin=0.5)
    assert negative[(anchor == 0) & (positive == 1)] == [3]
    # without 1.6 and 1.8: 0.5 lies 0.5 below the band (1, 1.5), 2.5 lies 1.0 above it
    keep = [0, 1, 2, 5]
    anchor, positive, negative = semi_hard_triplets(emb[keep], labels[keep], margin=0.5)
    assert negative[(anchor == 0) & (positive == 1)] == [2]


def loop_reference(d, labels, margin):
    """The semi-hard rule written pair by pair: the nearest negative in the band, else the one closest to it."""
    triplets = []
    for a in range(len(labels)):
        for p in range(len(labels)):
            if p == a or labels[p] != labels[a]:
                continue
            negatives = [n for n in range(len(labels)) if labels[n] != labels[a]]
            band = [n for n in negatives if d[a, p] < d[a, n] < d[a, p] + margin]
            if band:
                n = min(band, key=lambda n: (d[a, n], n))
            else:
                n = min(negatives, key=lambda n: (max(d[a, p] - d[a, n], d[a, n] - d[a, p] - margin), n))
            triplets.append((a, p, n))
    return triplets


@FAST
@given(seed=st.integers(0, 10_000), n=st.integers(3, 12), classes=st.integers(2, 4), margin=st.floats(0.05, 3.0),
       metric=st.sampled_from(["l2", "squared_l2", "l1", "cosine"]))
def test_miners_match_loops_over_the_batch(seed, n, classes, margin, metric):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    if len(set(labels)) < 2 or np.bincount(labels).max() < 2:
        return  # no valid triplet: tested separately
    emb = rng.standard_normal((n, 3))
    d = {"l2": lambda x, y: np.linalg.norm(x - y), "squared_l2": lambda x, y: ((x - y) ** 2).sum(),
         "l1": lambda x, y: np.abs(x - y).sum(),
         "cosine": lambda x, y: 1 - x @ y / np.linalg.norm(x) / np.linalg.norm(y)}[metric]
    dist = np.array([[d(x, y) for y in emb] for x in emb])
    dist[np.eye(n, dtype=bool)] = 0
    mined = list(zip(*semi_hard_triplets(emb, labels, margin, metric)))
    reference = loop_reference(dist, labels, margin)
    assert [m[:2] for m in mined] == [r[:2] for r in reference]
    # compare the chosen negatives' distances (ties between equally far negatives may pick either)
    np.testing.assert_allclose([dist[a, n] for a, _, n in mined], [dist[a, n] for a, _, n in reference], atol=1e-9)
    anchor, positive, negative = batch_hard_triplets(emb, labels, metric)
    for a, p, q in zip(anchor, positive, negative):
        same, other = labels == labels[a], labels != labels[a]
        same[a] = False
        assert np.isclose(dist[a, p], dist[a, same].max()) and np.isclose(dist[a, q], dist[a, other].min())
    assert set(anchor) == {a for a in range(n) if (labels == labels[a]).sum() > 1}


def test_random_triplets_are_valid_and_seeded():
    labels = np.array([0, 0, 1, 1, 2, 0, 1])
    a, p, n = random_triplets(labels, seed=1)
    assert (labels[a] == labels[p]).all() and (a != p).all() and (labels[a] != labels[n]).all()
    assert 4 not in a  # class 2 has no positive
    np.testing.assert_array_equal(n, random_triplets(labels, seed=1)[2])
    negatives_seen = {tuple(random_triplets(labels, seed=s)[2]) for s in range(10)}
    assert len(negatives_seen) > 1


def test_miners_accept_a_tensor_of_embeddings():
    emb, labels = np.random.default_rng(0).standard_normal((6, 2)), np.array([0, 0, 1, 1, 2, 2])
    for miner in (batch_hard_triplets, semi_hard_triplets):
        for x, y in zip(miner(ts.Tensor(emb), labels), miner(emb, labels)):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("labels, message", [(np.arange(4), "no valid positive"), (np.zeros(4), "no valid negative")])
def test_miners_refuse_batches_without_triplets(labels, message):
    for miner in (batch_hard_triplets, semi_hard_triplets):
        with pytest.raises(ValueError, match=message):
            miner(np.ones((4, 2)), labels)
    with pytest.raises(ValueError, match=message):
        random_triplets(labels)


@pytest.mark.parametrize("call, message", [
    (lambda: batch_hard_triplets(np.ones((4, 2)), np.array([0, 0, 1])), r"shape \(4, 2\) and labels of shape \(3,\)"),
    (lambda: semi_hard_triplets(np.ones(4), np.array([0, 0, 1, 1])), r"embeddings of shape \(4,\)"),
    (lambda: batch_hard_triplets(np.full((4, 2), np.nan), np.array([0, 0, 1, 1])), "NaN"),
    (lambda: semi_hard_triplets(np.ones((4, 2)), np.array([0, 0, 1, 1]), margin=0), "margin .* got 0"),
    (lambda: batch_hard_triplets(np.ones((4, 2)), np.array([0, 0, 1, 1]), metric="l3"), "'l3'"),
])
def test_miners_refuse_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
