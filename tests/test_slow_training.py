"""Longer training runs on the real data, kept out of the default run (make test-slow)."""
import json

import pytest

from tinysiam.app.cli import main

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
