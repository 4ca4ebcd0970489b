"""Verification on held-out classes: are two items of the same class? ROC AUC and equal error rate.

The pairs are balanced and seeded: half are two different items of one
class (``same = 1``), half are items of two different classes of the same
group (``same = 0``): for Omniglot, two drawings of one character against
drawings of two characters of one alphabet, as a forger would imitate a
signature rather than write another name. A data set without groups draws
its different pairs from any two classes. The pairs depend only on the labels,
the groups and the seed, so two aligned containers of the same items (pen
trajectories and their images) are scored on the same pairs.
"""
import numbers

import numpy as np

from ..engine.backend import to_numpy
from ..siamese.mining import _ByClass
from .metrics import equal_error_rate, roc_auc


def verification_pairs(labels, groups, n_pairs, seed=0):
    """(left, right, same) index arrays: n_pairs // 2 same-class pairs, then as many different-class pairs of one group.

    ``groups`` has one entry per label value (as ``LabelledItems.groups``), or is None.
    """
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, numbers.Integral) or n_pairs < 2 or n_pairs % 2:
        raise ValueError(f"n_pairs must be an even integer >= 2 (half same, half different), got {n_pairs!r}")
    rng = np.random.default_rng(seed)
    items = _ByClass(labels, rng)  # items by class; classes are indexed 0..C-1 in items.classes order
    group_names = np.zeros(len(items.classes)) if groups is None else np.asarray(groups)[items.classes]
    _, group_of_class = np.unique(group_names, return_inverse=True)
    classes = _ByClass(group_of_class, rng)  # classes by group: its "items" are class indices
    with_pairs = np.flatnonzero(items.counts >= 2)
    in_shared_group = np.flatnonzero(classes.counts[group_of_class] >= 2)
    if not len(with_pairs) or not len(in_shared_group):
        raise ValueError(f"labels: verification pairs need a class with 2+ items and a group with 2+ classes; got "
                         f"{len(with_pairs)} classes with 2+ items and {len(in_shared_group)} classes sharing a group")
    half = n_pairs // 2
    left_same, right_same = items.two_distinct_items(rng.choice(with_pairs, size=half))
    # a class drawn uniformly (among those sharing a group) picks the group, then two classes of it
    first, second = classes.two_distinct_items(group_of_class[rng.choice(in_shared_group, size=half)])
    left = np.concatenate([left_same, items.random_items(first)])
    right = np.concatenate([right_same, items.random_items(second)])
    return left, right, np.repeat(np.array([1, 0], dtype=np.int64), half)


def verify(score_fn, data, n_pairs=2000, seed=0):
    """Score ``data``'s (a ``LabelledItems``) balanced verification pairs: a dict with auc, eer, threshold, pairs.

    ``score_fn(left_items, right_items) -> (P,)`` scores aligned rows, higher
    meaning more alike (pass minus a distance).
    """
    left, right, same = verification_pairs(data.labels, data.groups, n_pairs, seed)
    scores = to_numpy(score_fn(data.items[left], data.items[right]))
    if scores.shape != (n_pairs,):
        raise ValueError(f"score_fn must return one score per pair, shape ({n_pairs},); got shape {scores.shape}")
    eer, threshold = equal_error_rate(scores, same)
    return {"auc": roc_auc(scores, same), "eer": eer, "threshold": threshold, "pairs": n_pairs, "seed": seed}
