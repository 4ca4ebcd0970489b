"""Choosing what to train on: balanced pairs, random triplets, and triplet miners.

Samplers draw indices into a labelled data set. Miners look at a batch of
embeddings (an array or a Tensor; no gradient flows through the choice) and
its class labels, and return index arrays ``(anchor, positive, negative)``
into that batch, on the embeddings' device; index the embedding tensor with them
and pass the rows to ``triplet_loss``. Everything works on whole index arrays
(no loop over pairs), and nothing is read back from a GPU: which rows are anchors
depends on the labels alone, the hardest partners are argmax/argmin on the device.
"""

import numpy as np

from ..engine.backend import to_numpy, xp_of
from ..engine.checks import check_integer, check_number
from ..engine.debug import may_read
from ..engine.tensor import Tensor
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
    """Pairs, half of the same class (``same=1``) and half of different classes (Chopra 2005).

    With ``groups`` (one entry per label value, e.g. the alphabet of each character), the two classes of a
    different pair come from one group.
    """

    def __init__(self, labels, seed=0, groups=None):
        self.by_class = _ByClass(labels, seed)
        self.with_pairs = np.flatnonzero(self.by_class.counts >= 2)
        if len(self.by_class.classes) < 2 or len(self.with_pairs) == 0:
            raise ValueError("PairSampler needs at least 2 classes and one class with 2 or more items; got "
                             f"{len(self.by_class.classes)} classes with counts {self.by_class.counts[:10].tolist()}")
        self.by_group = None  # with groups: the classes by group (its "items" are class positions)
        if groups is not None:
            classes = self.by_class.classes
            if classes.min() < 0 or len(groups) <= classes.max():
                raise ValueError(f"groups must have an entry per label value 0..{classes.max()} (labels index "
                                 f"groups), got {len(groups)} entries for labels {classes.min()}..{classes.max()}")
            _, self.group_of_class = np.unique(np.asarray(groups)[classes], return_inverse=True)
            self.by_group = _ByClass(self.group_of_class, self.by_class.rng)  # the same stream
            self.in_shared_group = np.flatnonzero(self.by_group.counts[self.group_of_class] >= 2)
            if len(self.in_shared_group) == 0:
                raise ValueError(f"PairSampler with groups needs a group with 2 or more classes; each of the "
                                 f"{len(classes)} classes is alone in its group")

    def sample(self, n):
        """(left, right, same) arrays of length n: ceil(n/2) same-class pairs (``same=1``, two
        different items) and floor(n/2) different-class pairs, in random order."""
        check_integer("n", n, low=1)
        g = self.by_class
        n_same = (n + 1) // 2
        same_classes = g.rng.choice(self.with_pairs, size=n_same)
        left_same, right_same = g.two_distinct_items(same_classes)
        c1, c2 = self._different_classes(n - n_same)
        left = np.concatenate([left_same, g.random_items(c1)])
        right = np.concatenate([right_same, g.random_items(c2)])
        same = np.concatenate([np.ones(n_same, np.int64), np.zeros(n - n_same, np.int64)])
        shuffle = g.rng.permutation(n)
        return left[shuffle], right[shuffle], same[shuffle]

    def _different_classes(self, n):
        if self.by_group is None:
            return self.by_class.two_distinct_classes(n)
        # a class drawn uniformly among those sharing their group picks the group, then two classes of it
        groups = self.group_of_class[self.by_class.rng.choice(self.in_shared_group, size=n)]
        return self.by_group.two_distinct_items(groups)


class TripletSampler:
    """Random (anchor, positive, negative) index triplets from a labelled set."""

    def __init__(self, labels, seed=0):
        self.pairs = PairSampler(labels, seed)

    def sample(self, n):
        """(anchor, positive, negative) index arrays of length n; anchor != positive."""
        check_integer("n", n, low=1)
        g = self.pairs.by_class
        classes = g.rng.choice(self.pairs.with_pairs, size=n)
        anchor, positive = g.two_distinct_items(classes)
        others = (classes + g.rng.integers(1, len(g.classes), size=n)) % len(g.classes)
        return anchor, positive, g.random_items(others)


