"""The command line: ``tinysiam {demo,train,eval,verify,index,search,gradcheck,bench}`` (also ``python -m tinysiam``).

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

from ..data.splits import DATA_SETS, load_split
from ..engine import backend
from ..engine import debug as engine_debug
from ..serialization import write_text_atomic
from .config import LOSSES, OPTIMIZERS, ConfigError, TrainConfig, resume_config
from .errors import UserError, blame
from .presets import PRESETS
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
    "augment": dict(action="store_true", help="Koch et al.'s affine distortions (needed by nt-xent)"),
    "device": dict(choices=backend.DEVICES),
    "seed": dict(type=int),
    "val_way": dict(type=int, help="N of the N-way one-shot validation"),
    "val_episodes": dict(type=int, help="validation episodes per epoch"),
}
# what `tinysiam demo` trains unless told otherwise
DEMO_SETTINGS = dict(data="digits", preset="digits", loss="triplet", epochs=6, steps_per_epoch=60, val_way=5)


# ----- training ------------------------------------------------------------------------------------
def train_run(given, out, mode, data_dir=None, progress=True, plots=True, detect_anomaly=False):
    """Train (or resume) a run into ``out`` from the explicitly ``given`` settings; returns its results dict.

    ``detect_anomaly`` trains inside ``tinysiam.engine.detect_anomaly()``: slower, and it names the first
    operation that makes a NaN or an infinity."""
    from ..evaluation.held_out import check_way, evaluate_held_out, raw_pixel_accuracy
    from .model import load_model
    from .runs import RunFolder
    from .training import Trainer

    run = RunFolder(out)
    run.check(mode)  # fails fast, before the data is loaded; checked again under the folder's lock
    if mode == "resume":
        with blame(f"--resume {run.path / 'last.npz'}"):
            saved = TrainConfig.from_dict(run.read_meta()["config"])
        config, changes = resume_config(saved, given)
    else:
        config, changes = TrainConfig(**given), {}
    check_device(config.device)
    with blame(f"--data {config.data}"):
        train, val, test = load_split(config.data, PRESETS[config.preset].input_size, config.seed, data_dir)
    with blame():
        check_way(config.val_way, val, "--val-way")
    with run.open(mode):
        trainer = Trainer(config, train, val, run, progress=progress)
        if mode == "resume":
            trainer.resume(changes)
            for name, (old, new) in changes.items():
                print(f"resuming with {name} = {new} (was {old})", flush=True)
        print(f"training {config.preset} with the {config.loss} loss on {config.data}: {len(train)} images of "
              f"{len(train.classes)} classes, validating on {len(val)} images of {len(val.classes)} classes", flush=True)
        with engine_debug.detect_anomaly() if detect_anomaly else contextlib.nullcontext():
            trainer.fit()
        summary = {"best_val_accuracy": trainer.best_accuracy, "checkpoint": str(run.path / "best.npz")}
        model, _ = load_model(run.path / "best.npz", device=config.device)
        if test is not None:
            way = min(config.val_way, len(test.classes))
            summary.update(evaluate_held_out(model, test, way, seed=config.seed, plot_dir=run.path if plots else None))
            summary[f"test_{way}way_1shot_raw_pixels"] = raw_pixel_accuracy(test, way, seed=config.seed).accuracy
        elif config.data == "omniglot":  # Omniglot's test is Lake's 20 runs, where they are in the data folder
            summary.update(lake_test(model, config, data_dir))
        if plots:
            from ..evaluation import plots as figures
            from .runs import read_history

            figures.plot_history(read_history(run.path), run.path / "loss.png")
        write_json(run.path / "results.json", summary)
    return summary


def lake_test(model, config, data_dir):
    """The model on Lake's 20 runs next to the two baselines (MHD and raw pixels); {} where the runs are absent."""
    from ..data.splits import ARCHIVES, data_root, find_archives
    from ..evaluation.oneshot import evaluate_lake_runs, load_lake_runs, mhd_scores, pixel_scores

    try:
        path = find_archives(data_root(data_dir), ARCHIVES["lake"], "Lake's runs")[0]
    except FileNotFoundError as error:
        print(f"not tested on Lake's runs: {error}")
        return {}
    with blame(str(path)):
        runs, full_size = load_lake_runs(path, size=PRESETS[config.preset].input_size), load_lake_runs(path)
    result = evaluate_lake_runs(runs, model.similarity)
    print(f"Lake's 20-way within-alphabet one-shot, {len(runs)} runs: {result}")
    return {"lake_accuracy": result.accuracy, "lake_per_run": result.per_run,
            "lake_mhd_accuracy": evaluate_lake_runs(full_size, mhd_scores).accuracy,
            "lake_raw_pixels_accuracy": evaluate_lake_runs(full_size, pixel_scores).accuracy}


