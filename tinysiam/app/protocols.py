"""The protocols behind the command line: train (then test as the data set says), the demo, k folds, evaluation.

Each function takes plain values (the command line parses them in ``cli.py``) and
returns the results it printed, so a script can run a protocol without argparse.
How a data set is tested comes from its entry in ``tinysiam.data.registry``:
``lake`` (Lake's 20 runs), ``held-out`` (one-shot, verification and retrieval on
held-out classes) or ``trajectories`` (verification of pen trajectories next to
DTW). Problems with the user's files and values become ``UserError``s naming the
option; anything else keeps its traceback.
"""
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..data.omniglot_protocols import with_rotations
from ..data.registry import data_set
from ..engine import backend
from ..engine import debug as engine_debug
from ..evaluation.metrics import NonFiniteScores
from ..serialization import write_text_atomic
from .checkpoints import read_training_checkpoint
from .config import ConfigError, TrainConfig, check_preset_fits, resume_config
from .errors import UserError, blame
from .presets import PRESETS
from .recipes import recipe_settings

# what `tinysiam demo --data D` trains
DEMO_RECIPES = {"omniglot": "omniglot-demo", "digits": "digits-demo"}
VERIFICATION_PAIRS = 2000  # test pairs of the held-out and trajectory protocols


# ----- training ------------------------------------------------------------------------------------
def train_run(given, out, mode, data_dir=None, progress=True, plots=True, detect_anomaly=False, split=None,
              keep_epochs=False, run_test=True):
    """Train (or resume) a run into ``out`` from the explicitly ``given`` settings, then test it as its data
    set says (``run_test=False``: not at all, for choosing settings on validation); returns its results dict
    (also written to ``out/results.json``).

    ``mode`` is "new", "resume" or "overwrite" (``runs.RunFolder``). ``detect_anomaly`` trains inside
    ``tinysiam.engine.detect_anomaly()``: slower, and it names the first operation that makes a NaN or an
    infinity. ``split`` (train, val, test) replaces the data set's own split (``folds`` passes each fold's).
    ``keep_epochs`` keeps every epoch's checkpoint; a run tested on Lake's runs then also scores each of them
    there (``lake_curve``: for plots of accuracy against minutes, never for choosing).
    """
    from ..evaluation.held_out import check_way
    from .model import load_model
    from .runs import RunFolder
    from .training import Trainer, validation_groups

    run = RunFolder(out)
    run.check(mode)  # fails fast, before the data is loaded; checked again under the folder's lock
    if mode == "resume":
        with blame(f"--resume {run.path / 'last.npz'}"):
            saved = read_training_checkpoint(run.path / "last.npz", device=None)
            saved.progress()  # refused here, before the data is loaded, if it cannot be resumed
        config, changes = resume_config(saved.config, given)
    else:
        config, changes = TrainConfig(**given), {}
    check_device(config.device)
    if split is None:
        with blame(f"--data {config.data}"):
            split = data_set(config.data).load_split(PRESETS[config.preset].input_size, config.seed, data_dir,
                                                     config.val_split)
    train, val, test = split
    if config.rotations:  # validation and test classes stay as drawn
        train = with_rotations(train)
    if config.loss != "relatedness":  # validated by one-shot episodes
        with blame():  # the messages name --val-way
            check_way(config.val_way, val, "--val-way")
            validation_groups(config, val)
    with run.open(mode):
        trainer = Trainer(config, train, val, run, progress=progress, keep_epochs=keep_epochs)
        if mode == "resume":
            with blame(f"--resume {run.path / 'last.npz'}"):  # weights or optimizer state that do not fit
                trainer.resume(changes)
            for name, (old, new) in changes.items():
                print(f"resuming with {name} = {new} (was {old})", flush=True)
        print(f"training {config.preset} with the {config.loss} loss on {config.data}: {described(train)}, "
              f"validating on {described(val)}", flush=True)
        with engine_debug.detect_anomaly() if detect_anomaly else contextlib.nullcontext():
            trainer.fit()
        with blame():  # names --data-dir
            sources = data_set(config.data).sources(data_dir)
        calibration = run.read_meta("best.npz").get("calibration")
        summary = {"data": config.data, "archives": checksums(sources),
                   "best_val_accuracy": trainer.best_accuracy, "checkpoint": str(run.path / "best.npz"),
                   "val_verification_eer": calibration and calibration["eer"],
                   "training_seconds": sum(row["seconds"] for row in trainer.history), "history": trainer.history}
        if run_test:
            protocol = data_set(config.data).test
            model, _ = load_model(run.path / "best.npz", device=config.device)
            last = load_model(run.path / "last.npz", device=config.device)[0] if protocol == "lake" \
                else None  # Lake's runs score the last checkpoint too
            way = min(config.val_way, len(test.classes)) if protocol == "held-out" else config.val_way
            summary.update(test_run(model, config.preset, config.data, test, way, config.seed, data_dir,
                                    plot_dir=run.path if plots else None, last=last))
            if keep_epochs and last is not None:
                summary["lake_curve"] = lake_curve(run.path, config.preset, trainer.history, data_dir, config.device)
        else:
            summary["test"] = "not run (--no-test): test the chosen checkpoint once with tinysiam eval"
        if plots:
            from ..evaluation import plots as figures
            from .runs import read_history

            figures.plot_history(read_history(run.path), run.path / "loss.png")
        write_json(run.path / "results.json", summary)
    return summary


