"""LabelledImages: images with integer class labels, and class-disjoint splits."""
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LabelledImages:
    images: np.ndarray  # float32 (N, 1, H, W) in [0, 1]
    labels: np.ndarray  # int64 (N,), indices into class_names
    class_names: list
    groups: list = field(default=None)  # per class, e.g. its Omniglot alphabet

    def __post_init__(self):
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self):
        return len(self.labels)

    @property
    def classes(self):
        return np.unique(self.labels)

    def subset(self, keep):
        """The items selected by a boolean mask or index array (labels keep their values)."""
        return LabelledImages(self.images[keep], self.labels[keep], self.class_names, self.groups)

    def select_classes(self, classes):
        """The items of the given classes."""
        return self.subset(np.isin(self.labels, classes))

    def split_classes(self, first, seed=0):
        """Two class-disjoint parts: ``first`` classes (a count, or a fraction if < 1) drawn at random, and the rest."""
        classes = self.classes
        n_first = int(round(first * len(classes))) if first < 1 else int(first)
        if not 0 < n_first < len(classes):
            raise ValueError(f"first={first} leaves an empty part of {len(classes)} classes")
        chosen = np.random.default_rng(seed).choice(classes, size=n_first, replace=False)
        return self.select_classes(chosen), self.select_classes(np.setdiff1d(classes, chosen))

    def split_items(self, fraction, seed=0):
        """Two item-disjoint parts over the same classes: about ``fraction`` of each class goes first."""
        if not 0 < fraction < 1:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        rng = np.random.default_rng(seed)
        first = np.zeros(len(self), dtype=bool)
        for c in self.classes:
            members = rng.permutation(np.flatnonzero(self.labels == c))
            first[members[: max(1, int(round(fraction * len(members))))]] = True
        return self.subset(first), self.subset(~first)
