"""Subject-disjoint folds for k-fold verification (the AT&T faces' 8-fold protocol).

The classes (subjects) are shuffled once with ``seed`` and cut into
``n_folds`` blocks of (nearly) equal size. Fold k tests on block k,
validates on block k + 1 (the last fold on block 0), and trains on all the
others: every subject is tested exactly once and validated exactly once, and
no fold trains, validates or tests on the same subject twice. For the 40
AT&T subjects and 8 folds: 5 test, 5 validation and 30 training subjects a
fold.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fold:
    """One fold's class labels: sorted arrays, pairwise disjoint."""
    index: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def split(self, data):
        """(train, val, test) parts of a ``LabelledImages`` by this fold's classes."""
        return data.select_classes(self.train), data.select_classes(self.val), data.select_classes(self.test)


def subject_folds(classes, n_folds=8, seed=0):
    """The ``n_folds`` folds over ``classes`` (label values, e.g. ``faces.classes``), as described above."""
    classes = np.asarray(classes)
    if classes.ndim != 1 or len(np.unique(classes)) != len(classes):
        raise ValueError(f"classes must be a 1-d array of distinct labels, got {classes!r}")
    if not 3 <= n_folds <= len(classes):
        raise ValueError(f"n_folds must be between 3 (test, validation and training blocks) and the number of "
                         f"classes ({len(classes)}), got {n_folds}")
    blocks = np.array_split(np.random.default_rng(seed).permutation(classes), n_folds)
    folds = []
    for k in range(n_folds):
        val = (k + 1) % n_folds
        train = np.concatenate([block for i, block in enumerate(blocks) if i not in (k, val)])
        folds.append(Fold(k, np.sort(train), np.sort(blocks[val]), np.sort(blocks[k])))
    return folds
