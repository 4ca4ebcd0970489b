"""Bromley et al. 1993's Siamese time-delay net on Omniglot's pen trajectories, against DTW and raw pixels.

Verification on held-out alphabets: pairs of drawings of one character
against drawings of two characters of the same alphabet. The recipe
(128 steps per trajectory, batch-hard triplet loss, margin 0.5, Adam 1e-3,
trajectory augmentation, 2000 steps of 128 drawings) and the baselines'
settings (DTW on position and direction without a band; pixels at 14x14) were
chosen on the validation alphabets Early_Aramaic and Sanskrit, then the net
trained on every alphabet but the held-out ones.
"""
import time

import numpy as np
import pytest

import tinysiam as ts
from tinysiam.app.config import TrainConfig
from tinysiam.app.model import SiameseModel
from tinysiam.app.objectives import BatchHardTripletObjective
from tinysiam.app.presets import PRESETS, get_preset
from tinysiam.app.training import make_optimizer
from tinysiam.data import augment_trajectories, load_omniglot, load_omniglot_strokes
from tinysiam.data.strokes import DX, DY, FEATURES, X, Y
from tinysiam.evaluation.dtw import dtw_distance
from tinysiam.evaluation.verification import evaluate_verification, pixel_pair_scores, verification_pairs

HELD_OUT = ["Balinese", "Japanese_(katakana)", "Tagalog"]


def test_tdnn_preset_takes_trajectories_and_refuses_short_ones():
    preset = get_preset("tdnn")
    assert PRESETS["tdnn"] is preset and preset.input_size == (len(FEATURES), 128)
    tower = preset.build(np.random.default_rng(0))
    out = tower(ts.Tensor(np.zeros((3,) + preset.input_size, np.float32)))
    assert out.shape == (3, preset.embedding_size)
    with pytest.raises(ValueError, match="x has 8 steps, fewer than the 16 steps one window spans"):
        tower(ts.Tensor(np.zeros((3, len(FEATURES), 64), np.float32)))


def train_tdnn(train, steps, seed=0):
    """The application's model, optimizer and triplet objective on the ``tdnn`` preset, trained on augmented
    trajectories by a bare loop (no checkpoints, no validation); returns the model."""
    config = TrainConfig(preset="tdnn", loss="triplet", batch=128, margin=0.5, lr=1e-3, seed=seed)
    rng = np.random.default_rng(seed)
    model = SiameseModel(config, rng)
    optimizer = make_optimizer(config, model)
    objective = BatchHardTripletObjective(config, train.labels, rng)

    def batch(index):
        return ts.Tensor(augment_trajectories(train.sequences[index], rng))

    for _ in range(steps):
        loss = objective.loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@pytest.mark.slow
def test_tdnn_beats_dtw_and_pixels_on_held_out_alphabets(data_root):
    omniglot = data_root / "omniglot"
    features, length = get_preset("tdnn").input_size
    strokes = load_omniglot_strokes([omniglot / f"strokes_background_small{k}.zip" for k in (1, 2)], length)
    assert strokes.sequences.shape[1] == features
    train = strokes.select_groups(sorted(set(strokes.groups) - set(HELD_OUT)))
    test = strokes.select_groups(HELD_OUT)
    start = time.perf_counter()
    model = train_tdnn(train, steps=2000)
    seconds = time.perf_counter() - start

    images = load_omniglot([omniglot / f"images_background_small{k}.zip" for k in (1, 2)], size=(14, 14))
    images = images.align_to(test.names)
    pairs = verification_pairs(test.labels, 2000, seed=1, groups=test.groups)
    results = {"TDNN (tdnn preset, triplet)": evaluate_verification(model.pair_scores, test.sequences, pairs),
               "DTW on position and direction": evaluate_verification(
                   lambda a, b: -dtw_distance(a[:, [X, Y, DX, DY]], b[:, [X, Y, DX, DY]]), test.sequences, pairs),
               "raw pixels at 14x14, L2": evaluate_verification(pixel_pair_scores, images.images, pairs)}
    print(f"\nheld-out alphabets {HELD_OUT}, 2000 pairs; the TDNN trained {seconds:.0f} s "
          f"on {len(train.classes)} characters")
    for name, r in results.items():
        print(f"{name:32s} AUC {r.auc:.3f}  EER {r.eer:.1%}")
    tdnn, dtw, pixels = results.values()
    assert tdnn.auc > dtw.auc and tdnn.eer < dtw.eer
    assert tdnn.auc > pixels.auc and tdnn.eer < pixels.eer