def _batch(embeddings, labels, metric):
    """The (B, B) distance matrix of a batch, on the embeddings' device, and its positive and negative masks,
    NumPy arrays made from the labels alone: the miners then read no value back from a GPU."""
    embeddings = embeddings.data if isinstance(embeddings, Tensor) else embeddings
    labels = to_numpy(labels)
    if labels.ndim != 1 or embeddings.ndim != 2 or embeddings.shape[0] != len(labels):
        raise ValueError(f"embeddings must be (B, D) with one row per label; got embeddings of shape "
                         f"{embeddings.shape} and labels of shape {labels.shape}")
    d = pairwise_distances(embeddings, embeddings, metric)
    if may_read(d) and xp_of(d).isnan(d).any():
        raise ValueError("embeddings contain NaN")
    return (d,) + _masks(labels)


def _masks(labels):
    """positive[i, j]: j is another item of i's class; negative[i, j]: j is of another class."""
    labels = to_numpy(labels)
    same = labels[:, None] == labels[None, :]
    positive = same & ~np.eye(len(labels), dtype=bool)
    if not positive.any():
        raise ValueError("no valid positive in the batch: every class appears once (need 2+ items of a class)")
    if same.all():
        raise ValueError("no valid negative in the batch: all items have the same label")
    return positive, ~same


def random_triplets(labels, seed=0):
    """One random positive and one random negative for every item whose class has another item.

    Needs only the labels. Returns index arrays (anchor, positive, negative).
    """
    positive, negative = _masks(labels)
    rng = np.random.default_rng(seed)
    anchors = np.flatnonzero(positive.any(axis=1))

    def pick(mask):
        """A random valid column per anchor: the argmax of random scores inside the mask."""
        return np.argmax(np.where(mask[anchors], rng.random(mask[anchors].shape), -1), axis=1)

    return anchors, pick(positive), pick(negative)


def batch_hard_triplets(embeddings, labels, metric="l2"):
    """Hermans et al. 2017: for each anchor, its farthest positive and nearest negative in the batch.

    Every item whose class has another item in the batch is an anchor. Ties go to the lower index.
    """
    d, positive, negative = _batch(embeddings, labels, metric)
    xp = xp_of(d)
    anchors = np.flatnonzero(positive.any(axis=1))
    d, positive, negative = d[anchors], xp.asarray(positive[anchors]), xp.asarray(negative[anchors])
    hardest_positive = xp.where(positive, d, -xp.inf).argmax(axis=1)
    hardest_negative = xp.where(negative, d, xp.inf).argmin(axis=1)
    return xp.asarray(anchors), hardest_positive, hardest_negative


def semi_hard_triplets(embeddings, labels, margin=1.0, metric="l2"):
    """Schroff et al. 2015 (FaceNet): a semi-hard negative for every (anchor, positive) pair.

    A negative n is semi-hard for the pair (a, p) when d(a, p) < d(a, n) < d(a, p) + margin:
    farther than the positive, so not the hardest (FaceNet found the hardest ones can
    collapse the embedding early on), yet inside the margin, so its triplet loss is not zero.
    The nearest semi-hard negative is taken. Fallback, for a pair with none: the negative
    closest to that band, i.e. the farthest negative nearer than the positive or the nearest
    one beyond d(a, p) + margin, whichever lies closer to the band (TF Addons differs; see
    docs/derivations.md#mining).
    """
    check_number("margin", margin, low=0, low_included=False)
    d, positive, negative = _batch(embeddings, labels, metric)
    xp = xp_of(d)
    anchor, pos = np.nonzero(positive)  # every ordered (anchor, positive) pair
    d_ap, d_an, is_negative = d[anchor, pos][:, None], d[anchor], xp.asarray(negative[anchor])  # (pairs, 1), (pairs, B)
    in_band = is_negative & (d_an > d_ap) & (d_an < d_ap + margin)
    nearest_in_band = xp.where(in_band, d_an, xp.inf).argmin(axis=1)
    outside_by = xp.maximum(d_ap - d_an, d_an - (d_ap + margin))  # how far a negative lies outside the band
    closest_to_band = xp.where(is_negative, outside_by, xp.inf).argmin(axis=1)
    return xp.asarray(anchor), xp.asarray(pos), xp.where(in_band.any(axis=1), nearest_in_band, closest_to_band)
