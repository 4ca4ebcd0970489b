"""Longer training runs on the real data, kept out of the default run (make test-slow)."""
import json

import numpy as np
import pytest

from tinysiam.app.cli import main
from tinysiam.app.recipes import RECIPES

pytestmark = pytest.mark.slow


def test_omniglot_triplet_training_beats_pixels_on_lakes_runs(data_root, tmp_path, capsys):
    """A few minutes of batch-hard triplet training at 28x28 beats nearest-neighbour on pixels (19%)."""
    out = tmp_path / "omniglot"
    assert main(["train", "--data", "omniglot", "--data-dir", str(data_root), "--preset", "omniglot28",
                 "--loss", "triplet", "--batch", "128", "--epochs", "4", "--steps-per-epoch", "100",
                 "--val-way", "20", "--augment", "--quiet", "--no-plots", "--out", str(out)]) == 0
    assert main(["eval", "--protocol", "lake", "--checkpoint", str(out / "best.npz"), "--data-dir", str(data_root),
                 "--out", str(out)]) == 0
    accuracy = json.loads((out / "eval_lake.json").read_text())["accuracy"]
    assert accuracy > 0.4


def test_the_koch2015_recipe_trains_and_is_tested_on_lakes_runs(data_root, tmp_path, capsys):
    """koch2015 at a tiny budget (2 steps of 8 pairs, 10 validation episodes): Koch's net at 105x105 trains,
    saves its checkpoints and is evaluated on Lake's runs."""
    out = tmp_path / "koch2015"
    assert main(["train", "--recipe", "koch2015", "--data-dir", str(data_root), "--epochs", "1",
                 "--steps-per-epoch", "2", "--batch", "8", "--val-episodes", "10", "--quiet", "--no-plots",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "training koch with the koch loss on omniglot" in printed
    assert "Lake's 20-way within-alphabet one-shot, 20 runs" in printed
    results = json.loads((out / "results.json").read_text())
    from tinysiam.app.model import load_model
    from tinysiam.evaluation.oneshot import evaluate_lake_runs, load_lake_runs

    runs = load_lake_runs(data_root / "omniglot" / "all_runs.zip", size=(105, 105))
    expected = evaluate_lake_runs(runs, load_model(out / "best.npz")[0].similarity).accuracy
    assert np.isfinite(results["history"][0]["train_loss"]) and results["lake_accuracy"] == pytest.approx(expected)
    assert (out / "best.npz").is_file() and (out / "last.npz").is_file()
    from tinysiam.serialization import read_checkpoint_meta

    saved = read_checkpoint_meta(out / "last.npz")["config"]
    assert saved["layer_momentum"] == list(RECIPES["koch2015"]["layer_momentum"]) and saved["momentum_ramp"] > 0