def cmd_train(args, given):
    start = time.perf_counter()
    mode = "resume" if args.resume else "overwrite" if args.overwrite else "new"
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
    print("tinysiam demo: a Siamese convnet on scikit-learn's 8x8 digits. Trains on digits 0-4, then "
          "recognises 5-9 from ONE example each (5-way one-shot, chance = 20%).")
    out = Path(args.out) if args.out else fresh_folder(Path("runs") / "demo")
    results = train_run({**DEMO_SETTINGS, **given}, out, "overwrite" if args.overwrite else "new",
                        progress=not args.quiet, plots=not args.no_plots)
    way = DEMO_SETTINGS["val_way"]
    print(f"\nheld-out digits 5-9, {way}-way one-shot accuracy: {results[f'test_{way}way_1shot_accuracy']:.1%} "
          f"(+- {results['test_1shot_ci95']:.1%}; chance {1 / way:.0%}, nearest neighbour on raw pixels "
          f"{results[f'test_{way}way_1shot_raw_pixels']:.1%}); verification EER {results['test_verification_eer']:.1%}")
    print(f"plots and checkpoints in {out}/")
    return 0


def fresh_folder(base):
    """``base`` if it holds no run yet, else the first of ``base-2``, ``base-3``, ... that does not exist."""
    from .runs import RunFolder

    candidate, n = base, 1
    while candidate.exists() and RunFolder(candidate).existing_files():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


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
    if args.protocol == "lake":
        from ..data.splits import ARCHIVES, data_root, find_archives

        size = None if model is None else PRESETS[config.preset].input_size
        if args.runs:
            with blame("--runs"):
                runs = load_lake_runs(Path(args.runs), size=size)
        else:
            with blame():  # the messages name --data-dir or the archive
                runs_path = find_archives(data_root(args.data_dir), ARCHIVES["lake"], "Lake's runs")[0]
            with blame(str(runs_path)):
                runs = load_lake_runs(runs_path, size=size)
        score_fn = model.similarity if model else {"mhd": mhd_scores, "pixels": pixel_scores}[args.baseline]
        with blame(f"--checkpoint {args.checkpoint}"):
            result = evaluate_lake_runs(runs, score_fn)
        for run, accuracy in zip(runs, result.per_run):
            print(f"{run.name}: {accuracy:.0%}")
        print(f"Lake's 20-way within-alphabet one-shot, {len(runs)} runs: {result}")
        summary = {"protocol": "lake", "per_run": result.per_run, "accuracy": result.accuracy, "error": result.error}
    else:
        if model is None:
            raise UserError(f"--protocol {args.protocol} needs --checkpoint (baselines run on --protocol lake)")
        data = args.data or config.data
        with blame(f"--data {data}"):
            _, _, test = load_split(data, PRESETS[config.preset].input_size, config.seed, args.data_dir)
        if test is None:
            raise UserError(f"--data {data} has no held-out test classes; use --protocol lake")
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

    demo = sub.add_parser("demo", help="train and evaluate on scikit-learn's digits (offline, a few seconds)")
    _add_training_options(demo, only=("loss", "epochs", "steps_per_epoch", "lr", "device", "seed"))
    demo.add_argument("--out", help="output folder (default: a new runs/demo[-N])")
    _add_run_options(demo)

    train = sub.add_parser("train", help="train a Siamese network")
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
                    help="lake: Lake's 20 Omniglot runs; nway: one-shot, ROC and retrieval on held-out classes")
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
    given = {name: value for name, value in vars(args).items() if name in TRAINING_OPTIONS}
    backend.reuse_freed_memory()  # training allocates the same large temporaries every step
    commands = {"demo": cmd_demo, "train": cmd_train, "eval": cmd_eval, "verify": run_verify,
                "index": run_index, "search": run_search}
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