def described(part):
    """"721 images of 5 classes", "4500 sentence pairs": what a part of a split holds."""
    classes = f" of {len(part.classes)} classes" if hasattr(part, "classes") else ""
    return f"{len(part)} {part.item_name}{classes}"


def test_run(model, preset, data, test, way, seed, data_dir=None, plot_dir=None, last=None):
    """The test protocol of ``data`` (the registry's) on ``model``, whose tower is ``preset``: a dict of
    results, printed too.

    ``test`` is the split's test part (None for Lake's runs, which are read from the data folder or the
    bundle); ``way`` is N of the held-out N-way one-shot test; ``seed`` draws its episodes and pairs;
    ``last``, the last checkpoint's model, is scored on Lake's runs too.
    """
    from ..evaluation.held_out import check_way, evaluate_held_out, raw_pixel_accuracy

    protocol = data_set(data).test
    if protocol == "lake":
        return lake_test(model, preset, data_dir, last=last, plot_dir=plot_dir)
    if protocol == "trajectories":
        return trajectory_test(model, preset, test, seed, data_dir)
    if protocol == "few-shot":
        return few_shot_test(model, test, seed)
    if protocol == "relatedness":
        return relatedness_test(model, data_set(data).load_split(None, seed, data_dir)[0], test)
    with blame():  # the message names --way
        check_way(way, test, "--way")
    summary = evaluate_held_out(model, test, way, seed=seed, pairs=VERIFICATION_PAIRS, plot_dir=plot_dir)
    summary[f"test_{way}way_1shot_raw_pixels"] = raw_pixel_accuracy(test, way, seed=seed).accuracy
    return summary


# the published figures on SICK's test pairs (Pearson's r), all with pretrained word vectors
RELATEDNESS_REFERENCES = ("a GloVe-averaging Siamese net 0.62, a GloVe CNN Siamese net 0.76, Tai et al.'s LSTM "
                          "0.853 (their dependency Tree-LSTM 0.868), Mueller & Thyagarajan's MaLSTM 0.882")


