"""The command line: ``tinysiam {demo,train,eval,gradcheck,bench}`` (also ``python -m tinysiam``).

User errors (a missing file, a bad option value) print one line and exit with
status 2; set TINYSIAM_DEBUG=1 to see the traceback.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from ..engine import backend
from .presets import PRESETS

DATA_SETS = ("digits", "omniglot", "faces", "mnist")
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, ImportError, RuntimeError, KeyError, TypeError)


class UserError(Exception):
    """A problem with the command's input, reported without a traceback."""


# ----- data ------------------------------------------------------------------------------------
def data_root(args):
    root = args.data_dir or os.environ.get("TINYSIAM_DATA")
    if root is None:
        raise UserError(f"--data-dir is needed for --data {args.data} (or set TINYSIAM_DATA)")
    root = Path(root)
    if not root.exists():
        raise UserError(f"--data-dir {root} does not exist")
    return root


def _find(root, patterns, what):
    """Files matching the first pattern that matches anything, in root or its data-set folders."""
    for pattern in patterns:
        for folder in (root, root / "omniglot", root / "att_faces", root / "mnist"):
            found = sorted(folder.glob(pattern))
            if found:
                return found
    raise UserError(f"no {what} ({' or '.join(patterns)}) in {root} or its omniglot/, att_faces/, mnist/ folders")


def load_split(args, size):
    """(train, val, test) LabelledImages for ``--data``: test classes are never trained on."""
    from .. import data

    seed = args.seed
    if args.data == "digits":
        everything = data.load_digits()
        train, test = everything.select_classes(np.arange(5)), everything.select_classes(np.arange(5, 10))
        train, val = train.split_items(0.8, seed)  # 10 classes only: validate on unseen images of seen classes
        return _resize(train, size), _resize(val, size), _resize(test, size)
    root = data_root(args)
    if args.data == "omniglot":
        archives = _find(root, ["images_background.zip", "images_background_small*.zip"], "Omniglot background archive")
        train, val = data.load_omniglot(archives, size=size).split_classes(0.85, seed)
        return train, val, None  # Omniglot's test is Lake's runs: tinysiam eval --protocol lake
    if args.data == "faces":
        faces = data.load_att_faces(_find(root, ["att_faces.zip", "att_faces"], "AT&T faces")[0], size=size)
        train, test = faces.split_classes(30, seed)
        train, val = train.split_classes(25, seed)
        return train, val, test
    mnist_dir = _find(root, ["train-images-idx3-ubyte*"], "MNIST idx files")[0].parent
    mnist = data.load_mnist(mnist_dir, "train", size=size)
    train, val = mnist.select_classes(np.arange(5)).split_items(0.9, seed)
    return train, val, data.load_mnist(mnist_dir, "test", size=size).select_classes(np.arange(5, 10))


def _resize(part, size):
    if part.images.shape[2:] == tuple(size):
        return part
    from PIL import Image

    resized = np.stack([np.asarray(Image.fromarray(im[0]).resize((size[1], size[0]), Image.Resampling.BILINEAR))
                        for im in part.images])
    return type(part)(resized[:, None].astype(np.float32), part.labels, part.class_names, part.groups)


# ----- commands -----------------------------------------------------------------------------------
def cmd_train(args):
    from ..data import affine_augment
    from .training import Trainer, TrainConfig

    config = TrainConfig(preset=args.preset, loss=args.loss, optimizer=args.optimizer, lr=args.lr,
                         momentum=args.momentum, weight_decay=args.weight_decay, epochs=args.epochs,
                         steps_per_epoch=args.steps_per_epoch, batch=args.batch, margin=args.margin,
                         augment=args.augment, device=args.device, seed=args.seed, val_way=args.val_way,
                         val_episodes=args.val_episodes)
    out = Path(args.out)
    if (out / "last.npz").exists() and not (args.resume or args.overwrite):
        raise UserError(f"{out} already holds a checkpoint; pass --resume to continue it or --overwrite to start over")
    train, val, test = load_split(args, PRESETS[args.preset].input_size)
    trainer = Trainer(config, train, val, out, augment_fn=affine_augment if args.augment else None,
                      progress=not args.quiet)
    if args.resume:
        trainer.resume()
    print(f"training {args.preset} with the {args.loss} loss on {args.data}: {len(train)} images of "
          f"{len(train.classes)} classes, validating on {len(val)} images of {len(val.classes)} classes")
    trainer.fit()
    summary = {"best_val_accuracy": trainer.best_accuracy, "checkpoint": str(out / "best.npz")}
    if test is not None:
        from .training import load_model

        model, _ = load_model(out / "best.npz", device=args.device)
        summary.update(evaluate_held_out(model, test, args, plot_dir=None if args.no_plots else out))
    if not args.no_plots:
        from ..evaluation import plots
        from .training import read_history

        plots.plot_history(read_history(out), out / "loss.png")
    _write_json(out / "results.json", summary)
    print(json.dumps(summary, indent=1))
    return 0


