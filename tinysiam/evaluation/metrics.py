"""Evaluation metrics: verification (ROC, AUC, EER) and N-way k-shot accuracy (retrieval: ``retrieval.py``).

Verification scores are similarities (higher = more likely the same class)
with labels ``same = 1`` for same-class pairs; pass ``-distance`` to score
with a distance.
"""
from dataclasses import dataclass

import numpy as np

from ..engine.backend import to_numpy
from ..siamese.distances import pairwise_distances


class NonFiniteScores(ValueError):
    """Scores or embeddings that hold NaN or Inf: the model's weights have diverged (the model is at fault)."""


def check_finite_scores(values, what):
    """Refuse NaN or Inf: a model with diverged weights must not be reported as a (chance-level) accuracy."""
    values = to_numpy(values)
    if not np.isfinite(values).all():
        bad = int(np.size(values) - np.isfinite(values).sum())
        raise NonFiniteScores(f"{what} hold {bad} non-finite values (NaN or Inf): the model's weights may have "
                              "diverged")


def _scores_and_labels(scores, same):
    scores, same = to_numpy(scores).astype(np.float64).ravel(), to_numpy(same).ravel()
    if scores.shape != same.shape:
        raise ValueError(f"scores has {scores.size} values but same has {same.size}")
    if not np.isin(same, (0, 1)).all():
        raise ValueError(f"same must hold only 0 and 1, got values {np.unique(same)[:5].tolist()}")
    if same.all() or not same.any():
        raise ValueError("the ROC needs both same (1) and different (0) pairs; got only one kind")
    check_finite_scores(scores, "the scores")
    return scores, same.astype(bool)


