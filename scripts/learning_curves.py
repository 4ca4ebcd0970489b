"""Draw validation accuracy against minutes of training from result records (results/NAME.json).

    python scripts/learning_curves.py results/omniglot-demo.json results/omniglot-30min.json \
        --out docs/omniglot_learning_curves.png
    python scripts/learning_curves.py results/omniglot-koch-30min.json ... --lake --out docs/omniglot_lake_curves.png

Each record written by ``tinysiam train``/``demo --record`` holds the run's history (one row per
epoch: its seconds of training and the validation accuracy at its end); a record of
``tinysiam folds`` holds one history per fold, drawn as one line each. A run tested on Lake's
runs shows that (test) accuracy in its label.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout, installed or not

from tinysiam.evaluation.plots import plot_learning_curves  # noqa: E402


def curve(history):
    """(minutes, validation accuracy) at the end of each epoch of a history."""
    column = next(key for key in history[0] if key.startswith("val_") and key.endswith("accuracy"))
    return np.cumsum([row["seconds"] for row in history]) / 60, [row[column] for row in history]


def curves_of(path, lake=False):
    """{label: (minutes, accuracy)} of one record; with ``lake``, its Lake's runs accuracy after each epoch."""
    name, metrics = Path(path).stem, json.loads(Path(path).read_text())["metrics"]
    if lake:
        if "lake_curve" not in metrics:
            raise SystemExit(f"{path} has no lake_curve: train with --keep-epochs")
        points = metrics["lake_curve"]
        return {name: ([p["minutes"] for p in points], [p["lake_accuracy"] for p in points])}
    if "fold_histories" in metrics:
        return {f"{name}, fold {k}": curve(history) for k, history in enumerate(metrics["fold_histories"], start=1)}
    label = name if "lake_accuracy" not in metrics else f"{name} (Lake's runs: {metrics['lake_accuracy']:.2%})"
    return {label: curve(metrics["history"])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", help="results/NAME.json files")
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--ylabel", default="validation accuracy (20-way, within one held-out alphabet)")
    parser.add_argument("--lake", action="store_true",
                        help="draw each run's accuracy on Lake's 20 runs after every epoch (records of --keep-epochs)")
    args = parser.parse_args(argv)
    curves = {}
    for path in args.records:
        curves.update(curves_of(path, args.lake))
    print(plot_learning_curves(curves, Path(args.out), ylabel=args.ylabel))


if __name__ == "__main__":
    main()
