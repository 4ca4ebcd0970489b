"""The recipe's settings (P x K batches, unit-length embeddings, standardisation, augmentation strength, flips,
test-time augmentation, validation on whole alphabets), named recipes, the Omniglot demo and `tinysiam folds`."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
from test_trainer import bars, config, run_to_the_end, saved_arrays

from tinysiam.app.cli import main
from tinysiam.app.config import ConfigError, TrainConfig
from tinysiam.app.model import SiameseModel
from tinysiam.app.objectives import BatchHardTripletObjective
from tinysiam.app.recipes import RECIPES
from tinysiam.app.runs import RunFolder
from tinysiam.app.training import Trainer
from tinysiam.data.augment import KOCH_RANGES, ONE_PIXEL_SHIFTS, horizontal_flip, koch_ranges, random_affine, shifted
from tinysiam.data.splits import split_omniglot
from tinysiam.evaluation.metrics import sample_episodes

pytest.importorskip("tqdm")


@pytest.mark.parametrize("settings, field, message", [
    (dict(per_class=1), "per_class", "must be an integer >= 2, got 1"),
    (dict(per_class=2.5), "per_class", "must be an integer >= 2, got 2.5"),
    (dict(loss="triplet", batch=12, per_class=8), "batch", "must be at least 16 for the triplet loss (2 classes x 8"),
    (dict(normalize="yes"), "normalize", "must be True or False, got 'yes'"),
    (dict(standardize=1), "standardize", "must be True or False, got 1"),
    (dict(flip=None), "flip", "must be True or False, got None"),
    (dict(tta="no"), "tta", "must be True or False, got 'no'"),
    (dict(augment_strength=0), "augment_strength", "must be a finite number > 0 and < 5, got 0"),
    (dict(augment_strength=5.0), "augment_strength", "must be a finite number > 0 and < 5, got 5.0"),
    (dict(augment_strength=float("nan")), "augment_strength", "got nan"),
    (dict(val_split="alphabet"), "val_split", "must be one of classes, alphabets; got 'alphabet'"),
    (dict(val_split="alphabets", data="faces"), "val_split", "'alphabets' needs a data set with alphabets"),
    (dict(normalize=True, loss="relation", preset="relation28"), "normalize", "needs a flat embedding"),
    (dict(layer_lr_scale=0.5), "layer_lr_scale", "must be a list of numbers, one per layer, got 0.5"),
    (dict(layer_lr_scale=(1, -1)), "layer_lr_scale", "must be a finite number >= 0, got -1 in [1, -1]"),
    (dict(optimizer="sgd", layer_momentum=(0.9, 1.0)), "layer_momentum",
     "must be a finite number >= 0 and < 1, got 1.0 in [0.9, 1.0]"),
    (dict(layer_weight_decay=(float("inf"),)), "layer_weight_decay", "must be a finite number >= 0, got inf"),
    (dict(layer_lr_scale=(1, 1), layer_weight_decay=(0,)), "layer_weight_decay",
     "must have one value per layer, as many as the other per-layer settings; got layer_lr_scale 2, "
     "layer_weight_decay 1 values"),
    (dict(layer_momentum=(0.9,)), "layer_momentum", "needs optimizer sgd (the one with momentum), got 'adam'"),
    (dict(optimizer="sgd", momentum_ramp=-1), "momentum_ramp", "must be an integer >= 0, got -1"),
    (dict(momentum_ramp=5), "momentum_ramp", "needs optimizer sgd (the one with momentum), got 'adam'"),
    (dict(patience=1.5), "patience", "must be an integer >= 0, got 1.5"),
])
def test_bad_recipe_settings_are_named(settings, field, message):
    with pytest.raises(ConfigError) as error:
        TrainConfig(**settings)
    assert error.value.field == field and message in str(error.value)


@pytest.mark.parametrize("args, message", [
    (["train", "--out", "x", "--per-class", "1"], "--per-class must be an integer >= 2, got 1"),
    (["train", "--out", "x", "--augment-strength", "-0.5"], "--augment-strength must be a finite number > 0"),
    (["train", "--out", "x", "--val-split", "alphabets"], "--val-split 'alphabets' needs a data set with alphabets"),
    (["train", "--out", "x", "--recipe", "fast"], "--recipe must be one of omniglot-demo, omniglot-30min"),
    (["train", "--out", "x", "--momentum-ramp", "3"], "--momentum-ramp needs optimizer sgd"),
    (["train", "--out", "x", "--layer-momentum", "0.9", "1.5", "--optimizer", "sgd"],
     "--layer-momentum must be a finite number >= 0 and < 1, got 1.5 in [0.9, 1.5]"),
    (["folds", "--out", "x", "--data", "omniglot", "--epochs", "1"], "--data must be one of digits, faces here"),
    (["folds", "--out", "x", "--recipe", "digits-demo", "--folds", "11"], "n_folds must be between 3"),
])
def test_bad_options_print_one_line(args, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    try:
        status = main(args)
    except SystemExit as exit:
        status = exit.code
    err = capsys.readouterr().err
    assert status == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_defaults_keep_the_plain_set_up():
    c = TrainConfig()
    assert (c.per_class, c.normalize, c.standardize, c.augment_strength, c.flip, c.tta, c.val_split) == \
        (4, False, False, 1.0, False, False, "classes")
    assert koch_ranges(1.0) == KOCH_RANGES  # the same draws as before strength existed
    assert (c.layer_lr_scale, c.layer_momentum, c.layer_weight_decay, c.momentum_ramp, c.patience) == ((), (), (), 0, 0)


# ----- what each setting does --------------------------------------------------------------------------
def test_per_class_sets_k_of_the_p_x_k_batch():
    labels = np.repeat(np.arange(10), 12)
    objective = BatchHardTripletObjective(TrainConfig(loss="triplet", batch=32, per_class=8),
                                          SimpleNamespace(labels=labels), np.random.default_rng(0))
    index = objective.class_balanced_batch()
    classes, counts = np.unique(labels[index], return_counts=True)
    assert len(index) == 32 and len(classes) == 4 and set(counts) == {8}


def test_normalize_and_standardize_wrap_the_tower():
    rng = np.random.default_rng(0)
    images = rng.random((6, 1, 28, 28)).astype(np.float32)
    model = SiameseModel(TrainConfig(preset="omniglot28", normalize=True, standardize=True), rng=rng)
    embeddings = model.embed(images)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    # standardised input: brighter, higher-contrast copies embed alike
    np.testing.assert_allclose(model.embed(3 * images + 0.5), embeddings, atol=1e-4)
    plain = SiameseModel(TrainConfig(preset="omniglot28"), rng=np.random.default_rng(0))
    assert not np.allclose(np.linalg.norm(plain.embed(images), axis=1), 1.0, rtol=1e-3)


def test_tta_averages_the_embeddings_of_the_one_pixel_shifts():
    rng = np.random.default_rng(1)
    images = rng.random((5, 1, 28, 28)).astype(np.float32)
    model = SiameseModel(TrainConfig(preset="omniglot28", tta=True), rng=rng)
    model.tta = False
    views = [model.embed(shifted(images, dy, dx)) for dy, dx in ONE_PIXEL_SHIFTS]
    plain = views[0]
    model.tta = True
    np.testing.assert_allclose(model.embed(images), np.mean(views, axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(model.embed(images), plain, atol=1e-4)


def test_shifts_move_the_image_and_repeat_the_edge():
    image = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
    np.testing.assert_array_equal(shifted(image, 1, 0)[0, 0], [[0, 1, 2, 3], [0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(shifted(image, 0, -1)[0, 0], [[1, 2, 3, 3], [5, 6, 7, 7], [9, 10, 11, 11]])
    np.testing.assert_array_equal(shifted(image, 0, 0), image)


def test_augment_strength_scales_every_range_about_the_identity(tmp_path):
    half = koch_ranges(0.5)
    assert half == {"rotation": (-5.0, 5.0), "shear": (-0.15, 0.15), "scale": (0.9, 1.1), "translation": (-1.0, 1.0)}
    _, shifts = random_affine(2000, np.random.default_rng(0), probability=1.0, **half)
    assert 0.95 < np.abs(shifts).max() <= 1.0
    train, val = bars()
    with RunFolder(tmp_path).open("new") as run:
        trainer = Trainer(config(augment=True, augment_strength=0.5), train, val, run, progress=False)
    assert trainer.augment_fn.keywords == half


def test_flip_mirrors_about_half_of_the_training_images(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.random((400, 1, 5, 6)).astype(np.float32)
    flipped = horizontal_flip(images, rng)
    mirrored = np.all(flipped == images[..., ::-1], axis=(1, 2, 3))
    kept = np.all(flipped == images, axis=(1, 2, 3))
    assert np.all(mirrored | kept) and 150 < mirrored.sum() < 250
    train, val = bars()
    with RunFolder(tmp_path).open("new") as run:
        trainer = Trainer(config(flip=True), train, val, run, progress=False)
        batch = trainer.batch(np.arange(40)).numpy()
    original = train.images[:40]
    kept = np.all(batch == original, axis=(1, 2, 3))
    mirrored = np.all(batch == original[..., ::-1], axis=(1, 2, 3)) & ~kept
    assert np.all(mirrored | kept) and 5 < mirrored.sum() < 35


def test_runs_with_the_recipe_settings_resume_to_the_same_weights(tmp_path):
    train, val = bars()
    cfg = config(loss="triplet", batch=18, per_class=3, normalize=True, standardize=True, augment=True,
                 augment_strength=0.5, flip=True, tta=True, lr_schedule="cosine", margin=0.2)
    straight = run_to_the_end(cfg, train, val, tmp_path / "straight")
    from tinysiam.app.training import TrainingInterrupted

    with pytest.raises(TrainingInterrupted):
        run_to_the_end(cfg, train, val, tmp_path / "stopped", stop_after=7)
    resumed = run_to_the_end(cfg, train, val, tmp_path / "stopped", resume=True)
    expected, got = saved_arrays(tmp_path / "straight"), saved_arrays(tmp_path / "stopped")
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    for key in ("train_loss", "val_6way_accuracy"):
        assert [row[key] for row in resumed.history] == [row[key] for row in straight.history]


# ----- validation on whole alphabets ----------------------------------------------------------------------
def alphabets(n_per_alphabet=(30, 25, 22, 8, 40), drawings=3):
    """Labelled 4x4 noise with a group (alphabet) per class."""
    from tinysiam.data import LabelledImages

    groups = [f"alphabet{a}" for a, n in enumerate(n_per_alphabet) for _ in range(n)]
    labels = np.repeat(np.arange(len(groups)), drawings)
    images = np.random.default_rng(0).random((len(labels), 1, 4, 4)).astype(np.float32)
    return LabelledImages(images, labels, [f"c{i}" for i in range(len(groups))], groups)


@pytest.mark.parametrize("seed", range(4))
def test_alphabet_split_holds_out_whole_alphabets(seed):
    data = alphabets()
    train, val = split_omniglot(data, seed, "alphabets")
    alphabet = np.asarray(data.groups)
    train_alphabets, val_alphabets = set(alphabet[train.classes]), set(alphabet[val.classes])
    assert not train_alphabets & val_alphabets and train_alphabets | val_alphabets == set(alphabet)
    assert len(val.classes) >= 0.15 * len(data.classes) and len(train.classes) + len(val.classes) == 125


def test_within_alphabet_episodes_draw_one_alphabet_each():
    data = alphabets()
    episodes = sample_episodes(data.labels, 20, 1, 1, n_episodes=60, seed=0, groups=data.groups)
    used = [set(np.asarray(data.groups)[data.labels[support.ravel()]]) for support, _ in episodes]
    assert all(len(alphabets_of_episode) == 1 for alphabets_of_episode in used)
    assert set.union(*used) == {"alphabet0", "alphabet1", "alphabet2", "alphabet4"}  # alphabet3 has 8 < 20
    with pytest.raises(ValueError, match="need a group of 41 classes; the largest has 40"):
        sample_episodes(data.labels, 41, 1, 1, groups=data.groups)
    mixed = sample_episodes(data.labels, 20, 1, 1, n_episodes=60, seed=0)
    assert any(len(set(np.asarray(data.groups)[data.labels[support.ravel()]])) > 1 for support, _ in mixed)


def test_validation_within_alphabets_needs_an_alphabet_of_val_way_characters(tmp_path):
    data = alphabets()
    alphabet = np.asarray(data.groups)[data.classes]
    val = data.select_classes(data.classes[np.isin(alphabet, ["alphabet0", "alphabet3"])])  # 30 + 8 characters
    train = data.select_classes(data.classes[~np.isin(alphabet, ["alphabet0", "alphabet3"])])
    largest = 30
    with RunFolder(tmp_path).open("new") as run, pytest.raises(ValueError, match=f"val_way must be at most {largest}"):
        Trainer(TrainConfig(data="omniglot-demo", preset="digits", loss="triplet", batch=16, val_split="alphabets",
                            val_way=largest + 1), train, val, run)


# ----- named recipes and the commands ---------------------------------------------------------------------
def test_every_recipe_is_a_valid_config():
    for settings in RECIPES.values():
        TrainConfig(**settings)  # raises on a bad setting


def test_a_recipe_gives_the_settings_and_options_override_them(tmp_path):
    from tinysiam.serialization import read_checkpoint_meta

    assert main(["train", "--recipe", "digits-demo", "--out", str(tmp_path), "--epochs", "1", "--steps-per-epoch",
                 "3", "--per-class", "3", "--no-augment", "--quiet", "--no-plots"]) == 0
    saved = read_checkpoint_meta(tmp_path / "last.npz")["config"]
    expected = {**RECIPES["digits-demo"], "epochs": 1, "steps_per_epoch": 3, "per_class": 3, "augment": False}
    assert {name: saved[name] for name in expected} == expected
    results = json.loads((tmp_path / "results.json").read_text())
    from tinysiam.data.registry import load_split
    from tinysiam.evaluation.verification import evaluate_verification, pixel_pair_scores, verification_pairs

    test = load_split("digits", (8, 8), seed=saved["seed"])[2]
    pixels = evaluate_verification(pixel_pair_scores, test.images, verification_pairs(test.labels, 2000, saved["seed"]))
    assert results["test_verification_eer_raw_pixels"] == pytest.approx(pixels.eer) and len(results["history"]) == 1


def test_the_omniglot_demo_runs_offline_on_a_reduced_budget(tmp_path, capsys, monkeypatch):
    pytest.importorskip("PIL")
    pytest.importorskip("matplotlib")
    monkeypatch.delenv("TINYSIAM_DATA", raising=False)
    assert main(["demo", "--out", str(tmp_path), "--epochs", "1", "--steps-per-epoch", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Lake's 20 runs, 20-way one-shot" in out and "modified Hausdorff distance 61.25%" in out
    assert "raw pixels 19.00%" in out and "people 95.5%, Bayesian Program Learning 96.7%" in out  # the anchors
    results = json.loads((tmp_path / "results.json").read_text())
    from tinysiam.app.model import load_model
    from tinysiam.data import load_demo_runs
    from tinysiam.evaluation.oneshot import evaluate_lake_runs

    runs = load_demo_runs((28, 28))  # the runs the demo scores: reported as computed, best and last checkpoints
    for name, key in (("best.npz", "lake_accuracy"), ("last.npz", "lake_accuracy_last")):
        model = load_model(tmp_path / name)[0]
        assert results[key] == pytest.approx(evaluate_lake_runs(runs, model.similarity).accuracy)
    assert results["lake_mhd_accuracy"] == pytest.approx(0.6125) and len(results["lake_per_run"]) == 20
    for name in ("loss.png", "one_shot.png", "embeddings.png", "best.npz", "last.npz"):
        assert (tmp_path / name).is_file()
    from tinysiam.serialization import read_checkpoint_meta

    saved = read_checkpoint_meta(tmp_path / "best.npz")["config"]
    assert saved["data"] == "omniglot-demo" and saved["val_split"] == "alphabets" and saved["tta"]


def test_eval_takes_lakes_runs_from_the_bundle_without_a_data_folder(tmp_path, capsys, monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.delenv("TINYSIAM_DATA", raising=False)
    assert main(["eval", "--protocol", "lake", "--baseline", "pixels", "--out", str(tmp_path)]) == 0
    assert "Lake's runs from the demo bundle" in capsys.readouterr().out
    assert json.loads((tmp_path / "eval_lake.json").read_text())["accuracy"] == pytest.approx(0.19)


FOLDS = ["folds", "--recipe", "digits-demo", "--folds", "3", "--val-way", "2", "--epochs", "1",
         "--steps-per-epoch", "2", "--quiet", "--no-plots"]


def test_folds_train_each_fold_and_summarise_next_to_raw_pixels(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out = tmp_path / "folds"
    assert main(FOLDS + ["--out", str(out)]) == 0
    summary = json.loads((out / "folds.json").read_text())
    eers = [fold["eer"] for fold in summary["model"]["per_fold"]]
    assert summary["folds"] == 3 and len(eers) == 3
    assert summary["model"]["eer_mean"] == pytest.approx(np.mean(eers))
    assert summary["model"]["eer_sd"] == pytest.approx(np.std(eers, ddof=1))
    for k in (1, 2, 3):
        fold = json.loads((out / f"fold-{k}" / "results.json").read_text())
        assert fold["test_verification_eer"] == eers[k - 1]
        assert summary["raw_pixels"]["per_fold"][k - 1]["eer"] == fold["test_verification_eer_raw_pixels"]
    assert "3 subject-disjoint folds" in capsys.readouterr().out
    # run again: the finished folds are read back, not trained again
    before = {k: (out / f"fold-{k}" / "best.npz").read_bytes() for k in (1, 2, 3)}
    assert main(FOLDS + ["--out", str(out)]) == 0
    assert "fold 1 of 3" not in capsys.readouterr().out
    assert all((out / f"fold-{k}" / "best.npz").read_bytes() == before[k] for k in (1, 2, 3))
    assert json.loads((out / "folds.json").read_text())["model"] == summary["model"]
    # other settings are not mixed into the same protocol
    assert main(FOLDS + ["--out", str(out), "--lr", "0.01"]) == 2
    assert "fold-1 was trained with other settings (lr was 0.001, now 0.01)" in capsys.readouterr().err


def test_a_stopped_protocol_resumes_the_unfinished_fold(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out = tmp_path / "folds"
    assert main(FOLDS + ["--out", str(out)]) == 0
    capsys.readouterr()
    (out / "fold-2" / "results.json").unlink()  # as if stopped after fold 2 saved its last step
    assert main(FOLDS + ["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fold 2 of 3" in printed and "fold 1 of 3" not in printed and "fold 3 of 3" not in printed


# ----- Koch et al. 2015's recipe ----------------------------------------------------------------------------
def koch2015_small(**settings):
    """koch2015's optimisation on the bars: the digits tower (conv, BN, conv, BN, linear) and Koch's head also
    have six layers with weights."""
    return TrainConfig(**{**RECIPES["koch2015"], "data": "digits", "preset": "digits", "val_split": "classes",
                          "batch": 16, "epochs": 3, "steps_per_epoch": 4, "momentum_ramp": 2, "val_way": 6,
                          "val_episodes": 50, "patience": 0, **settings})


def test_koch2015_gives_each_layer_its_settings_and_ramps_and_decays_them(tmp_path):
    cfg = koch2015_small(layer_lr_scale=(1, 1, 2, 2, 0.5, 1), layer_momentum=(0.9, 0.9, 0.8, 0.8, 0.7, 0.6),
                         layer_weight_decay=(0, 0, 1e-4, 1e-4, 2e-4, 0))
    train, val = bars()
    with RunFolder(tmp_path).open("new") as run:
        trainer = Trainer(cfg, train, val, run, progress=False)
        seen = []
        step = trainer.train_step

        def recording_step():
            seen.append([(g["lr"], g["momentum"], g["weight_decay"]) for g in trainer.optimizer.param_groups])
            return step()

        trainer.train_step = recording_step
        trainer.fit()
    lr = cfg.lr * np.array(cfg.layer_lr_scale)
    final = np.array(cfg.layer_momentum)
    for epoch in range(3):  # the rate 1% lower each epoch; the momentum from 0.5 to each layer's in 2 epochs
        for settings in seen[epoch * 4:(epoch + 1) * 4]:
            rates, momenta, decays = np.array(settings).T
            np.testing.assert_allclose(rates, lr * 0.99**epoch, rtol=1e-12)
            np.testing.assert_allclose(momenta, 0.5 + (final - 0.5) * min(epoch / 2, 1), rtol=1e-12)
            np.testing.assert_array_equal(decays, cfg.layer_weight_decay)


def test_per_layer_lists_must_fit_the_model(tmp_path):
    train, val = bars()
    with RunFolder(tmp_path).open("new") as run, pytest.raises(ConfigError) as error:
        Trainer(koch2015_small(layer_lr_scale=(1.0,) * 5, layer_momentum=(0.9,) * 5, layer_weight_decay=()),
                train, val, run)
    assert error.value.field == "layer_lr_scale"
    assert "one value per layer of the digits model with the koch loss" in str(error.value)
    assert "got settings for 5 layers, but the model has 6 layers with parameters" in str(error.value)


def test_a_stopped_koch2015_run_resumes_to_the_same_weights(tmp_path):
    train, val = bars()
    cfg = koch2015_small()
    straight = run_to_the_end(cfg, train, val, tmp_path / "straight")
    from tinysiam.app.training import TrainingInterrupted

    with pytest.raises(TrainingInterrupted):  # in the second epoch: the momentum half-way up its ramp
        run_to_the_end(cfg, train, val, tmp_path / "stopped", stop_after=6)
    resumed = run_to_the_end(cfg, train, val, tmp_path / "stopped", resume=True)
    expected, got = saved_arrays(tmp_path / "straight"), saved_arrays(tmp_path / "stopped")
    assert expected.keys() == got.keys() and any(".velocity" in name for name in expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert [row["train_loss"] for row in resumed.history] == [row["train_loss"] for row in straight.history]


def test_patience_stops_after_that_many_epochs_without_a_better_accuracy(tmp_path, monkeypatch):
    accuracies = iter([0.3, 0.5, 0.4, 0.5, 0.45, 0.9])
    monkeypatch.setattr(Trainer, "validate", lambda self: next(accuracies))
    train, val = bars()
    with RunFolder(tmp_path).open("new") as run:
        history = Trainer(koch2015_small(epochs=6, steps_per_epoch=1, patience=3), train, val, run,
                          progress=False).fit()
    assert [row["val_6way_accuracy"] for row in history] == [0.3, 0.5, 0.4, 0.5, 0.45]  # 0.5 equalled, not beaten


def test_a_koch2015_checkpoints_config_resumes_with_the_recipe_given_again():
    from tinysiam.app.config import resume_config

    recipe = RECIPES["koch2015"]
    saved = TrainConfig.from_dict(json.loads(json.dumps(TrainConfig(**recipe).to_dict())))  # lists, as stored
    assert saved == TrainConfig(**recipe)
    config, changes = resume_config(saved, dict(recipe))  # `train --recipe koch2015 --resume`
    assert changes == {} and config == saved
