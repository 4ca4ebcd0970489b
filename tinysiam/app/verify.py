"""Calibrated verification: ``tinysiam verify A B --checkpoint C`` says whether two images show the same class.

Scores are the model's pair scores, higher = more alike: minus the distance
of the two embeddings (the one their loss trained them for: L2, L1 or
cosine), or the score of a learned head (Koch's logit, a relation module's
output). A pair is
"same" when its score is at least a threshold that ``calibrate`` measured on
validation pairs at the end of training and that the checkpoint keeps in its
metadata under "calibration":

    {"score": "neg_l2", "neg_l1", "neg_cosine", "koch_logit" or "relation_score",
     "eer": 0.098, "eer_threshold": -0.53,            # the equal-error operating point
     "far_thresholds": {"0.01": -0.31, "0.001": -0.2},  # the lowest threshold within each false-accept rate
     "far_true_accept_rates": {"0.01": 0.62, "0.001": 0.35},
     "pairs": 2000, "same_pairs": 1000, "split": "validation", "seed": 0}
"""
import argparse

from ..engine import backend
from ..evaluation.metrics import equal_error_rate, threshold_at_far
from ..evaluation.verification import verification_pairs
from .errors import UserError
from .presets import get_preset
from .trained import INVERT_HELP, inverts, load_trained, read_image_files, score_meaning

HOW_TO_CALIBRATE = ("checkpoints written by `tinysiam train` record one at the end of training; for an older "
                    "checkpoint, store tinysiam.app.verify.calibrate(model, val_images, val_labels) in its meta "
                    "under 'calibration' (tinysiam.serialization.save_checkpoint)")


def far_key(far):
    """The key of a false-accept rate in ``far_thresholds``: ``0.01 -> "0.01"``."""
    return repr(float(far))


def calibrate(model, images, labels, n_pairs=2000, seed=0, fars=(0.01, 0.001), split="validation"):
    """Decision thresholds of ``model`` measured on ``n_pairs`` balanced pairs of ``images`` (classes ``labels``).

    Returns the JSON-able dict described in this module's docstring. ``fars``
    must each allow one false accept among the n_pairs // 2 different pairs.
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


def operating_point(calibration, far=None):
    """(threshold, description) of the equal-error point, or of the recorded false-accept rate ``far``."""
    pairs = f"{calibration['pairs']} {calibration['split']} pairs"
    if far is None:
        return calibration["eer_threshold"], f"equal error rate {calibration['eer']:.1%} on {pairs}"
    key = far_key(far)
    if key not in calibration["far_thresholds"]:
        recorded = ", ".join(calibration["far_thresholds"]) or "none"
        raise UserError(f"--far {far}: the checkpoint records thresholds at false-accept rates {recorded}")
    tar = calibration["far_true_accept_rates"][key]
    return calibration["far_thresholds"][key], f"false-accept rate {far:.2%}, true-accept rate {tar:.1%} on {pairs}"


def add_verify_parser(subparsers):
    p = subparsers.add_parser("verify", help="are two images of the same class? score, calibrated threshold, decision",
                              description="Prints the pair's score, the checkpoint's calibrated threshold and the "
                                          "decision; exit status 0 for same, 1 for different, 2 for an error.")
    p.add_argument("image_a", metavar="A", help="an image file")
    p.add_argument("image_b", metavar="B", help="another image file")
    p.add_argument("--checkpoint", required=True, help="a trained checkpoint (best.npz) with a calibration")
    p.add_argument("--far", type=float, help="decide at this recorded false-accept rate (e.g. 0.01) instead of "
                                             "the equal-error threshold")
    p.add_argument("--invert", action=argparse.BooleanOptionalAction, help=INVERT_HELP)
    p.add_argument("--device", choices=backend.DEVICES, default="cpu")


def run_verify(args, given=None):
    """``tinysiam verify``; ``given`` (training options) is unused: every command takes (args, given)."""
    model, config, meta = load_trained(args.checkpoint, args.device)
    calibration = meta.get("calibration")
    if calibration is None:
        raise UserError(f"--checkpoint {args.checkpoint} holds no calibration: {HOW_TO_CALIBRATE}")
    if calibration["score"] != model.score_kind:
        raise UserError(f"--checkpoint {args.checkpoint}: its calibration scores {calibration['score']} but the "
                         f"model scores {model.score_kind}")
    threshold, how = operating_point(calibration, args.far)
    size, invert = get_preset(config.preset).input_size, inverts(config, args.invert)
    a = read_image_files([args.image_a], size, invert, "A")
    b = read_image_files([args.image_b], size, invert, "B")
    score = float(model.pair_scores(a, b)[0])
    same = score >= threshold
    print(f"score      {score:.4f}  ({score_meaning(calibration['score'])}; higher = more alike)")
    print(f"threshold  {threshold:.4f}  ({how})")
    print(f"decision   {'same' if same else 'different'}")
    return 0 if same else 1
