"""Choosing what to train on: balanced pairs, random triplets, and triplet miners.

Samplers draw indices into a labelled data set. Miners look at a batch of
embeddings (a raw array, no gradient) and return index arrays
``(anchor, positive, negative)`` into that batch; index the embedding tensor
with them and pass the rows to ``triplet_loss``.
"""
import numpy as np

from .backend import to_numpy
from .distances import pairwise_distances


class _ByClass:
    """Indices of a label array grouped by class, for vectorised drawing."""

    def __init__(self, labels, seed):
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) == 0:
            raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
        self.classes, inverse, self.counts = np.unique(labels, return_inverse=True, return_counts=True)
        self.order = np.argsort(inverse, kind="stable")  # indices sorted by class
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self.rng = np.random.default_rng(seed)

    def item(self, class_ids, positions):
        return self.order[self.starts[class_ids] + positions]

    def random_items(self, class_ids):
        return self.item(class_ids, (self.rng.random(len(class_ids)) * self.counts[class_ids]).astype(int))

    def two_distinct_items(self, class_ids):
        """Two different items of each given class (each class needs >= 2 items)."""
        counts = self.counts[class_ids]
        first = (self.rng.random(len(class_ids)) * counts).astype(int)
        second = (first + 1 + (self.rng.random(len(class_ids)) * (counts - 1)).astype(int)) % counts
        return self.item(class_ids, first), self.item(class_ids, second)

    def two_distinct_classes(self, n):
        k = len(self.classes)
        first = self.rng.integers(k, size=n)
        return first, (first + self.rng.integers(1, k, size=n)) % k


class PairSampler:
    """Pairs, half of the same class (``same=1``) and half of different classes (Chopra 2005)."""

    def __init__(self, labels, seed=0):
        self.groups = _ByClass(labels, seed)
        self.with_pairs = np.flatnonzero(self.groups.counts >= 2)
        if len(self.groups.classes) < 2 or len(self.with_pairs) == 0:
            raise ValueError("PairSampler needs at least 2 classes and one class with 2 or more items; got "
                             f"{len(self.groups.classes)} classes with counts {self.groups.counts[:10].tolist()}")

    def sample(self, n):
        """(left, right, same) index arrays of length n; same is 1 for the first half, then shuffled."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        g = self.groups
        n_same = (n + 1) // 2
        same_classes = g.rng.choice(self.with_pairs, size=n_same)
        left_same, right_same = g.two_distinct_items(same_classes)
        c1, c2 = g.two_distinct_classes(n - n_same)
        left = np.concatenate([left_same, g.random_items(c1)])
        right = np.concatenate([right_same, g.random_items(c2)])
        same = np.concatenate([np.ones(n_same, np.int64), np.zeros(n - n_same, np.int64)])
        shuffle = g.rng.permutation(n)
        return left[shuffle], right[shuffle], same[shuffle]


class TripletSampler:
    """Random (anchor, positive, negative) index triplets from a labelled set."""

    def __init__(self, labels, seed=0):
        self.pairs = PairSampler(labels, seed)

    def sample(self, n):
        g = self.pairs.groups
        classes = g.rng.choice(self.pairs.with_pairs, size=n)
        anchor, positive = g.two_distinct_items(classes)
        others = (classes + g.rng.integers(1, len(g.classes), size=n)) % len(g.classes)
        return anchor, positive, g.random_items(others)


def _masks(labels):
    labels = to_numpy(labels)
    same = labels[:, None] == labels[None, :]
    positive = same & ~np.eye(len(labels), dtype=bool)
    if not positive.any():
        raise ValueError("no valid positive in the batch: every class appears once (need 2+ items of a class)")
    if same.all():
        raise ValueError("no valid negative in the batch: all items have the same label")
    return positive, ~same


def random_triplets(labels, seed=0):
    """One random positive and negative for every anchor that has a positive."""
    positive, negative = _masks(labels)
    rng = np.random.default_rng(seed)
    anchors = np.flatnonzero(positive.any(axis=1))

    def pick(mask):
        """A random valid column per anchor: the argmax of random scores inside the mask."""
        return np.argmax(np.where(mask[anchors], rng.random(mask[anchors].shape), -1), axis=1)

    return anchors, pick(positive), pick(negative)


def batch_hard_triplets(embeddings, labels, metric="l2"):
    """Hermans et al. 2017: for each anchor, its farthest positive and nearest negative in the batch."""
    positive, negative = _masks(labels)
    d = to_numpy(pairwise_distances(embeddings, embeddings, metric))
    anchors = np.flatnonzero(positive.any(axis=1))
    hardest_positive = np.argmax(np.where(positive, d, -np.inf)[anchors], axis=1)
    hardest_negative = np.argmin(np.where(negative, d, np.inf)[anchors], axis=1)
    return anchors, hardest_positive, hardest_negative


def semi_hard_triplets(embeddings, labels, margin=1.0, metric="l2"):
    """Schroff et al. 2015 (FaceNet): every (anchor, positive) pair with the nearest negative
    farther than the positive, d(a,p) < d(a,n) (semi-hard when also < d(a,p) + margin).

    Where no negative is farther than the positive, the farthest negative is used
    (the fallback of TensorFlow Addons' semi-hard loss).
    """
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    positive, negative = _masks(labels)
    d = to_numpy(pairwise_distances(embeddings, embeddings, metric))
    anchor, pos = np.nonzero(positive)
    d_an = np.where(negative[anchor], d[anchor], np.nan)  # (pairs, batch)
    farther = d_an > d[anchor, pos][:, None]
    nearest_farther = np.argmin(np.where(farther, d_an, np.inf), axis=1)
    farthest = np.argmax(np.where(negative[anchor], d_an, -np.inf), axis=1)
    return anchor, pos, np.where(farther.any(axis=1), nearest_farther, farthest)