def evaluate_held_out(model, test, args, plot_dir=None):
    """One-shot accuracy, verification ROC and retrieval on classes never trained on; plots into ``plot_dir``."""
    from ..evaluation import metrics

    way = min(args.val_way, len(test.classes))
    if model.head is None:
        embeddings = backend.to_numpy(model.embed(test.images))
        one_shot = metrics.n_way_k_shot_accuracy(embeddings, test.labels, way, 1, n_episodes=500, seed=args.seed)
    else:
        embeddings = None
        one_shot = metrics.n_way_k_shot_accuracy(test.images, test.labels, way, 1, n_episodes=200, seed=args.seed,
                                                 score_fn=model.similarity)
    from ..siamese.mining import PairSampler

    left, right, same = PairSampler(test.labels, seed=args.seed).sample(2000)
    scores = model.pair_scores(test.images[left], test.images[right])
    fpr, tpr, _ = metrics.roc_curve(scores, same)
    auc, (eer, _) = metrics.auc(fpr, tpr), metrics.equal_error_rate(scores, same)
    result = {f"test_{way}way_1shot_accuracy": one_shot.accuracy, "test_1shot_ci95": one_shot.ci95,
              "test_classes": len(test.classes), "test_verification_auc": auc, "test_verification_eer": eer}
    if embeddings is not None:
        result["test_precision_at_1"] = metrics.precision_at_1(embeddings, test.labels)
    if plot_dir is not None:
        from ..evaluation import plots

        plots.plot_roc(fpr, tpr, plot_dir / "roc.png", auc=auc, eer=eer)
        if embeddings is not None:
            plots.plot_embeddings_2d(embeddings, test.labels, plot_dir / "embeddings.png", test.class_names)
        support, query = metrics.sample_episodes(test.labels, way, 1, 1, 1, seed=args.seed)[0]
        sims = model.similarity(test.images[query[:1, 0]], test.images[support[:, 0]])[0]
        plots.plot_one_shot(test.images[query[0, 0]], test.images[support[:, 0]], int(np.argmax(sims)), 0,
                            plot_dir / "one_shot.png")
    return result


def cmd_demo(args):
    args.data, args.data_dir, args.resume, args.overwrite = "digits", None, False, True
    args.preset, args.optimizer, args.momentum, args.weight_decay = "digits", "adam", 0.9, 0.0
    args.batch, args.margin, args.augment, args.val_way, args.val_episodes = 64, 1.0, False, 5, 200
    print("tinysiam demo: a Siamese convnet on scikit-learn's 8x8 digits. Trains on digits 0-4, then "
          "recognises 5-9 from ONE example each (5-way one-shot, chance = 20%).")
    code = cmd_train(args)
    results = json.loads((Path(args.out) / "results.json").read_text())
    from ..evaluation import metrics

    _, _, test = load_split(args, PRESETS["digits"].input_size)
    pixels = metrics.n_way_k_shot_accuracy(test.images.reshape(len(test), -1), test.labels, 5, 1, n_episodes=500,
                                           seed=args.seed)
    print(f"\nheld-out digits 5-9, 5-way one-shot accuracy: {results['test_5way_1shot_accuracy']:.1%} "
          f"(+- {results['test_1shot_ci95']:.1%}; chance 20%, nearest neighbour on raw pixels {pixels.accuracy:.1%}); "
          f"verification EER {results['test_verification_eer']:.1%}")
    print(f"plots and checkpoints in {args.out}/")
    return code