def relatedness_test(model, train, test):
    """The model's relatedness of the ``test`` pairs (SickPairs) against their gold scores, next to the TF-IDF,
    word-count and word-overlap baselines (fitted on the ``train`` sentences alone) and the published figures;
    prints the table, returns the results."""
    from ..evaluation.relatedness import evaluate_baselines, relatedness_metrics

    results = {"model": relatedness_metrics(model.pair_scores(test.sentences_a, test.sentences_b), test.scores),
               **evaluate_baselines(train, test, tokenizer=None)}
    names = {"model": "tinysiam, trained", "tfidf": "TF-IDF cosine", "bow": "word-count cosine",
             "jaccard": "word-overlap Jaccard"}
    print(f"relatedness of the {len(test.scores)} test pairs (gold: mean of human scores, 1-5):")
    for kind, metrics in results.items():
        print(f"  {names[kind]:20s} Pearson's r {metrics['pearson']:.4f}   Spearman's rho {metrics['spearman']:.4f}"
              f"   MSE {metrics['mse']:.4f}")
    print(f"  published, with pretrained word vectors: {RELATEDNESS_REFERENCES}")
    return {"test_pairs": len(test.scores), **{f"test_{kind}": metrics for kind, metrics in results.items()}}


# the published figures on Vinyals et al.'s split (28x28, rotations as classes), by (way, shot)
FEW_SHOT_REFERENCES = {
    (5, 1): "Matching Nets 98.1%, ProtoNets 98.8%, MAML 98.7%, Relation Network 99.6%",
    (5, 5): "Matching Nets 98.9%, ProtoNets 99.7%, MAML 99.9%, Relation Network 99.8%",
    (20, 1): "Matching Nets 93.8%, ProtoNets 96.0%, MAML 95.8%, Relation Network 97.6%",
    (20, 5): "Matching Nets 98.5%, ProtoNets 98.9%, MAML 98.9%, Relation Network 99.1%",
}


def few_shot_test(model, test, seed):
    """N-way K-shot episodes over the test classes (5/20-way, 1/5-shot, 1,000 each, seeded), the model next to
    raw pixels on the same episodes and the published figures; prints the table, returns the results."""
    from ..evaluation.fewshot import RawPixels, few_shot_table

    model_table, pixel_table = few_shot_table(model, test, seed=seed), few_shot_table(RawPixels(), test, seed=seed)
    print(f"few-shot episodes over {model_table.classes} test classes, {model_table.n_query} queries per class "
          f"(seed {seed}):")
    for (way, shot), result in model_table.results.items():
        print(f"  {way:2d}-way {shot}-shot: {result}; raw pixels {pixel_table.results[way, shot].accuracy:.2%}; "
              f"published: {FEW_SHOT_REFERENCES[way, shot]}")
    return {"test_few_shot": model_table.as_dict(), "test_few_shot_raw_pixels": pixel_table.as_dict()}


def trajectory_test(model, preset, test, seed, data_dir):
    """The model (its tower the ``preset``) on seeded verification pairs of the test alphabets' pen
    trajectories (an image preset: of their drawings' images), next to DTW on the same trajectories and raw
    pixels of the same drawings (their images, from the data folder); prints the three, returns the results."""
    from ..data.splits import drawing_images
    from ..evaluation.held_out import TRAJECTORY_PIXEL_SIZE, evaluate_trajectories

    with blame():  # names --data-dir or the archive
        images = drawing_images(test.names, TRAJECTORY_PIXEL_SIZE, data_dir)
        model_images = None if PRESETS[preset].items == "sequences" else \
            drawing_images(test.names, PRESETS[preset].input_size, data_dir)
    result = evaluate_trajectories(model, test, images, pairs=VERIFICATION_PAIRS, seed=seed, model_images=model_images)
    height, width = TRAJECTORY_PIXEL_SIZE
    print(f"verification on the held-out alphabets {', '.join(result['test_alphabets'])} "
          f"({result['test_classes']} characters): {result['test_pairs']} pairs (seed {seed}), half of one "
          "character, half of two characters of one alphabet")
    for name, suffix in ((f"{preset}, trained", ""), ("DTW on position and direction", "_dtw"),
                         (f"raw pixels at {height}x{width}", "_raw_pixels")):
        print(f"  {name:32s} AUC {result['test_verification_auc' + suffix]:.3f}   "
              f"EER {result['test_verification_eer' + suffix]:.1%}")
    return result


