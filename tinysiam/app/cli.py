"""The command line: ``tinysiam {demo,train,eval,folds,verify,index,search,gradcheck,bench}`` (also ``python -m tinysiam``).

This file only parses options and calls the layers below: data splits come from
``tinysiam.data.splits``, evaluation from ``tinysiam.evaluation``, training from
``training.py``. A user error (a bad option value, a missing or unreadable file)
prints one line and exits with status 2 (TINYSIAM_DEBUG=1 shows the traceback);
any other exception is a bug and keeps its traceback.
"""
import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..data.splits import DATA_SETS, STROKES_PROTOCOL_DATA_SETS, load_split
from ..engine import backend
from ..engine import debug as engine_debug
from ..serialization import write_text_atomic
from .config import (ALPHABET_DATA_SETS, LOSSES, OPTIMIZERS, ConfigError, TrainConfig, check_preset_fits,
                     resume_config)
from .errors import UserError, blame
from .presets import PRESETS
from .recipes import RECIPES, recipe_settings
from .search import add_index_parser, add_search_parser, run_index, run_search
from .verify import add_verify_parser, run_verify

# the training options: one per TrainConfig field (its default is the config's), with its help
TRAINING_OPTIONS = {
    "data": dict(choices=DATA_SETS, help="the data set"),
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
# what `tinysiam demo --data D` trains unless told otherwise
DEMO_RECIPES = {"omniglot": "omniglot-demo", "digits": "digits-demo"}


# ----- training ------------------------------------------------------------------------------------
def train_run(given, out, mode, data_dir=None, progress=True, plots=True, detect_anomaly=False, split=None):
    """Train (or resume) a run into ``out`` from the explicitly ``given`` settings; returns its results dict.

    ``detect_anomaly`` trains inside ``tinysiam.engine.detect_anomaly()``: slower, and it names the first
    operation that makes a NaN or an infinity. ``split`` (train, val, test) replaces the data set's own
    split (``tinysiam folds`` passes each fold's)."""
    from ..evaluation.held_out import check_way, evaluate_held_out, raw_pixel_accuracy
    from .model import load_model
    from .runs import RunFolder
    from .training import Trainer, validation_groups

    run = RunFolder(out)
    run.check(mode)  # fails fast, before the data is loaded; checked again under the folder's lock
    if mode == "resume":
        with blame(f"--resume {run.path / 'last.npz'}"):
            saved = TrainConfig.from_dict(run.read_meta()["config"])
        config, changes = resume_config(saved, given)
    else:
        config, changes = TrainConfig(**given), {}
    check_device(config.device)
    if split is None:
        with blame(f"--data {config.data}"):
            split = load_split(config.data, PRESETS[config.preset].input_size, config.seed, data_dir, config.val_split)
    train, val, test = split
    with blame():
        check_way(config.val_way, val, "--val-way")
        validation_groups(config, val)
    with run.open(mode):
        trainer = Trainer(config, train, val, run, progress=progress)
        if mode == "resume":
            trainer.resume(changes)
            for name, (old, new) in changes.items():
                print(f"resuming with {name} = {new} (was {old})", flush=True)
        print(f"training {config.preset} with the {config.loss} loss on {config.data}: {len(train)} {train.item_name} "
              f"of {len(train.classes)} classes, validating on {len(val)} {val.item_name} of {len(val.classes)} "
              "classes", flush=True)
        with engine_debug.detect_anomaly() if detect_anomaly else contextlib.nullcontext():
            trainer.fit()
        summary = {"best_val_accuracy": trainer.best_accuracy, "checkpoint": str(run.path / "best.npz"),
                   "val_verification_eer": run.read_meta("best.npz")["calibration"]["eer"],
                   "training_seconds": sum(row["seconds"] for row in trainer.history), "history": trainer.history}
        model, _ = load_model(run.path / "best.npz", device=config.device)
        if config.data in STROKES_PROTOCOL_DATA_SETS:  # verification next to DTW and pixels
            summary.update(trajectory_test(model, config.preset, test, config.seed, data_dir))
        elif test is not None:
            way = min(config.val_way, len(test.classes))
            summary.update(evaluate_held_out(model, test, way, seed=config.seed, plot_dir=run.path if plots else None))
            summary[f"test_{way}way_1shot_raw_pixels"] = raw_pixel_accuracy(test, way, seed=config.seed).accuracy
        elif config.data in ALPHABET_DATA_SETS:  # Omniglot's test is Lake's 20 runs
            last, _ = load_model(run.path / "last.npz", device=config.device)
            summary.update(lake_test(model, config, data_dir, last=last, plot_dir=run.path if plots else None))
        if plots:
            from ..evaluation import plots as figures
            from .runs import read_history

            figures.plot_history(read_history(run.path), run.path / "loss.png")
        write_json(run.path / "results.json", summary)
    return summary


def trajectory_test(model, preset, test, seed, data_dir):
    """The model (its tower the ``preset``) on 2000 seeded verification pairs of the test alphabets' pen
    trajectories (an image preset: of their drawings' images), next to DTW on the same trajectories and raw
    pixels of the same drawings (their images, from the data folder); prints the three, returns the results."""
    from ..data.splits import drawing_images
    from ..evaluation.held_out import TRAJECTORY_PIXEL_SIZE, evaluate_trajectories
    from .presets import SEQUENCE_PRESETS

    with blame():  # names --data-dir or the archive
        images = drawing_images(test.names, TRAJECTORY_PIXEL_SIZE, data_dir)
        model_images = None if preset in SEQUENCE_PRESETS else \
            drawing_images(test.names, PRESETS[preset].input_size, data_dir)
    result = evaluate_trajectories(model, test, images, pairs=2000, seed=seed, model_images=model_images)
    height, width = TRAJECTORY_PIXEL_SIZE
    print(f"verification on the held-out alphabets {', '.join(result['test_alphabets'])} "
          f"({result['test_classes']} characters): {result['test_pairs']} pairs (seed {seed}), half of one "
          "character, half of two characters of one alphabet")
    for name, suffix in ((f"{preset}, trained", ""), ("DTW on position and direction", "_dtw"),
                         (f"raw pixels at {height}x{width}", "_raw_pixels")):
        print(f"  {name:32s} AUC {result['test_verification_auc' + suffix]:.3f}   "
              f"EER {result['test_verification_eer' + suffix]:.1%}")
    return result


def lake_test(model, config, data_dir, last=None, plot_dir=None):
    """The model (the best checkpoint's; also ``last``, the last one's) on Lake's 20 runs next to the two
    baselines (MHD and raw pixels); with ``plot_dir``, a one-shot figure and the embeddings of the first run."""
    from ..evaluation.oneshot import evaluate_lake_runs, mhd_scores, pixel_scores

    runs, source = lake_runs(data_dir, size=PRESETS[config.preset].input_size)
    full_size, _ = lake_runs(data_dir)
    result = evaluate_lake_runs(runs, model.similarity)
    print(f"Lake's 20-way within-alphabet one-shot, {len(runs)} runs ({source}): {result}")
    summary = {"lake_accuracy": result.accuracy, "lake_ci95": result.ci95, "lake_per_run": result.per_run,
               "lake_mhd_accuracy": evaluate_lake_runs(full_size, mhd_scores).accuracy,
               "lake_raw_pixels_accuracy": evaluate_lake_runs(full_size, pixel_scores).accuracy}
    if last is not None:
        summary["lake_accuracy_last"] = evaluate_lake_runs(runs, last.similarity).accuracy
    if plot_dir is not None:
        plot_lake_run(model, runs[0], plot_dir)
    return summary


def lake_runs(data_dir=None, size=None):
    """(Lake's 20 runs at ``size``, where they come from): ``all_runs.zip`` of the data folder (--data-dir or
    $TINYSIAM_DATA) when it holds one, else the demo bundle, which holds the same images."""
    from ..data import load_demo_runs
    from ..data.splits import ARCHIVES, data_root, find_archives
    from ..evaluation.oneshot import load_lake_runs

    path = None
    if data_dir or os.environ.get("TINYSIAM_DATA"):
        with blame():  # names --data-dir
            root = data_root(data_dir)
        with contextlib.suppress(FileNotFoundError):
            path = find_archives(root, ARCHIVES["lake"], "Lake's runs")[0]
    if path is None:
        return load_demo_runs(size), "the demo bundle's copy of all_runs.zip"
    with blame(str(path)):
        return load_lake_runs(path, size=size), str(path)


def plot_lake_run(model, run, plot_dir):
    """one_shot.png: the first query of ``run``, its 20 candidates and the model's choice; embeddings.png: the
    run's 40 images (support and query of each character) in the plane of their two principal axes."""
    from ..evaluation import plots

    choice = int(np.argmax(model.similarity(run.queries[:1], run.supports)[0]))
    plots.plot_one_shot(run.queries[0], run.supports, choice, int(run.answers[0]), plot_dir / "one_shot.png")
    embeddings = backend.to_numpy(model.embed(np.concatenate([run.supports, run.queries])))
    characters = np.concatenate([np.arange(len(run.supports)), run.answers])
    plots.plot_embeddings_2d(embeddings, characters, plot_dir / "embeddings.png",
                             [f"character {c + 1}" for c in range(len(run.supports))])


def cmd_train(args, given):
    start = time.perf_counter()
    mode = "resume" if args.resume else "overwrite" if args.overwrite else "new"
    if args.recipe is not None:
        given = {**recipe_settings(args.recipe), **given}
    summary = train_run(given, args.out, mode, args.data_dir, progress=not args.quiet, plots=not args.no_plots,
                        detect_anomaly=args.detect_anomaly)
    print(json.dumps(summary, indent=1))
    record(args.record, summary, start)
    return 0


def record(name, summary, start):
    """With ``--record NAME``: results/NAME.json holds the command, commit, seconds and ``summary``."""
    if name is not None:
        from .records import write_record

        with blame("--record"):
            path = write_record(name, summary, time.perf_counter() - start, command=["tinysiam", *sys.argv[1:]])
        print(f"recorded in {path}")


def cmd_demo(args, given):
    start = time.perf_counter()
    out = Path(args.out) if args.out else fresh_folder(Path("runs") / "demo")
    settings = {**recipe_settings(DEMO_RECIPES[args.demo_data]), **given}
    if args.demo_data == "digits":
        print("tinysiam demo: a Siamese convnet on scikit-learn's 8x8 digits. Trains on digits 0-4, then "
              "recognises 5-9 from ONE example each (5-way one-shot, chance = 20%).")
    else:
        print("tinysiam demo: a Siamese convnet learns to compare handwritten characters on 6 alphabets of Omniglot "
              "(validating on 2 others), then recognises characters of 20 alphabets it never saw from ONE drawing "
              "each: Lake et al.'s 20 runs, 20-way within-alphabet one-shot (chance 5%). Offline: the data ships "
              "inside the package.")
    results = train_run(settings, out, "overwrite" if args.overwrite else "new", progress=not args.quiet,
                        plots=not args.no_plots)
    print()
    if args.demo_data == "digits":
        way = settings["val_way"]
        print(f"held-out digits 5-9, {way}-way one-shot accuracy: {results[f'test_{way}way_1shot_accuracy']:.1%} "
              f"(+- {results['test_1shot_ci95']:.1%}; chance {1 / way:.0%}, nearest neighbour on raw pixels "
              f"{results[f'test_{way}way_1shot_raw_pixels']:.1%}); verification EER {results['test_verification_eer']:.1%}")
    else:
        print(f"Lake's 20 runs, 20-way one-shot: {results['lake_accuracy']:.2%} (+- {results['lake_ci95']:.1%}) after "
              f"{results['training_seconds'] / 60:.1f} minutes of training; baselines on the same runs: Lake's modified "
              f"Hausdorff distance {results['lake_mhd_accuracy']:.2%}, nearest neighbour on raw pixels "
              f"{results['lake_raw_pixels_accuracy']:.2%}; Koch et al.'s convnet (30 alphabets, 105x105) 92.0%, "
              "people 95.5%")
    print(f"{(time.perf_counter() - start) / 60:.1f} minutes in all; plots and checkpoints in {out}/")
    record(args.record, results, start)
    return 0


def fresh_folder(base):
    """``base`` if it holds no run yet, else the first of ``base-2``, ``base-3``, ... that does not exist."""
    from .runs import RunFolder

    candidate, n = base, 1
    while candidate.exists() and RunFolder(candidate).existing_files():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


# ----- k-fold verification ----------------------------------------------------------------------------
def cmd_folds(args, given):
    """``tinysiam folds``: k-fold subject-disjoint verification (the AT&T faces' 8 folds) as one command.

    Fold k (``tinysiam.data.folds.subject_folds``; for the 40 AT&T subjects, 5 test, 5 validation and 30
    training subjects) trains its own run in ``OUT/fold-k`` and scores 2000 balanced pairs of its test
    subjects with the model and with the raw-pixel distance (the same pairs). The command prints each
    fold's EER and AUC and their mean +- sd over the folds, and writes them to ``OUT/folds.json``. A
    stopped protocol continues fold by fold: finished folds are read back, a started one resumes.
    """
    from ..data.folds import subject_folds
    from ..data.splits import load_all_classes
    from ..evaluation.verification import FoldSummary, VerificationResult

    start = time.perf_counter()
    settings = {**recipe_settings(args.recipe), **given} if args.recipe else given
    config = TrainConfig(**settings)
    with blame():  # the messages name --data or the archive
        everything = load_all_classes(config.data, PRESETS[config.preset].input_size, args.data_dir)
    with blame("--folds"):
        folds = subject_folds(everything.classes, args.folds, seed=config.seed)
    out = Path(args.out)
    done = {}
    for fold in folds:
        folder = out / f"fold-{fold.index + 1}"
        done[fold.index] = None if args.overwrite else finished_fold(folder, config)
    model, pixels, val_eers, histories = [], [], [], []
    for fold in folds:
        folder = out / f"fold-{fold.index + 1}"
        results = done[fold.index]
        if results is None:
            print(f"fold {fold.index + 1} of {len(folds)}: {len(fold.train)} training, {len(fold.val)} validation and "
                  f"{len(fold.test)} test subjects", flush=True)
            mode = "overwrite" if args.overwrite else "resume" if (folder / "last.npz").is_file() else "new"
            results = train_run(settings, folder, mode, args.data_dir, progress=not args.quiet,
                                plots=not args.no_plots, split=fold.split(everything))
        model.append(VerificationResult(results["test_verification_eer"], results["test_verification_auc"], 2000))
        pixels.append(VerificationResult(results["test_verification_eer_raw_pixels"],
                                         results["test_verification_auc_raw_pixels"], 2000))
        val_eers.append(results["val_verification_eer"])
        histories.append(results["history"])
        print(f"fold {fold.index + 1}: EER {model[-1].eer:.2%} (AUC {model[-1].auc:.4f}); raw pixels on the same "
              f"pairs: EER {pixels[-1].eer:.2%} (AUC {pixels[-1].auc:.4f}); validation EER {val_eers[-1]:.2%}",
              flush=True)
    model, pixels = FoldSummary(model), FoldSummary(pixels)
    seconds = sum(row["seconds"] for history in histories for row in history)
    print(f"\n{len(folds)} subject-disjoint folds, 2000 test pairs each, {seconds / 60:.1f} minutes of training:\n"
          f"  tinysiam    {model}\n  raw pixels  {pixels}\n"
          f"  (validation subjects: mean EER {np.mean(val_eers):.2%}, what a recipe is chosen by)")
    summary = {"folds": len(folds), "training_seconds": seconds, "model": model.as_dict(),
               "raw_pixels": pixels.as_dict(), "val_eer_mean": float(np.mean(val_eers)), "val_eers": val_eers,
               "config": config.to_dict(), "fold_histories": histories}
    write_json(out / "folds.json", summary)
    record(args.record, summary, start)
    return 0


def finished_fold(folder, config):
    """The results of a fold trained to the end in ``folder`` with ``config``; None if it has none yet.

    A fold trained with other settings is refused: its numbers would not belong to this protocol."""
    path = folder / "results.json"
    if not path.is_file():
        return None
    from .runs import RunFolder

    with blame(str(folder / "best.npz")):  # read as a config: lists as tuples, settings added since at their defaults
        saved = TrainConfig.from_dict(RunFolder(folder).read_meta("best.npz")["config"]).to_dict()
    differ = {name: (saved.get(name), value) for name, value in config.to_dict().items()
              if name != "device" and saved.get(name) != value}
    if differ:
        described = "; ".join(f"{name} was {old!r}, now {new!r}" for name, (old, new) in differ.items())
        raise UserError(f"--out {folder.parent}: {folder.name} was trained with other settings ({described}); "
                        "choose another --out, or --overwrite to start every fold over")
    with blame(str(path)):
        return json.loads(path.read_text())


# ----- evaluation -----------------------------------------------------------------------------------
def cmd_eval(args, given):
    start = time.perf_counter()
    from ..evaluation.held_out import check_way, evaluate_held_out
    from ..evaluation.oneshot import evaluate_lake_runs, load_lake_runs, mhd_scores, pixel_scores
    from .model import load_model

    if (args.checkpoint is None) == (args.baseline is None):
        raise UserError("give exactly one of --checkpoint or --baseline")
    out = Path(args.out) if args.out else None
    if out is not None:
        result_files = [f"eval_{args.protocol}.json"] + ([] if args.protocol == "lake" else
                                                         ["roc.png", "embeddings.png", "one_shot.png"])
        taken = [name for name in result_files if (out / name).exists()]
        if taken and not args.overwrite:
            raise UserError(f"--out {out} already holds {', '.join(taken)}; pass --overwrite to replace them")
    model = config = None
    if args.checkpoint:
        check_device(args.device)
        with blame(f"--checkpoint {args.checkpoint}"):
            model, config = load_model(args.checkpoint, device=args.device)
        data = "omniglot" if args.protocol == "lake" else args.data or config.data
        try:
            check_preset_fits(config.preset, data)
        except ConfigError as error:
            raise UserError(f"--checkpoint {args.checkpoint}: its {error}") from None
    if args.protocol == "lake":
        size = None if model is None else PRESETS[config.preset].input_size
        if args.runs:
            with blame("--runs"):
                runs = load_lake_runs(Path(args.runs), size=size)
        else:
            runs, source = lake_runs(args.data_dir, size)
            print(f"Lake's runs from {source}")
        score_fn = model.similarity if model else {"mhd": mhd_scores, "pixels": pixel_scores}[args.baseline]
        with blame(f"--checkpoint {args.checkpoint}"):
            result = evaluate_lake_runs(runs, score_fn)
        for run, accuracy in zip(runs, result.per_run):
            print(f"{run.name}: {accuracy:.0%}")
        print(f"Lake's 20-way within-alphabet one-shot, {len(runs)} runs: {result}")
        summary = {"protocol": "lake", "per_run": result.per_run, "accuracy": result.accuracy, "error": result.error,
                   "ci95": result.ci95}
    else:
        if model is None:
            raise UserError(f"--protocol {args.protocol} needs --checkpoint (baselines run on --protocol lake)")
        with blame(f"--data {data}"):
            _, _, test = load_split(data, PRESETS[config.preset].input_size, config.seed, args.data_dir)
        if test is None:
            raise UserError(f"--data {data} has no held-out test classes; use --protocol lake")
        if data in STROKES_PROTOCOL_DATA_SETS:
            summary = trajectory_test(model, config.preset, test, args.seed, args.data_dir)
        else:
            with blame():
                check_way(args.way, test, "--way")
            summary = evaluate_held_out(model, test, args.way, seed=args.seed, plot_dir=out)
            print(json.dumps(summary, indent=1))
    if out is not None:
        write_json(out / f"eval_{args.protocol}.json", summary)
    record(args.record, summary, start)
    return 0


def write_json(path, value):
    try:
        write_text_atomic(path, json.dumps(value, indent=1))
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None


def check_device(device):
    try:
        backend.check_device(device)
    except RuntimeError as error:
        raise UserError(f"--device {device}: {error}") from None


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
    demo.add_argument("--data", dest="demo_data", choices=tuple(DEMO_RECIPES), default="omniglot",
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
    train.add_argument("--detect-anomaly", action="store_true",
                       help="name the first operation that makes a NaN or Inf (slower; to find a bug)")
    _add_run_options(train)

    ev = sub.add_parser("eval", help="evaluate a checkpoint or a baseline")
    ev.add_argument("--protocol", choices=("lake", "nway"), default="lake",
                    help="lake: Lake's 20 Omniglot runs; nway: one-shot, ROC and retrieval on held-out classes "
                         "(strokes: verification next to DTW and raw pixels)")
    ev.add_argument("--checkpoint")
    ev.add_argument("--baseline", choices=("mhd", "pixels"))
    ev.add_argument("--runs", help="all_runs.zip or its folder (default: found under --data-dir)")
    ev.add_argument("--data", choices=DATA_SETS, help="(nway) the data set (default: the checkpoint's)")
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
    backend.reuse_freed_memory()  # training allocates the same large temporaries every step
    commands = {"demo": cmd_demo, "train": cmd_train, "eval": cmd_eval, "verify": run_verify,
                "index": run_index, "search": run_search, "folds": cmd_folds}
    try:
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
