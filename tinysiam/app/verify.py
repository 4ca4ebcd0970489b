"""Calibrated verification: ``tinysiam verify A B --checkpoint C`` says whether two images show the same class.

The checkpoint holds the thresholds that ``tinysiam.evaluation.calibration.calibrate``
measured on validation pairs at the end of training (its docstring describes
them); ``verify`` scores the pair as the model scores pairs (higher = more
alike) and decides at the equal-error threshold or at a recorded false-accept rate.
"""
import argparse

from ..engine import backend
from ..evaluation.calibration import far_key
from .errors import UserError, blame
from .presets import get_preset
from .trained import INVERT_HELP, inverts, load_trained, read_image_files, score_meaning

HOW_TO_CALIBRATE = ("checkpoints written by `tinysiam train` record one at the end of training; for an older "
                    "checkpoint, store tinysiam.evaluation.calibration.calibrate(model, val_images, val_labels) in its "
                    "meta under 'calibration' (tinysiam.serialization.save_checkpoint)")


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
                                          "decision; exit status 0 for same, 1 for different, 2 for an error. With a "
                                          "model of sentences, A and B are sentences and it prints their predicted "
                                          "relatedness (exit status 0).")
    p.add_argument("image_a", metavar="A", help="an image file (a sentence, for a model of sentences)")
    p.add_argument("image_b", metavar="B", help="another image file (or sentence)")
    p.add_argument("--checkpoint", required=True, help="a trained checkpoint (best.npz) with a calibration")
    p.add_argument("--far", type=float, help="decide at this recorded false-accept rate (e.g. 0.01) instead of "
                                             "the equal-error threshold")
    p.add_argument("--invert", action=argparse.BooleanOptionalAction, help=INVERT_HELP)
    p.add_argument("--device", choices=backend.DEVICES, default="cpu")


def run_verify(args, given=None):
    """``tinysiam verify``; ``given`` (training options) is unused: every command takes (args, given)."""
    model, config, meta = load_trained(args.checkpoint, args.device)
    if model.vocabulary is not None:
        return relatedness(model, args)
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


def relatedness(model, args):
    """``verify`` with a model of sentences: A and B are sentences; it prints their predicted relatedness."""
    if args.far is not None:
        raise UserError(f"--far {args.far}: a relatedness model predicts a score on its data's 1-5 scale; it has no "
                        "calibrated false-accept rates")
    with blame():  # a sentence without words is named
        score = float(model.pair_scores([args.image_a], [args.image_b])[0])
    print(f"relatedness  {score:.3f}  (predicted on SICK's scale: 1 = unrelated, 5 = the same meaning)")
    return 0