_LAKE_BASELINES = {}  # where Lake's runs came from -> the baselines' accuracies on them


# the published figures on Lake's 20 runs, all trained on the 30 background alphabets
LAKE_REFERENCES = ("Koch et al. 2015 92.0%; Lake et al. 2015: a ConvNet 86.5%, people 95.5%, Bayesian Program Learning "
                   "96.7%; ARC (Shyam et al. 2017) 98.5%")


def lake_test(model, preset, data_dir, last=None, plot_dir=None):
    """The model (the best checkpoint's; also ``last``, the last one's) on Lake's 20 runs next to the two
    baselines (MHD and raw pixels); with ``plot_dir``, a one-shot figure and the embeddings of the first run."""
    from ..evaluation.oneshot import evaluate_lake_runs, mhd_scores, pixel_scores

    runs, source = lake_runs(data_dir, size=PRESETS[preset].input_size)
    result = score_lake_runs(runs, model.similarity)
    print(f"Lake's 20-way within-alphabet one-shot, {len(runs)} runs ({source}): {result}")
    if source not in _LAKE_BASELINES:  # the same for every model: computed once per process (MHD takes seconds)
        full_size, _ = lake_runs(data_dir)
        _LAKE_BASELINES[source] = {"lake_mhd_accuracy": evaluate_lake_runs(full_size, mhd_scores).accuracy,
                                   "lake_raw_pixels_accuracy": evaluate_lake_runs(full_size, pixel_scores).accuracy}
    baselines = _LAKE_BASELINES[source]
    print(f"  baselines on the same runs: modified Hausdorff distance {baselines['lake_mhd_accuracy']:.2%}, raw pixels "
          f"{baselines['lake_raw_pixels_accuracy']:.2%}; published: {LAKE_REFERENCES}")
    summary = {"lake_runs": source, "lake_runs_sha256": checksums([source]).get(source),
               "lake_accuracy": result.accuracy, "lake_ci95": result.ci95, "lake_per_run": result.per_run, **baselines}
    if last is not None:
        summary["lake_accuracy_last"] = score_lake_runs(runs, last.similarity).accuracy
    if plot_dir is not None:
        plot_lake_run(model, runs[0], plot_dir)
    return summary


def lake_curve(folder, preset, history, data_dir, device="cpu"):
    """Lake's runs accuracy of each epoch's checkpoint (``epoch-NNN.npz`` in ``folder``) against the minutes of
    training up to its end: [{"epoch", "minutes", "lake_accuracy"}]."""
    from .model import load_model

    runs, _ = lake_runs(data_dir, size=PRESETS[preset].input_size)
    minutes = np.cumsum([row["seconds"] for row in history]) / 60
    return [{"epoch": row["epoch"], "minutes": float(minutes[i]),
             "lake_accuracy": score_lake_runs(runs, load_model(folder / f"epoch-{row['epoch']:03d}.npz", device)[0]
                                              .similarity).accuracy}
            for i, row in enumerate(history) if (folder / f"epoch-{row['epoch']:03d}.npz").is_file()]


def score_lake_runs(runs, score_fn):
    """``evaluate_lake_runs``; a model whose scores are NaN or Inf is a UserError (its weights diverged)."""
    from ..evaluation.oneshot import evaluate_lake_runs

    try:
        return evaluate_lake_runs(runs, score_fn)
    except NonFiniteScores as error:
        raise UserError(f"--checkpoint: {error}") from None


