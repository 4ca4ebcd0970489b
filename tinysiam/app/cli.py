"""The command line: ``tinysiam {demo,train,eval,folds,verify,index,search,gradcheck,bench}`` (or python -m tinysiam).

This file only parses options and dispatches: the protocols (train, demo, folds,
eval) are in ``protocols.py``, using a checkpoint in ``verify.py`` and
``search.py``. A user error (a bad option value, a missing or unreadable file)
prints one line and exits with status 2 (TINYSIAM_DEBUG=1 shows the traceback);
any other exception is a bug and keeps its traceback.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..data.registry import DATA_SETS, TEST_PROTOCOLS
from ..engine import backend
from ..engine.checks import integer_problem, number_problem
from . import protocols
from .config import LOSSES, OPTIMIZERS, ConfigError, TrainConfig
from .errors import UserError
from .presets import PRESETS
from .recipes import RECIPES, recipe_settings
from .search import add_index_parser, add_search_parser, run_index, run_search
from .verify import add_verify_parser, run_verify

# the training options: one per TrainConfig field (its default is the config's), with its help
TRAINING_OPTIONS = {
    "data": dict(choices=tuple(DATA_SETS), help="the data set (tinysiam/data/registry.py)"),
    "preset": dict(choices=sorted(PRESETS), help="the tower architecture (tinysiam/app/presets.py)"),
    "loss": dict(choices=LOSSES, help="the training objective"),
    "optimizer": dict(choices=OPTIMIZERS),
    "lr": dict(type=float, help="learning rate"),
    "lr_schedule": dict(choices=("constant", "cosine", "exponential"),
                        help="cosine: down to 0 over the run; exponential: times --lr-decay every epoch"),
    "lr_decay": dict(type=float, help="factor per epoch of the exponential schedule"),
    "momentum": dict(type=float, help="SGD momentum"),
    "weight_decay": dict(type=float, help="L2 weight decay"),
    "epochs": dict(type=int),
    "steps_per_epoch": dict(type=int),
    "batch": dict(type=int, help="pairs per step (images per step for triplet, nt-xent and relation)"),
    "way": dict(type=int, help="relation: classes per training episode"),
    "shot": dict(type=int, help="relation: support images per class (the rest of the episode are queries)"),
    "margin": dict(type=float, help="margin of the contrastive and triplet losses; Q of the chopra loss"),
    "temperature": dict(type=float, help="temperature of the nt-xent loss"),
    "augment": dict(action=argparse.BooleanOptionalAction,
                    help="distort training items: Koch et al.'s affine maps for images, pen-trajectory distortions "
                         "for strokes (needed by nt-xent)"),
    "device": dict(choices=backend.DEVICES),
    "seed": dict(type=int),
    "val_way": dict(type=int, help="N of the N-way one-shot validation"),
    "val_episodes": dict(type=int, help="validation episodes per epoch"),
}
# the recipe's settings (docs/recipes.md)
TRAINING_OPTIONS.update({
    "per_class": dict(type=int, help="triplet: images per class in a batch (K of P x K)"),
    "normalize": dict(action=argparse.BooleanOptionalAction, help="unit-length embeddings"),
    "standardize": dict(action=argparse.BooleanOptionalAction,
                        help="each image to mean 0, variance 1 before the tower (lighting, contrast)"),
    "augment_strength": dict(type=float, help="scales the ranges of --augment's distortions (0.5: half of each)"),
    "flip": dict(action=argparse.BooleanOptionalAction, help="mirror half of the training images left to right"),
    "tta": dict(action=argparse.BooleanOptionalAction,
                help="test-time augmentation: embeddings averaged over each image and its four one-pixel shifts"),
    "rotations": dict(action=argparse.BooleanOptionalAction,
                      help="images: train on every class also rotated by 90, 180 and 270 degrees, each rotation a "
                           "class of its own (as Vinyals et al.'s split does)"),
    "val_split": dict(choices=("classes", "alphabets"),
                      help="omniglot, strokes: validate on random characters, or on whole held-out alphabets, 20-way "
                           "within one (like Lake's runs)"),
    "layer_lr_scale": dict(type=float, nargs="+", metavar="F",
                           help="one factor of --lr per layer with weights (the tower's, then the head's)"),
    "layer_momentum": dict(type=float, nargs="+", metavar="M", help="sgd: one momentum per layer with weights"),
    "layer_weight_decay": dict(type=float, nargs="+", metavar="WD", help="one L2 weight decay per layer with weights"),
    "momentum_ramp": dict(type=int, help="sgd: epochs over which every layer's momentum rises linearly from 0.5 to "
                                         "its own (0: its own from the start)"),
    "patience": dict(type=int, help="stop after this many epochs without a better validation accuracy (0: never)"),
})


# the options of the other commands, checked by the rules and in the words of train's (engine/checks.py):
# ("integer", low) or ("number", low, high, low_included)
OPTION_RULES = {
    "eval": {"way": ("integer", 2), "seed": ("integer", 0)},
    "folds": {"folds": ("integer", 3)},
    "verify": {"far": ("number", 0, 1, False)},
    "index": {"batch": ("integer", 1)},
    "search": {"k": ("integer", 1), "nprobe": ("integer", 1), "ef_search": ("integer", 1)},
}


def check_options(args):
    """A UserError naming the first option of ``args.command`` whose value breaks its rule (``OPTION_RULES``)."""
    for name, (kind, *bounds) in OPTION_RULES.get(args.command, {}).items():
        value = getattr(args, name)
        problem = None if value is None else integer_problem(value, *bounds) if kind == "integer" else \
            number_problem(value, *bounds)
        if problem:
            raise UserError(f"{'-k' if name == 'k' else '--' + name.replace('_', '-')} {problem}")


# ----- the commands: each calls its protocol (protocols.py) and writes the record ----------------------
def cmd_train(args, given):
    start = time.perf_counter()
    mode = "resume" if args.resume else "overwrite" if args.overwrite else "new"
    if args.recipe is not None:
        given = {**recipe_settings(args.recipe), **given}
    summary = protocols.train_run(given, args.out, mode, args.data_dir, progress=not args.quiet,
                                  plots=not args.no_plots, detect_anomaly=args.detect_anomaly,
                                  keep_epochs=args.keep_epochs, run_test=not args.no_test)
    print(json.dumps(summary, indent=1))
    protocols.record(args.record, summary, start)
    return 0


def cmd_demo(args, given):
    start = time.perf_counter()
    results = protocols.demo(args.demo_data, given, args.out, args.overwrite, progress=not args.quiet,
                             plots=not args.no_plots)
    protocols.record(args.record, results, start)
    return 0


def cmd_folds(args, given):
    start = time.perf_counter()
    settings = {**recipe_settings(args.recipe), **given} if args.recipe else given
    summary = protocols.folds(settings, args.folds, args.out, args.data_dir, args.overwrite, progress=not args.quiet,
                              plots=not args.no_plots)
    protocols.record(args.record, summary, start)
    return 0


def cmd_eval(args, given):
    start = time.perf_counter()
    summary = protocols.evaluate(args.protocol, args.checkpoint, args.baseline, args.runs, args.data, args.data_dir,
                                 args.way, args.device, args.seed, args.out, args.overwrite)
    protocols.record(args.record, summary, start)
    return 0


def run_benchmarks(argv):
    """``tinysiam bench``: the harness lives in the checkout's benchmarks/ folder, not in the installed package."""
    import importlib.util

    harness = Path(__file__).resolve().parents[2] / "benchmarks" / "harness.py"
    if not harness.is_file():
        print(f"tinysiam bench: error: the benchmarks run from a source checkout; {harness} is not there",
              file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location("tinysiam_benchmarks_harness", harness)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


# ----- argument parsing ------------------------------------------------------------------------------
class Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_training_options(parser, only=None):
    """The TrainConfig options; absent ones stay out of the namespace, so the config's defaults apply."""
    defaults = TrainConfig().to_dict()
    for name, spec in TRAINING_OPTIONS.items():
        if only is None or name in only:
            help_text = f"{spec.get('help', name.replace('_', ' '))} (default: {defaults[name]})"
            parser.add_argument("--" + name.replace("_", "-"), dest=name, default=argparse.SUPPRESS,
                                **{**spec, "help": help_text})


def _add_run_options(parser):
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--overwrite", action="store_true", help="start over in an --out that holds a run")


def build_parser():
    parser = Parser(prog="tinysiam", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="one-shot recognition on Omniglot's Lake runs, offline, in minutes (or "
                                       "--data digits, in seconds)")
    demo.add_argument("--data", dest="demo_data", choices=tuple(protocols.DEMO_RECIPES), default="omniglot",
                      help="omniglot: the recipe omniglot-demo on the copy inside the package; digits: scikit-learn's "
                           "8x8 digits (default: omniglot)")
    _add_training_options(demo, only=("loss", "epochs", "steps_per_epoch", "lr", "device", "seed"))
    demo.add_argument("--out", help="output folder (default: a new runs/demo[-N])")
    demo.add_argument("--record", metavar="NAME", help="write results/NAME.json: command, commit, seconds, results")
    _add_run_options(demo)

    train = sub.add_parser("train", help="train a Siamese network")
    train.add_argument("--recipe", help=f"start from a named recipe's settings ({', '.join(RECIPES)}; "
                                        "tinysiam/app/recipes.py); options given override them")
    _add_training_options(train)
    train.add_argument("--data-dir", help="folder with the data set's archives (default: $TINYSIAM_DATA)")
    train.add_argument("--out", required=True, help="output folder for checkpoints, logs and plots")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last.npz")
    train.add_argument("--record", metavar="NAME", help="write results/NAME.json: command, commit, seconds, results")
    train.add_argument("--keep-epochs", action="store_true",
                       help="keep every epoch's checkpoint (epoch-NNN.npz); a run tested on Lake's runs also scores "
                            "each there, for a curve of accuracy against minutes of training (never for choosing)")
    train.add_argument("--no-test", action="store_true",
                       help="train and validate only, leaving the test protocol untouched (to compare settings on "
                            "validation; test the chosen checkpoint once, with tinysiam eval)")
    train.add_argument("--detect-anomaly", action="store_true",
                       help="name the first operation that makes a NaN or Inf (slower; to find a bug)")
    _add_run_options(train)

    ev = sub.add_parser("eval", help="evaluate a checkpoint or a baseline")
    ev.add_argument("--protocol", choices=protocols.EVAL_PROTOCOLS, default="lake",
                    help=f"lake: {TEST_PROTOCOLS['lake']}; nway: the data set's held-out test "
                         f"({TEST_PROTOCOLS['held-out']}; "
                         f"strokes: {TEST_PROTOCOLS['trajectories']})")
    ev.add_argument("--checkpoint")
    ev.add_argument("--baseline", choices=("mhd", "pixels"))
    ev.add_argument("--runs", help="all_runs.zip or its folder (default: found under --data-dir)")
    ev.add_argument("--data", choices=tuple(DATA_SETS), help="(nway) the data set (default: the checkpoint's)")
    ev.add_argument("--data-dir")
    ev.add_argument("--way", type=int, default=5, help="(nway) N of the N-way one-shot test")
    ev.add_argument("--device", choices=backend.DEVICES, default="cpu")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--out", help="folder for the JSON result and plots")
    ev.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    ev.add_argument("--record", metavar="NAME", help="write results/NAME.json: command, commit, seconds, results")

    folds = sub.add_parser("folds", help="k-fold subject-disjoint verification (the AT&T faces' 8 folds): each fold "
                                         "trains and tests; EER and AUC, mean +- sd, next to raw pixels")
    folds.add_argument("--recipe", help=f"start from a named recipe's settings ({', '.join(RECIPES)})")
    _add_training_options(folds)
    folds.add_argument("--folds", type=int, default=8, help="number of folds (default: 8)")
    folds.add_argument("--data-dir", help="folder with the data set's archives (default: $TINYSIAM_DATA)")
    folds.add_argument("--out", required=True, help="output folder: one run folder per fold, and folds.json")
    folds.add_argument("--record", metavar="NAME", help="write results/NAME.json: command, commit, seconds, results")
    _add_run_options(folds)

    add_verify_parser(sub)
    add_index_parser(sub)
    add_search_parser(sub)

    sub.add_parser("gradcheck", help="run the gradient-check catalogue", add_help=False)
    sub.add_parser("bench", help="benchmarks against PyTorch and DeZero (from a source checkout)", add_help=False)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "gradcheck":  # these parse their own options
        from .catalogue import main as gradcheck_main

        return gradcheck_main(argv[1:])
    if argv and argv[0] == "bench":
        return run_benchmarks(argv[1:])
    args = build_parser().parse_args(argv)
    # lists (the per-layer options) as tuples, as the config and its recipes hold them
    given = {name: tuple(value) if isinstance(value, list) else value for name, value in vars(args).items()
             if name in TRAINING_OPTIONS}
    commands = {"demo": cmd_demo, "train": cmd_train, "eval": cmd_eval, "verify": run_verify,
                "index": run_index, "search": run_search, "folds": cmd_folds}
    try:
        check_options(args)
        # a diverging run is caught and reported in one line by tinysiam, not by NumPy's overflow warnings
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return commands[args.command](args, given)
    except KeyboardInterrupt as interrupt:
        from .training import TrainingInterrupted

        saved = " (last.npz holds the last step; continue with --resume)" if isinstance(interrupt,
                                                                                         TrainingInterrupted) else ""
        print(f"\ninterrupted{saved}", file=sys.stderr)
        return 130
    except (UserError, ConfigError, MemoryError, FloatingPointError) as error:  # FloatingPointError: --detect-anomaly
        if os.environ.get("TINYSIAM_DEBUG"):
            raise
        print(f"tinysiam: error: {describe(error)}", file=sys.stderr)
        return 2


def describe(error):
    """One line for a user error; a setting is named as its option (``--steps-per-epoch``)."""
    if isinstance(error, ConfigError):
        return f"--{error.field.replace('_', '-')} {error.message}"
    if isinstance(error, MemoryError):
        return "out of memory: lower --batch (or use a smaller --preset)"
    return str(error)