def cmd_eval(args):
    from ..evaluation.oneshot import evaluate_lake_runs, load_lake_runs, mhd_scores, pixel_scores

    if (args.checkpoint is None) == (args.baseline is None):
        raise UserError("give exactly one of --checkpoint or --baseline")
    model = None
    if args.checkpoint:
        from .training import load_model

        model, config = load_model(args.checkpoint, device=args.device)
    if args.protocol == "lake":
        runs_path = Path(args.runs) if args.runs else _find(data_root(args), ["all_runs.zip", "all_runs"], "Lake's runs")[0]
        size = None if model is None else PRESETS[config.preset].input_size
        runs = load_lake_runs(runs_path, size=size)
        score_fn = model.similarity if model else {"mhd": mhd_scores, "pixels": pixel_scores}[args.baseline]
        result = evaluate_lake_runs(runs, score_fn)
        for run, accuracy in zip(runs, result.per_run):
            print(f"{run.name}: {accuracy:.0%}")
        print(f"Lake's 20-way within-alphabet one-shot, {len(runs)} runs: {result}")
        summary = {"protocol": "lake", "per_run": result.per_run, "accuracy": result.accuracy, "error": result.error}
    else:
        if model is None:
            raise UserError(f"--protocol {args.protocol} needs --checkpoint (baselines run on --protocol lake)")
        args.data = args.data or "digits"
        args.val_way = args.way
        _, _, test = load_split(args, PRESETS[config.preset].input_size)
        if test is None:
            raise UserError(f"--data {args.data} has no held-out test classes; use --protocol lake")
        summary = evaluate_held_out(model, test, args, plot_dir=Path(args.out) if args.out else None)
        print(json.dumps(summary, indent=1))
    if args.out:
        _write_json(Path(args.out) / f"eval_{args.protocol}.json", summary)
    return 0


def _write_json(path, value):
    from ..serialization import write_text_atomic

    write_text_atomic(path, json.dumps(value, indent=1))


# ----- argument parsing --------------------------------------------------------------------------------
def _training_options(p, epochs, steps, loss):
    p.add_argument("--loss", choices=("contrastive", "contrastive-linear", "triplet", "koch"), default=loss)
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--steps-per-epoch", type=int, default=steps)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--device", choices=backend.DEVICES, default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-plots", action="store_true")


def build_parser():
    parser = argparse.ArgumentParser(prog="tinysiam", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train and evaluate on scikit-learn's digits (offline, a few seconds)")
    _training_options(demo, epochs=6, steps=60, loss="triplet")
    demo.add_argument("--out", default="runs/demo")

    train = sub.add_parser("train", help="train a Siamese network")
    train.add_argument("--data", choices=DATA_SETS, default="digits")
    train.add_argument("--data-dir", help="folder with the data set's archives (default: $TINYSIAM_DATA)")
    train.add_argument("--preset", choices=sorted(PRESETS), default="digits")
    _training_options(train, epochs=10, steps=100, loss="contrastive")
    train.add_argument("--optimizer", choices=("sgd", "adam"), default="adam")
    train.add_argument("--momentum", type=float, default=0.9)
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--batch", type=int, default=64, help="pairs per step (images per step for triplet)")
    train.add_argument("--margin", type=float, default=1.0)
    train.add_argument("--augment", action="store_true", help="Koch et al.'s affine distortions")
    train.add_argument("--val-way", type=int, default=5)
    train.add_argument("--val-episodes", type=int, default=200)
    train.add_argument("--out", required=True, help="output folder for checkpoints, logs and plots")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.npz")
    train.add_argument("--overwrite", action="store_true", help="start over in an OUT that holds a checkpoint")

    ev = sub.add_parser("eval", help="evaluate a checkpoint or a baseline")
    ev.add_argument("--protocol", choices=("lake", "nway"), default="lake",
                    help="lake: Lake's 20 Omniglot runs; nway: one-shot, ROC and retrieval on held-out classes")
    ev.add_argument("--checkpoint")
    ev.add_argument("--baseline", choices=("mhd", "pixels"))
    ev.add_argument("--runs", help="all_runs.zip or its folder (default: found under --data-dir)")
    ev.add_argument("--data", choices=DATA_SETS)
    ev.add_argument("--data-dir")
    ev.add_argument("--way", type=int, default=5)
    ev.add_argument("--device", choices=backend.DEVICES, default="cpu")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--out", help="folder for the JSON result and plots")

    sub.add_parser("gradcheck", help="run the gradient-check catalogue", add_help=False)
    sub.add_parser("bench", help="benchmarks against PyTorch and DeZero", add_help=False)
    return parser


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


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "gradcheck":  # these parse their own options
        from .catalogue import main as gradcheck_main

        return gradcheck_main(argv[1:])
    if argv and argv[0] == "bench":
        return run_benchmarks(argv[1:])
    args = build_parser().parse_args(argv)
    backend.reuse_freed_memory()  # training allocates the same large temporaries every step
    commands = {"demo": cmd_demo, "train": cmd_train, "eval": cmd_eval}
    try:
        if getattr(args, "device", "cpu") == "gpu":
            backend.check_device("gpu")
        return commands[args.command](args)
    except KeyboardInterrupt:
        print("\ninterrupted: the last checkpoint was saved; continue with --resume", file=sys.stderr)
        return 130
    except (UserError, *USER_ERRORS) as e:
        if os.environ.get("TINYSIAM_DEBUG"):
            raise
        print(f"tinysiam: error: {e}", file=sys.stderr)
        return 2