def lake_runs(data_dir=None, size=None):
    """(Lake's 20 runs at ``size``, where they come from): ``all_runs.zip`` of the data folder (--data-dir or
    $TINYSIAM_DATA) when it holds one, else the demo bundle, which holds the same images; the second names which,
    for the printed results and the record."""
    from ..data import load_demo_runs
    from ..data.splits import LAKE_ARCHIVES, data_root, find_archives
    from ..evaluation.oneshot import load_lake_runs

    path = None
    if data_dir or os.environ.get("TINYSIAM_DATA"):
        with blame():  # names --data-dir
            root = data_root(data_dir)
        with contextlib.suppress(FileNotFoundError):
            path = find_archives(root, LAKE_ARCHIVES, "Lake's runs")[0]
    if path is None:
        return load_demo_runs(size), ("the demo bundle's copy of all_runs.zip (no all_runs.zip in --data-dir or "
                                      "$TINYSIAM_DATA)")
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


# ----- the demo ------------------------------------------------------------------------------------
def demo(data, given, out=None, overwrite=False, progress=True, plots=True):
    """``tinysiam demo``: the recipe ``DEMO_RECIPES[data]`` (with the ``given`` settings on top) trained into
    ``out`` (default: a fresh ``runs/demo[-N]``), tested, and summarised next to its baselines."""
    start = time.perf_counter()
    out = Path(out) if out else fresh_folder(Path("runs") / "demo")
    settings = {**recipe_settings(DEMO_RECIPES[data]), **given}
    lake = data_set(settings["data"]).test == "lake"
    if lake:
        print("tinysiam demo: a Siamese convnet learns to compare handwritten characters on 6 alphabets of Omniglot "
              "(validating on 2 others), then recognises characters of 20 alphabets it never saw from ONE drawing "
              "each: Lake et al.'s 20 runs, 20-way within-alphabet one-shot (chance 5%). Offline: the data ships "
              "inside the package.")
    else:
        print("tinysiam demo: a Siamese convnet on scikit-learn's 8x8 digits. Trains on digits 0-4, then "
              "recognises 5-9 from ONE example each (5-way one-shot, chance = 20%).")
    results = train_run(settings, out, "overwrite" if overwrite else "new", progress=progress, plots=plots)
    print()
    if lake:
        print(f"Lake's 20 runs, 20-way one-shot: {results['lake_accuracy']:.2%} (+- {results['lake_ci95']:.1%}) after "
              f"{results['training_seconds'] / 60:.1f} minutes of training; baselines on the same runs: Lake's "
              f"modified Hausdorff distance {results['lake_mhd_accuracy']:.2%}, nearest neighbour on raw pixels "
              f"{results['lake_raw_pixels_accuracy']:.2%}; Koch et al.'s convnet (30 alphabets, 105x105) 92.0%, "
              "people 95.5%")
    else:
        way = TrainConfig(**settings).val_way
        print(f"held-out digits 5-9, {way}-way one-shot accuracy: {results[f'test_{way}way_1shot_accuracy']:.1%} "
              f"(+- {results['test_1shot_ci95']:.1%}; chance {1 / way:.0%}, nearest neighbour on raw pixels "
              f"{results[f'test_{way}way_1shot_raw_pixels']:.1%}); verification EER "
              f"{results['test_verification_eer']:.1%}")
    print(f"{(time.perf_counter() - start) / 60:.1f} minutes in all; plots and checkpoints in {out}/")
    return results


def fresh_folder(base):
    """``base`` if it holds no run yet, else the first of ``base-2``, ``base-3``, ... that does not exist."""
    from .runs import RunFolder

    candidate, n = base, 1
    while candidate.exists() and RunFolder(candidate).existing_files():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


