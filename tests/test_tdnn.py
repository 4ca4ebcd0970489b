"""Bromley et al. 1993's Siamese time-delay net on Omniglot's pen trajectories, against DTW and raw pixels.

Verification on the held-out test alphabets: pairs of drawings of one
character against drawings of two characters of the same alphabet. The
recipe ``tdnn`` (128 steps per trajectory, batch-hard triplet loss, margin
0.5, Adam 1e-3, trajectory augmentation, 2000 steps of 128 drawings) and the
baselines' settings (DTW on position and direction without a band; pixels at
14x14) were chosen on validation alphabets (Early_Aramaic and Sanskrit);
the test alphabets were used for nothing else.
"""
import json

import numpy as np
import pytest

import tinysiam as ts
from tinysiam.app.cli import main
from tinysiam.app.presets import PRESETS, get_preset
from tinysiam.data.strokes import FEATURES


def test_tdnn_preset_takes_trajectories_and_refuses_short_ones():
    preset = get_preset("tdnn")
    assert PRESETS["tdnn"] is preset and preset.input_size == (len(FEATURES), 128)
    tower = preset.build(np.random.default_rng(0))
    out = tower(ts.Tensor(np.zeros((3,) + preset.input_size, np.float32)))
    assert out.shape == (3, preset.embedding_size)
    with pytest.raises(ValueError, match="x has 8 steps, fewer than the 16 steps one window spans"):
        tower(ts.Tensor(np.zeros((3, len(FEATURES), 64), np.float32)))


@pytest.mark.slow
def test_the_tdnn_recipe_beats_dtw_and_pixels_on_held_out_alphabets(data_root, tmp_path):
    pytest.importorskip("PIL")
    assert main(["train", "--recipe", "tdnn", "--data-dir", str(data_root), "--out", str(tmp_path), "--quiet",
                 "--no-plots"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    auc, eer = results["test_verification_auc"], results["test_verification_eer"]
    for baseline in ("dtw", "raw_pixels"):
        assert auc > results[f"test_verification_auc_{baseline}"] and eer < results[f"test_verification_eer_{baseline}"]