def roc_curve(scores, same):
    """(fpr, tpr, thresholds): one point per distinct score, from (0, 0) to (1, 1).

    At threshold t a pair is called "same" when score >= t.
    """
    scores, same = _scores_and_labels(scores, same)
    order = np.argsort(-scores, kind="stable")
    scores, same = scores[order], same[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # tied scores move together
    tp = np.cumsum(same)[last_of_tie]
    fp = np.cumsum(~same)[last_of_tie]
    tpr = np.r_[0.0, tp / same.sum()]
    fpr = np.r_[0.0, fp / (~same).sum()]
    return fpr, tpr, np.r_[np.inf, scores[last_of_tie]]


def auc(fpr, tpr):
    """Area under a curve by the trapezoid rule."""
    fpr, tpr = np.asarray(fpr, np.float64), np.asarray(tpr, np.float64)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def roc_auc(scores, same):
    return auc(*roc_curve(scores, same)[:2])


def equal_error_rate(scores, same):
    """(eer, threshold) where the false-accept rate equals the false-reject rate (1 - tpr),
    linearly interpolated between the two ROC points that bracket the crossing."""
    fpr, tpr, thresholds = roc_curve(scores, same)
    fnr = 1 - tpr
    i = int(np.flatnonzero(fnr <= fpr)[0])  # first point past the crossing (fnr falls, fpr rises)
    if i == 0:
        return 0.0, float(thresholds[1])
    # on the segment from point i-1 to i, solve fpr(s) = fnr(s) for s in [0, 1]
    gap_before, gap_after = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
    s = gap_before / (gap_before - gap_after) if gap_before != gap_after else 0.0
    eer = fpr[i - 1] + s * (fpr[i] - fpr[i - 1])
    low, high = thresholds[i - 1], thresholds[i]
    threshold = high if np.isinf(low) else low + s * (high - low)
    return float(eer), float(threshold)


def threshold_at_far(scores, same, far):
    """(threshold, true-accept rate) at the lowest threshold whose false-accept rate is at most ``far``.

    A pair is called "same" when score >= threshold; the false-accept rate is
    the share of different pairs (``same == 0``) called "same". It is measured
    on these pairs, so ``far`` must allow at least one false accept: a rate
    below 1 / (number of different pairs) cannot be resolved and raises.
    """
    if not 0 < far < 1:
        raise ValueError(f"far must be in (0, 1), got {far}")
    fpr, tpr, thresholds = roc_curve(scores, same)
    n_different = int((to_numpy(same).ravel() == 0).sum())
    if far * n_different < 1:
        raise ValueError(f"far={far} cannot be measured on {n_different} different pairs; "
                         f"it needs at least {int(np.ceil(1 / far))}")
    i = int(np.flatnonzero(fpr <= far)[-1])  # fpr rises as the threshold falls
    if i == 0:  # even the top score is a different pair: only a threshold above every score qualifies
        return float(np.nextafter(thresholds[1], np.inf)), 0.0
    return float(thresholds[i]), float(tpr[i])


def best_threshold_accuracy(scores, same):
    """(accuracy, threshold): the best accuracy of "same iff score >= threshold"."""
    fpr, tpr, thresholds = roc_curve(scores, same)
    same = to_numpy(same).ravel().astype(bool)
    correct = tpr * same.sum() + (1 - fpr) * (~same).sum()
    best = int(np.argmax(correct))
    return float(correct[best] / same.size), float(thresholds[best])


# ----- few-shot episodes ------------------------------------------------------------------------------
@dataclass
class EpisodeResult:
    accuracy: float
    ci95: float  # half-width of the 95% confidence interval of the mean over episodes
    episodes: int

    def __str__(self):
        return f"{self.accuracy:.2%} +- {self.ci95:.2%} ({self.episodes} episodes)"


def sample_episodes(labels, n_way, k_shot, n_query=1, n_episodes=100, seed=0, groups=None):
    """Seeded N-way k-shot episodes: a list of (support (n_way, k_shot), query (n_way, n_query)) index arrays.

    With ``groups`` (one entry per label value, as ``LabelledImages.groups``), each episode draws its
    classes from one group, itself drawn uniformly among those with ``n_way`` eligible classes: for
    Omniglot, one alphabet per episode, as in Lake's within-alphabet runs.
    """
    labels = to_numpy(labels).ravel()
    classes, counts = np.unique(labels, return_counts=True)
    eligible = classes[counts >= k_shot + n_query]
    if n_way < 2 or k_shot < 1 or n_query < 1:
        raise ValueError(f"need n_way >= 2, k_shot >= 1, n_query >= 1; got {n_way}, {k_shot}, {n_query}")
    if len(eligible) < n_way:
        raise ValueError(f"{n_way}-way {k_shot}-shot with {n_query} queries needs {n_way} classes with "
                         f"{k_shot + n_query}+ items; only {len(eligible)} qualify")
    pools = [eligible] if groups is None else within_groups(eligible, groups, n_way)
    order = np.argsort(labels, kind="stable")  # each class's items together, in increasing index order
    members = dict(zip(classes, np.split(order, np.cumsum(counts)[:-1])))
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(n_episodes):
        pool = pools[0] if len(pools) == 1 else pools[rng.integers(len(pools))]
        chosen = rng.choice(pool, size=n_way, replace=False)
        picks = np.stack([rng.choice(members[c], size=k_shot + n_query, replace=False) for c in chosen])
        episodes.append((picks[:, :k_shot], picks[:, k_shot:]))
    return episodes


def within_groups(classes, groups, n_way):
    """``classes`` split by their group (``groups[c]`` for class c), keeping the groups with ``n_way`` or more."""
    of_class = np.asarray(groups)[classes]
    pools = [classes[of_class == g] for g in np.unique(of_class)]
    pools = [pool for pool in pools if len(pool) >= n_way]
    if not pools:
        raise ValueError(f"{n_way}-way episodes within one group need a group of {n_way} classes; the largest has "
                         f"{max(np.unique(of_class, return_counts=True)[1])}")
    return pools


def n_way_k_shot_accuracy(data, labels, n_way, k_shot=1, n_query=1, n_episodes=200, seed=0, metric="l2",
                          score_fn=None, groups=None):
    """Mean accuracy over seeded episodes, with a 95% confidence interval.

    Without ``score_fn``, ``data`` are embeddings: each class is the mean of its
    k support embeddings (a prototype) and a query goes to the nearest one.
    With ``score_fn(queries, supports) -> (nq, ns) similarities``, ``data`` are
    whatever it takes (e.g. images for Koch's head); a class scores the mean
    over its k supports. ``groups``: episodes within one group (``sample_episodes``).
    """
    data = to_numpy(data)
    if len(data) != len(to_numpy(labels).ravel()):
        raise ValueError(f"data has {len(data)} items but labels has {len(to_numpy(labels).ravel())}")
    if score_fn is None:
        check_finite_scores(data, "the embeddings")
    accuracies = []
    for support, query in sample_episodes(labels, n_way, k_shot, n_query, n_episodes, seed, groups):
        if score_fn is None:
            prototypes = data[support].mean(axis=1)
            scores = -pairwise_distances(data[query.ravel()], prototypes, metric)
        else:
            scores = to_numpy(score_fn(data[query.ravel()], data[support.ravel()]))
            check_finite_scores(scores, "the scores of score_fn")
            scores = scores.reshape(len(query.ravel()), n_way, k_shot).mean(axis=2)
        truth = np.repeat(np.arange(n_way), n_query)
        accuracies.append(np.mean(np.argmax(scores, axis=1) == truth))
    accuracies = np.asarray(accuracies)
    ci = 1.96 * accuracies.std(ddof=1) / np.sqrt(len(accuracies)) if len(accuracies) > 1 else float("nan")
    return EpisodeResult(float(accuracies.mean()), float(ci), len(accuracies))