# ----- k-fold verification ----------------------------------------------------------------------------
def folds(settings, n_folds, out, data_dir=None, overwrite=False, progress=True, plots=True):
    """``tinysiam folds``: k-fold subject-disjoint verification (the AT&T faces' 8 folds) as one protocol.

    Fold k (``tinysiam.data.folds.subject_folds``; for the 40 AT&T subjects, 5 test, 5 validation and 30
    training subjects) trains its own run in ``out/fold-k`` and scores 2000 balanced pairs of its test
    subjects with the model and with the raw-pixel distance (the same pairs). Prints each fold's EER and
    AUC and their mean +- sd over the folds, writes them to ``out/folds.json`` and returns them. A stopped
    protocol continues fold by fold: finished folds are read back, a started one resumes.
    """
    from ..data.folds import subject_folds
    from ..evaluation.verification import FoldSummary, VerificationResult

    config = TrainConfig(**settings)
    with blame():  # the messages name --data or the archive
        everything = data_set(config.data).load_all_classes(PRESETS[config.preset].input_size, data_dir)
    with blame("--folds"):
        all_folds = subject_folds(everything.classes, n_folds, seed=config.seed)
    out = Path(out)
    folders = {fold.index: out / f"fold-{fold.index + 1}" for fold in all_folds}
    done = {fold.index: None if overwrite else finished_fold(folders[fold.index], config) for fold in all_folds}
    model, pixels, val_eers, histories = [], [], [], []
    for fold in all_folds:
        folder, results = folders[fold.index], done[fold.index]
        if results is None:
            print(f"fold {fold.index + 1} of {len(all_folds)}: {len(fold.train)} training, {len(fold.val)} "
                  f"validation and {len(fold.test)} test subjects", flush=True)
            mode = "overwrite" if overwrite else "resume" if (folder / "last.npz").is_file() else "new"
            results = train_run(settings, folder, mode, data_dir, progress=progress, plots=plots,
                                split=fold.split(everything))
        model.append(VerificationResult(results["test_verification_eer"], results["test_verification_auc"],
                                        VERIFICATION_PAIRS))
        pixels.append(VerificationResult(results["test_verification_eer_raw_pixels"],
                                         results["test_verification_auc_raw_pixels"], VERIFICATION_PAIRS))
        val_eers.append(results["val_verification_eer"])
        histories.append(results["history"])
        print(f"fold {fold.index + 1}: EER {model[-1].eer:.2%} (AUC {model[-1].auc:.4f}); raw pixels on the same "
              f"pairs: EER {pixels[-1].eer:.2%} (AUC {pixels[-1].auc:.4f}); validation EER {val_eers[-1]:.2%}",
              flush=True)
    model, pixels = FoldSummary(model), FoldSummary(pixels)
    seconds = sum(row["seconds"] for history in histories for row in history)
    print(f"\n{len(all_folds)} subject-disjoint folds, {VERIFICATION_PAIRS} test pairs each, {seconds / 60:.1f} "
          f"minutes of training:\n  tinysiam    {model}\n  raw pixels  {pixels}\n"
          f"  (validation subjects: mean EER {np.mean(val_eers):.2%}, what a recipe is chosen by)")
    summary = {"folds": len(all_folds), "training_seconds": seconds, "model": model.as_dict(),
               "raw_pixels": pixels.as_dict(), "val_eer_mean": float(np.mean(val_eers)), "val_eers": val_eers,
               "config": config.to_dict(), "fold_histories": histories}
    write_json(out / "folds.json", summary)
    return summary


def finished_fold(folder, config):
    """The results of a fold trained to the end in ``folder`` with ``config``; None if it has none yet.

    A fold trained with other settings is refused: its numbers would not belong to this protocol."""
    path = folder / "results.json"
    if not path.is_file():
        return None
    with blame(str(folder / "best.npz")):  # read as a config: lists as tuples, settings added since at their defaults
        saved = read_training_checkpoint(folder / "best.npz").config.to_dict()
    differ = {name: (saved.get(name), value) for name, value in config.to_dict().items()
              if name != "device" and saved.get(name) != value}
    if differ:
        described = "; ".join(f"{name} was {old!r}, now {new!r}" for name, (old, new) in differ.items())
        raise UserError(f"--out {folder.parent}: {folder.name} was trained with other settings ({described}); "
                        "choose another --out, or --overwrite to start every fold over")
    with blame(str(path)):
        return json.loads(path.read_text())


# ----- evaluation -----------------------------------------------------------------------------------
EVAL_PROTOCOLS = ("lake", "nway", "vinyals")


