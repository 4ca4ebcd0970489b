"""Decision thresholds of a verification model, measured on validation pairs (``tinysiam verify`` applies them).

Scores are the model's pair scores, higher = more alike: minus the distance of
the two embeddings (the one their loss trained them for: L2, L1 or cosine), or
the score of a learned head (Koch's logit, a relation module's output). A pair
is "same" when its score is at least a threshold. ``calibrate`` measures the
thresholds on balanced pairs of held-out images and returns a JSON-able dict,
which training stores in each checkpoint's metadata under "calibration":

    {"score": "neg_l2", "neg_l1", "neg_cosine", "koch_logit" or "relation_score",
     "eer": 0.098, "eer_threshold": -0.53,            # the equal-error operating point
     "far_thresholds": {"0.01": -0.31, "0.001": -0.2},  # the lowest threshold within each false-accept rate
     "far_true_accept_rates": {"0.01": 0.62, "0.001": 0.35},
     "pairs": 2000, "same_pairs": 1000, "split": "validation", "seed": 0}
"""
from ..engine import backend
from .metrics import equal_error_rate, threshold_at_far
from .verification import verification_pairs


def far_key(far):
    """The key of a false-accept rate in ``far_thresholds``: ``0.01 -> "0.01"``."""
    return repr(float(far))


def calibrate(model, images, labels, n_pairs=2000, seed=0, fars=(0.01, 0.001), split="validation"):
    """Decision thresholds of ``model`` measured on ``n_pairs`` balanced pairs of ``images`` (classes ``labels``).

    Returns the dict described in this module's docstring. ``fars`` must each
    allow one false accept among the n_pairs // 2 different pairs.
    """
    left, right, same = verification_pairs(labels, n_pairs, seed)
    with model.evaluating():
        embeddings = backend.to_numpy(model.embed(images))  # each image once; pairs reuse them
        scores = model.score_embeddings(embeddings[left], embeddings[right])
    eer, eer_threshold = equal_error_rate(scores, same)
    at_far = {far_key(far): threshold_at_far(scores, same, far) for far in fars}
    return {"score": model.score_kind, "eer": eer, "eer_threshold": eer_threshold,
            "far_thresholds": {key: threshold for key, (threshold, _) in at_far.items()},
            "far_true_accept_rates": {key: tar for key, (_, tar) in at_far.items()},
            "pairs": int(n_pairs), "same_pairs": int(same.sum()), "split": split, "seed": seed}
