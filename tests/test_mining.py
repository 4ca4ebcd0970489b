"""Pair and triplet sampling, and the miners."""
import numpy as np
import pytest

from tinysiam.mining import PairSampler, TripletSampler, batch_hard_triplets, random_triplets, semi_hard_triplets


def test_pair_sampler_is_balanced_and_correct():
    labels = np.repeat(np.arange(10), 5)
    left, right, same = PairSampler(labels, seed=0).sample(1000)
    assert same.sum() == 500
    np.testing.assert_array_equal(labels[left] == labels[right], same == 1)
    assert (left != right).all()


def test_pair_sampler_is_seeded():
    labels = np.repeat(np.arange(5), 3)
    a, b = PairSampler(labels, seed=3).sample(20), PairSampler(labels, seed=3).sample(20)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_triplet_sampler():
    labels = np.repeat(np.arange(4), 3)
    a, p, n = TripletSampler(labels, seed=0).sample(200)
    assert (labels[a] == labels[p]).all() and (a != p).all() and (labels[a] != labels[n]).all()


def test_batch_hard_picks_the_farthest_positive_and_nearest_negative():
    emb = np.array([[0.0], [1.0], [3.0], [1.5], [10.0]])
    labels = np.array([0, 0, 0, 1, 1])
    anchor, positive, negative = batch_hard_triplets(emb, labels)
    np.testing.assert_array_equal(anchor, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(positive, [2, 2, 0, 4, 3])
    np.testing.assert_array_equal(negative, [3, 3, 3, 1, 2])


def test_semi_hard_negatives_lie_beyond_the_positive():
    rng = np.random.default_rng(0)
    emb, labels = rng.standard_normal((20, 3)), np.repeat(np.arange(4), 5)
    anchor, positive, negative = semi_hard_triplets(emb, labels, margin=0.5)
    d = np.linalg.norm(emb[:, None] - emb[None], axis=2)
    assert (labels[anchor] == labels[positive]).all() and (labels[anchor] != labels[negative]).all()
    farther = d[anchor, negative] > d[anchor, positive]
    has_farther = np.array([(d[a][labels != labels[a]] > d[a, p]).any() for a, p in zip(anchor, positive)])
    np.testing.assert_array_equal(farther, has_farther)  # the fallback only where no negative is farther


def test_random_triplets_are_valid():
    labels = np.array([0, 0, 1, 1, 2])
    a, p, n = random_triplets(labels)
    assert (labels[a] == labels[p]).all() and (a != p).all() and (labels[a] != labels[n]).all()
    assert 4 not in a  # class 2 has no positive


@pytest.mark.parametrize("labels, message", [(np.arange(4), "no valid positive"), (np.zeros(4), "no valid negative")])
def test_miners_refuse_batches_without_triplets(labels, message):
    with pytest.raises(ValueError, match=message):
        batch_hard_triplets(np.ones((4, 2)), labels)
    with pytest.raises(ValueError, match=message):
        semi_hard_triplets(np.ones((4, 2)), labels)


def test_pair_sampler_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2 classes"):
        PairSampler(np.zeros(5))