def evaluate(protocol="lake", checkpoint=None, baseline=None, runs=None, data=None, data_dir=None, way=5,
             device="cpu", seed=0, out=None, overwrite=False):
    """``tinysiam eval``: a checkpoint, or a baseline (``mhd``, ``pixels``), on Lake's runs (``protocol="lake"``),
    or a checkpoint on the held-out test of ``data`` (default: its own; ``protocol="nway"``: the registry's
    held-out, trajectory or few-shot protocol; ``protocol="vinyals"``: ``data="vinyals"``, its few-shot
    episodes). Writes ``out/eval_PROTOCOL.json`` (and figures) when ``out`` is given."""
    if protocol == "vinyals":
        protocol, data = "nway", "vinyals"
    from ..evaluation.oneshot import load_lake_runs, mhd_scores, pixel_scores
    from .model import load_model

    if (checkpoint is None) == (baseline is None):
        raise UserError("give exactly one of --checkpoint or --baseline")
    out = Path(out) if out else None
    if out is not None:
        result_files = [f"eval_{protocol}.json"] + ([] if protocol == "lake" else
                                                    ["roc.png", "embeddings.png", "one_shot.png"])
        taken = [name for name in result_files if (out / name).exists()]
        if taken and not overwrite:
            raise UserError(f"--out {out} already holds {', '.join(taken)}; pass --overwrite to replace them")
    model = config = None
    if checkpoint:
        check_device(device)
        with blame(f"--checkpoint {checkpoint}"):
            model, config = load_model(checkpoint, device=device)
        data = "omniglot" if protocol == "lake" else data or config.data
        try:
            check_preset_fits(config.preset, data)
        except ConfigError as error:
            raise UserError(f"--checkpoint {checkpoint}: its {error}") from None
    if protocol == "lake":
        size = None if model is None else PRESETS[config.preset].input_size
        if runs:
            with blame("--runs"):
                lake, source = load_lake_runs(Path(runs), size=size), str(runs)
        else:
            lake, source = lake_runs(data_dir, size)
        print(f"Lake's runs from {source}")
        result = score_lake_runs(lake, model.similarity if model else {"mhd": mhd_scores,
                                                                      "pixels": pixel_scores}[baseline])
        for run, accuracy in zip(lake, result.per_run):
            print(f"{run.name}: {accuracy:.0%}")
        print(f"Lake's 20-way within-alphabet one-shot, {len(lake)} runs: {result}")
        summary = {"protocol": "lake", "runs": source, "per_run": result.per_run, "accuracy": result.accuracy,
                   "error": result.error, "ci95": result.ci95}
    else:
        if model is None:
            raise UserError(f"--protocol {protocol} needs --checkpoint (baselines run on --protocol lake)")
        if data_set(data).test == "lake":
            raise UserError(f"--data {data} is tested on Lake's runs; use --protocol lake")
        with blame(f"--data {data}"):
            _, _, test = data_set(data).load_split(PRESETS[config.preset].input_size, config.seed, data_dir)
        summary = test_run(model, config.preset, data, test, way, seed, data_dir, plot_dir=out)
        print(json.dumps(summary, indent=1))
    if out is not None:
        write_json(out / f"eval_{protocol}.json", summary)
    return summary


# ----- shared by the protocols -----------------------------------------------------------------------
def checksums(paths):
    """{path: sha256} of the archive files among ``paths`` (an unpacked folder or a description gets None)."""
    from ..data.download import file_checksum

    return {str(path): file_checksum(path, "sha256") if Path(path).is_file() else None for path in paths}

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


def record(name, summary, start):
    """With ``--record NAME``: results/NAME.json holds the command, commit, seconds and ``summary``."""
    if name is not None:
        from .records import write_record

        with blame("--record"):
            path = write_record(name, summary, time.perf_counter() - start, command=["tinysiam", *sys.argv[1:]])
        print(f"recorded in {path}")
