"""Pair verification on held-out classes: are two items of the same class? EER and ROC AUC, fold by fold.

``verification_pairs`` draws seeded balanced pairs (``PairSampler``): half are
two different items of one class, half items of two different classes. Given
``groups`` (one per class), the two classes of a different pair come from one
group: for Omniglot, two drawings of one character against drawings of two
characters of one alphabet, as a forger imitates a signature rather than
writing another name. The pairs depend only on the labels, the groups and the
seed, so a model and its baselines, or two aligned containers of the same items
(pen trajectories and their images), are scored on the very same pairs.

The protocol of the AT&T faces (Chopra et al. 2005; 8 subject-disjoint folds,
``tinysiam.data.folds``): on each fold's test subjects, 2000 pairs scored by
the model and by the raw-pixel distance; the equal error rate and the ROC AUC
of each; then the mean and the sample standard deviation (ddof = 1) of both
over the folds.
"""
from dataclasses import dataclass

import numpy as np

from ..engine.backend import to_numpy
from ..siamese.mining import PairSampler
from .metrics import equal_error_rate, roc_auc


@dataclass
class VerificationResult:
    eer: float  # equal error rate, in [0, 1]
    auc: float  # area under the ROC curve
    pairs: int

    def __str__(self):
        return f"EER {self.eer:.2%}, AUC {self.auc:.4f} ({self.pairs} pairs)"


def verification_pairs(labels, n_pairs=2000, seed=0, groups=None):
    """(left, right, same): ``n_pairs`` seeded balanced pairs of indices into ``labels``; with ``groups`` (one
    entry per label value, as ``LabelledItems.groups``) the different pairs stay within one group."""
    return PairSampler(to_numpy(labels), seed=seed, groups=groups).sample(n_pairs)


def evaluate_verification(score_fn, items, pairs):
    """EER and AUC of ``score_fn(left_items, right_items) -> (n,) similarities`` on ``pairs``."""
    left, right, same = pairs
    scores = to_numpy(score_fn(items[left], items[right]))
    if scores.shape != (len(left),):
        raise ValueError(f"score_fn returned shape {scores.shape} for {len(left)} pairs, expected ({len(left)},)")
    return VerificationResult(equal_error_rate(scores, same)[0], roc_auc(scores, same), len(left))


def pixel_pair_scores(left, right):
    """The raw-pixel baseline as a pair ``score_fn``: minus the Euclidean distance between the two images."""
    left, right = to_numpy(left), to_numpy(right)
    return -np.sqrt(((left - right).reshape(len(left), -1) ** 2).sum(axis=1))


@dataclass
class FoldSummary:
    folds: list  # a VerificationResult per fold

    def __post_init__(self):
        if not self.folds:
            raise ValueError("FoldSummary needs at least one fold's result")

    @property
    def eer(self):
        """(mean, sd) of the folds' EERs."""
        return _mean_sd([fold.eer for fold in self.folds])

    @property
    def auc(self):
        """(mean, sd) of the folds' AUCs."""
        return _mean_sd([fold.auc for fold in self.folds])

    def __str__(self):
        (eer, eer_sd), (auc, auc_sd) = self.eer, self.auc
        return f"EER {eer:.2%} +- {eer_sd:.2%}, AUC {auc:.4f} +- {auc_sd:.4f} over {len(self.folds)} folds"

    def as_dict(self):
        (eer, eer_sd), (auc, auc_sd) = self.eer, self.auc
        return {"eer_mean": eer, "eer_sd": eer_sd, "auc_mean": auc, "auc_sd": auc_sd,
                "per_fold": [{"eer": fold.eer, "auc": fold.auc, "pairs": fold.pairs} for fold in self.folds]}


def _mean_sd(values):
    sd = np.std(values, ddof=1) if len(values) > 1 else np.nan  # one fold has no spread to estimate
    return float(np.mean(values)), float(sd)
