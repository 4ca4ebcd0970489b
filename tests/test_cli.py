"""The command line, end to end, in shortened runs."""
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import write_png

from tinysiam.app.cli import build_parser, main
from tinysiam.app.config import LOSSES

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

QUICK = ["--epochs", "1", "--steps-per-epoch", "5", "--quiet", "--no-plots"]


def test_digits_demo_shortened(tmp_path, capsys):
    assert main(["demo", "--data", "digits", "--out", str(tmp_path), "--epochs", "2", "--steps-per-epoch", "15",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "5-way one-shot accuracy" in out and "raw pixels" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["test_5way_1shot_accuracy"] > 0.3  # chance is 0.2; 500 episodes make 0.3 far outside noise
    for name in ("loss.png", "roc.png", "embeddings.png", "one_shot.png", "best.npz", "last.npz", "history.csv"):
        assert (tmp_path / name).is_file()
    history = json.loads((tmp_path / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]


def test_rotations_train_on_four_classes_per_class_and_test_on_the_drawn_ones(tmp_path, capsys):
    from tinysiam.data.registry import load_split

    train, val, _ = load_split("digits", (8, 8))
    assert main(["train", "--rotations", "--out", str(tmp_path)] + QUICK) == 0
    out = capsys.readouterr().out
    # digits 0-4 train: five classes, each in four orientations; validation keeps its five as drawn
    assert (f"on digits: {4 * len(train.labels)} images of 20 classes, validating on {len(val.labels)} images of 5 "
            "classes") in out


def test_demo_never_replaces_a_run(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.npz").write_bytes(b"a good model")  # no last.npz: the guard must still see a run here
    assert main(["demo", "--out", str(run), "--epochs", "1", "--steps-per-epoch", "2", "--quiet"]) == 2
    assert "already holds a run (best.npz)" in capsys.readouterr().err
    assert (run / "best.npz").read_bytes() == b"a good model"


def test_demo_without_out_picks_a_fresh_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for expected in ("demo", "demo-2"):
        assert main(["demo", "--data", "digits", "--epochs", "1", "--steps-per-epoch", "2", "--quiet",
                     "--no-plots"]) == 0
        assert f"plots and checkpoints in {tmp_path.joinpath('runs', expected).relative_to(tmp_path)}/" in \
            capsys.readouterr().out


def test_train_refuses_to_overwrite_then_resumes(tmp_path, capsys):
    args = ["train", "--data", "digits", "--out", str(tmp_path), "--loss", "koch"] + QUICK
    assert main(args) == 0
    before = (tmp_path / "last.npz").read_bytes()
    assert main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (tmp_path / "last.npz").read_bytes() == before
    assert main(["train", "--out", str(tmp_path), "--resume", "--epochs", "2", "--quiet", "--no-plots"]) == 0
    assert [row["epoch"] for row in json.loads((tmp_path / "history.json").read_text())] == [1, 2]


def test_no_test_trains_and_validates_without_touching_the_test_classes(tmp_path, monkeypatch):
    import tinysiam.app.protocols as protocols

    def no_test(*args, **kwargs):
        raise AssertionError("the test protocol ran")

    monkeypatch.setattr(protocols, "test_run", no_test)
    assert main(["train", "--data", "digits", "--out", str(tmp_path), "--loss", "triplet", "--no-test"] + QUICK) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["test"].startswith("not run") and not any(name.startswith("test_") for name in results)
    assert results["best_val_accuracy"] > 0 and (tmp_path / "best.npz").is_file()


@pytest.mark.parametrize("loss", [loss for loss in LOSSES if loss != "relatedness"])  # sentences: test_sick_app
def test_every_loss_trains_from_the_command_line(loss, tmp_path):
    extra = {"nt-xent": ["--augment"], "relation": ["--preset", "relation28", "--batch", "20"]}.get(loss, [])
    assert main(["train", "--out", str(tmp_path), "--loss", loss, "--epochs", "1", "--steps-per-epoch", "3",
                 "--quiet", "--no-plots"] + extra) == 0
    from tinysiam.serialization import read_checkpoint_meta

    meta = read_checkpoint_meta(tmp_path / "best.npz")
    assert meta["config"]["loss"] == loss and np.isfinite(meta["history"][0]["train_loss"])
    results = json.loads((tmp_path / "results.json").read_text())
    assert {"test_5way_1shot_accuracy", "test_5way_1shot_raw_pixels", "test_verification_eer"} <= set(results)


def test_nt_xent_needs_augmentation(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--loss", "nt-xent"] + QUICK) == 2
    assert "--augment is needed by the nt-xent loss" in capsys.readouterr().err


def test_resume_applies_a_new_lr_and_records_it(tmp_path, capsys):
    from tinysiam.serialization import read_checkpoint_meta

    assert main(["train", "--out", str(tmp_path), "--lr", "0.01", "--optimizer", "sgd"] + QUICK) == 0
    assert main(["train", "--out", str(tmp_path), "--resume", "--epochs", "2", "--lr", "0.05", "--quiet",
                 "--no-plots"]) == 0
    assert "resuming with lr = 0.05 (was 0.01)" in capsys.readouterr().out
    meta = read_checkpoint_meta(tmp_path / "last.npz")
    assert meta["config"]["lr"] == 0.05
    assert meta["changes"] == [{"epoch": 2, "step": 0, "option": "epochs", "from": 1, "to": 2},
                               {"epoch": 2, "step": 0, "option": "lr", "from": 0.01, "to": 0.05}]
    from tinysiam.serialization import read_npz

    assert read_npz(tmp_path / "last.npz")["optim/group0.lr"] == pytest.approx(0.05)


@pytest.mark.parametrize("option", [["--loss", "triplet"], ["--optimizer", "sgd"], ["--preset", "mini"],
                                    ["--seed", "3"], ["--val-way", "3"]])
def test_resume_refuses_to_change_what_defines_the_run(tmp_path, capsys, option):
    assert main(["train", "--out", str(tmp_path)] + QUICK) == 0
    before = (tmp_path / "last.npz").read_bytes()
    assert main(["train", "--out", str(tmp_path), "--resume", "--epochs", "2", "--quiet"] + option) == 2
    err = capsys.readouterr().err
    assert f"{option[0]} cannot change when resuming" in err and "Traceback" not in err
    assert (tmp_path / "last.npz").read_bytes() == before


def test_interrupt_saves_the_step_and_resume_finishes_the_epoch(tmp_path, monkeypatch, capsys):
    import os
    import signal

    from tinysiam.app import training
    from tinysiam.serialization import read_checkpoint_meta

    calls = {"n": 0}
    original = training.Trainer.train_step

    def interrupting(self):
        calls["n"] += 1
        if calls["n"] == 8:  # Ctrl-C arrives during step 3 of epoch 2
            os.kill(os.getpid(), signal.SIGINT)
        return original(self)

    monkeypatch.setattr(training.Trainer, "train_step", interrupting)
    code = main(["train", "--out", str(tmp_path), "--epochs", "3", "--steps-per-epoch", "5", "--quiet", "--no-plots"])
    assert code == 130 and "--resume" in capsys.readouterr().err
    meta = read_checkpoint_meta(tmp_path / "last.npz")
    assert meta["interrupted"] and (meta["epoch"], meta["step"]) == (1, 3) and len(meta["epoch_losses"]) == 3
    monkeypatch.setattr(training.Trainer, "train_step", original)
    assert main(["train", "--out", str(tmp_path), "--resume", "--quiet", "--no-plots"]) == 0
    meta = read_checkpoint_meta(tmp_path / "last.npz")
    assert meta["epoch"] == 3 and [row["epoch"] for row in meta["history"]] == [1, 2, 3]


def test_a_diverging_run_stops_with_one_line_and_detect_anomaly_names_the_op(tmp_path, capsys):
    args = ["train", "--out", str(tmp_path), "--lr", "1e30", "--optimizer", "sgd", "--epochs", "1",
            "--steps-per-epoch", "20", "--quiet", "--no-plots"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's overflow warnings would make more lines
        assert main(args) == 2
    err = capsys.readouterr().err
    assert "a NaN or Inf reached the loss" in err and "--detect-anomaly" in err and err.count("\n") == 1
    assert main(args + ["--overwrite", "--detect-anomaly"]) == 2
    err = capsys.readouterr().err
    # whichever algorithm the convolution picked for this shape is the op named
    assert re.search(r"Conv2d\w+Op produced Inf and NaN in its forward pass", err)
    assert "input shapes (128, 32, 4, 4)" in err


def test_training_options_take_their_defaults_from_the_config(tmp_path):
    args = build_parser().parse_args(["train", "--out", "x"])
    assert not {"lr", "epochs", "steps_per_epoch", "loss"} & set(vars(args))  # absent: TrainConfig decides
    helps = {action.dest: action.help for action in
             build_parser()._subparsers._group_actions[0].choices["train"]._actions}
    # the help states the default a run really gets
    assert main(["train", "--out", str(tmp_path)] + QUICK) == 0
    from tinysiam.serialization import read_checkpoint_meta

    saved = read_checkpoint_meta(tmp_path / "best.npz")["config"]
    for name in ("loss", "optimizer", "lr", "margin", "val_episodes", "preset", "data"):
        assert f"(default: {saved[name]})" in helps[name]
    assert "(default: 0.001)" in helps["lr"] and "(default: digits)" in helps["data"]


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "omniglot", "--data-dir", "/nonexistent", "--out", "x"], "is not a folder"),
    (["train", "--out", "x", "--lr", "-1"], "--lr must be a finite number > 0, got -1.0"),
    (["train", "--out", "x", "--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["train", "--out", "x", "--seed", "-3"], "--seed must be an integer >= 0, got -3"),
    (["train", "--out", "x", "--batch", "1000000000"], "--batch must be at most 65536"),
    (["train", "--out", "x", "--batch", "1e9"], "argument --batch: invalid int value: '1e9'"),
    (["train", "--out", "x", "--epochs", "1.5"], "argument --epochs: invalid int value: '1.5'"),
    (["train", "--out", "x", "--val-way", "1"], "--val-way must be an integer >= 2, got 1"),
    (["train", "--out", "x", "--val-way", "50"], "--val-way must be between 2 and 5"),
    (["train", "--out", ""], "--out must name a folder"),
    (["train", "--data", "strokes", "--out", "x"],
     "--preset 'digits' takes images, --data strokes holds sequences: choose a preset over sequences (tdnn)"),
    (["train", "--preset", "tdnn", "--out", "x"], "--preset 'tdnn' takes sequences, --data digits holds images: "
                                                  "choose a preset over images (digits, mini"),
    (["train", "--recipe", "tdnn", "--flip", "--out", "x"], "--flip works on images; --data strokes holds pen "
                                                            "trajectories"),
    (["train", "--recipe", "tdnn", "--tta", "--out", "x"], "--tta works on images"),
    (["train", "--recipe", "tdnn", "--rotations", "--out", "x"], "--rotations works on images"),
    (["train", "--recipe", "faces", "--rotations", "--out", "x"], "--rotations needs square images; the faces preset "
                                                                  "takes 56x46"),
    (["train", "--data", "vinyals", "--preset", "omniglot28", "--rotations", "--out", "x"],
     "--rotations would rotate --data vinyals's classes twice"),
    (["eval", "--protocol", "lake"], "exactly one of --checkpoint or --baseline"),
    (["eval", "--checkpoint", "/nonexistent.npz"], "no such file"),
])
def test_user_errors_print_one_line_and_exit_2(args, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert exit_status(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()  # nothing was started


def exit_status(args):
    """The command's exit status, whether main returns it or argparse exits with it."""
    try:
        return main(args)
    except SystemExit as exit:
        return exit.code


def test_eval_nway_reports_what_the_library_computes(tmp_path):
    from tinysiam.app.model import load_model
    from tinysiam.data.registry import load_split
    from tinysiam.evaluation.held_out import evaluate_held_out, raw_pixel_accuracy

    assert main(["train", "--out", str(tmp_path / "run")] + QUICK) == 0
    evaluation = tmp_path / "eval"
    assert main(["eval", "--protocol", "nway", "--checkpoint", str(tmp_path / "run" / "best.npz"), "--way", "3",
                 "--out", str(evaluation)]) == 0
    result = json.loads((evaluation / "eval_nway.json").read_text())
    model, config = load_model(tmp_path / "run" / "best.npz")
    test = load_split("digits", (8, 8), config.seed)[2]
    assert result.pop("test_3way_1shot_raw_pixels") == pytest.approx(raw_pixel_accuracy(test, 3, seed=0).accuracy)
    assert result == pytest.approx(evaluate_held_out(model, test, 3, seed=0)) and (evaluation / "roc.png").is_file()
    assert main(["eval", "--protocol", "nway", "--checkpoint", str(tmp_path / "run" / "best.npz"),
                 "--out", str(evaluation)]) == 2  # results already there: not replaced without --overwrite


def test_eval_refuses_a_way_beyond_the_test_classes(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path)] + QUICK) == 0
    assert main(["eval", "--protocol", "nway", "--checkpoint", str(tmp_path / "best.npz"), "--way", "50"]) == 2
    assert "--way must be between 2 and 5" in capsys.readouterr().err


def test_record_writes_the_result_with_its_command(data_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["tinysiam", "eval", "--baseline", "pixels"])
    assert main(["eval", "--protocol", "lake", "--baseline", "pixels", "--data-dir", str(data_root),
                 "--record", "lake-pixels"]) == 0
    record = json.loads((tmp_path / "results" / "lake-pixels.json").read_text())
    assert record["command"] == "tinysiam eval --baseline pixels" and record["metrics"]["accuracy"] == 0.19


def test_omniglot_training_is_tested_on_lakes_runs_next_to_the_baselines(data_root, tmp_path):
    """Koch et al.'s protocol on the full sets, its archives recorded with their checksums (../shared/data's README)."""
    for name in ("images_background.zip", "images_evaluation.zip"):
        if not (data_root / "omniglot" / name).is_file():
            pytest.skip(f"Koch's protocol needs omniglot/{name} in the data folder")
    assert main(["train", "--data", "omniglot", "--data-dir", str(data_root), "--preset", "mini", "--out",
                 str(tmp_path), "--epochs", "1", "--steps-per-epoch", "2", "--batch", "16", "--val-episodes", "20",
                 "--quiet", "--no-plots"]) == 0
    from tinysiam.app.model import load_model
    from tinysiam.evaluation.oneshot import evaluate_lake_runs, load_lake_runs

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["data"] == "omniglot" and {Path(p).name: sha for p, sha in results["archives"].items()} == {
        "images_background.zip": "dff4b339eba2639147509f7baf6ca8178112e69a86902e815f685ba03f66ca86",
        "images_evaluation.zip": "1075291c28f1a3eb909b5c76d877c808aeea9b1c9bd32ea8ae29ee4e6997f305"}
    assert results["lake_runs"].endswith("all_runs.zip") and len(results["lake_runs_sha256"]) == 64
    assert results["lake_mhd_accuracy"] == pytest.approx(0.6125) and results["lake_raw_pixels_accuracy"] == 0.19
    runs = load_lake_runs(data_root / "omniglot" / "all_runs.zip", size=(28, 28))
    assert results["lake_per_run"] == evaluate_lake_runs(runs, load_model(tmp_path / "best.npz")[0].similarity).per_run


def test_eval_lake_with_the_mhd_baseline(data_root, tmp_path, capsys):
    assert main(["eval", "--protocol", "lake", "--baseline", "mhd", "--data-dir", str(data_root),
                 "--out", str(tmp_path)]) == 0
    assert "38.75% error" in capsys.readouterr().out
    assert json.loads((tmp_path / "eval_lake.json").read_text())["error"] == pytest.approx(0.3875)


def test_eval_lake_with_a_trained_checkpoint(data_root, tmp_path, capsys):
    from tinysiam.app.model import load_model
    from tinysiam.evaluation.oneshot import evaluate_lake_runs, load_lake_runs

    out = tmp_path / "run"
    assert main(["train", "--data", "omniglot-minimal", "--data-dir", str(data_root), "--preset", "mini", "--out",
                 str(out), "--epochs", "1", "--steps-per-epoch", "3", "--batch", "16", "--quiet", "--no-plots"]) == 0
    assert main(["eval", "--protocol", "lake", "--checkpoint", str(out / "best.npz"), "--data-dir", str(data_root),
                 "--out", str(tmp_path / "eval")]) == 0
    reported = json.loads((tmp_path / "eval" / "eval_lake.json").read_text())
    model, _ = load_model(out / "best.npz")
    runs = load_lake_runs(data_root / "omniglot" / "all_runs.zip", size=(28, 28))
    assert reported["per_run"] == evaluate_lake_runs(runs, model.similarity).per_run


def test_eval_lake_refuses_a_checkpoint_with_nan_weights(data_root, tmp_path, capsys):
    from tinysiam.serialization import read_npz, write_npz_atomic

    assert main(["train", "--out", str(tmp_path)] + QUICK) == 0
    arrays = read_npz(tmp_path / "best.npz")
    arrays["model/tower.0.weight"] = np.full_like(arrays["model/tower.0.weight"], np.nan)
    write_npz_atomic(tmp_path / "nan.npz", arrays)
    assert main(["eval", "--checkpoint", str(tmp_path / "nan.npz"), "--data-dir", str(data_root)]) == 2
    assert "tower.0.weight hold NaN or Inf" in capsys.readouterr().err


def test_a_model_whose_scores_diverge_is_a_user_error_but_a_library_bug_keeps_its_traceback(tmp_path, monkeypatch,
                                                                                              capsys):
    from tinysiam.app.model import SiameseModel

    assert main(["train", "--out", str(tmp_path)] + QUICK) == 0
    checkpoint = str(tmp_path / "best.npz")
    monkeypatch.setattr(SiameseModel, "similarity", lambda self, q, s: np.full((len(q), len(s)), np.inf))
    assert main(["eval", "--checkpoint", checkpoint]) == 2
    assert "--checkpoint: the scores of run01 hold 400 non-finite values" in capsys.readouterr().err

    def bug(self, queries, supports):
        raise ValueError("a bug in the library")

    monkeypatch.setattr(SiameseModel, "similarity", bug)
    with pytest.raises(ValueError, match="a bug in the library"):  # not turned into a one-line user error
        main(["eval", "--checkpoint", checkpoint])


def test_train_on_the_att_faces_reports_verification(data_root, tmp_path):
    from tinysiam.app.model import load_model
    from tinysiam.data.registry import load_split
    from tinysiam.evaluation.held_out import evaluate_held_out

    out = tmp_path / "faces"
    assert main(["train", "--data", "faces", "--data-dir", str(data_root), "--preset", "faces", "--epochs", "1",
                 "--steps-per-epoch", "2", "--batch", "8", "--quiet", "--no-plots", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    model, config = load_model(out / "best.npz")
    test = load_split("faces", (56, 46), config.seed, data_root)[2]
    expected = evaluate_held_out(model, test, 5, seed=config.seed)
    assert results["test_classes"] == 10
    assert results["test_verification_eer"] == pytest.approx(expected["test_verification_eer"])


@pytest.mark.parametrize("text, message", [
    ("START\n1,2,0\nx\nBREAK\n", "0001_01.txt, line 3: expected 'x,y,t' (three numbers), START or BREAK, got 'x'"),
    ("START\n1,2,0\nBREAK\nBREAK\n", "0001_01.txt, line 4: BREAK closes a stroke without points"),
    ("START\n1,2,0\n", "0001_01.txt, line 2: the stroke starting here has no closing BREAK"),
    ("START\n1,2,0\nBREAK\n", "lack the test alphabets ['Balinese', 'Japanese_(katakana)', 'Tagalog']"),
])
def test_bad_strokes_data_stops_training_with_one_line(text, message, tmp_path, capsys):
    for minimal in (1, 2):
        drawing = tmp_path / "data" / f"strokes_background_small{minimal}" / "Alpha" / "character01" / "0001_01.txt"
        drawing.parent.mkdir(parents=True)
        drawing.write_text(text)
    assert main(["train", "--recipe", "tdnn", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinysiam: error: --data strokes: ") and message in err and err.count("\n") == 1


def test_strokes_training_is_tested_next_to_dtw_and_pixels(data_root, tmp_path, monkeypatch, capsys):
    from tinysiam.app.model import load_model
    from tinysiam.data.registry import load_split
    from tinysiam.data.splits import STROKES_TEST_ALPHABETS, drawing_images
    from tinysiam.evaluation.held_out import TRAJECTORY_PIXEL_SIZE, evaluate_trajectories

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "tdnn"
    assert main(["train", "--recipe", "tdnn", "--data-dir", str(data_root), "--epochs", "1", "--steps-per-epoch", "2",
                 "--val-episodes", "50", "--quiet", "--no-plots", "--out", str(out), "--record", "tdnn-tiny"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in ("tdnn, trained", "DTW on position and direction", "raw pixels at 14x14"))
    results = json.loads((out / "results.json").read_text())
    assert results["test_alphabets"] == sorted(STROKES_TEST_ALPHABETS) and results["test_pairs"] == 2000
    model, config = load_model(out / "best.npz")
    test = load_split("strokes", (5, 128), config.seed, data_root, config.val_split)[2]
    expected = evaluate_trajectories(model, test, drawing_images(test.names, TRAJECTORY_PIXEL_SIZE, data_root),
                                     seed=config.seed)
    assert expected == {name: results[name] for name in expected}
    record = json.loads((tmp_path / "results" / "tdnn-tiny.json").read_text())
    assert record["metrics"]["test_verification_auc_dtw"] == results["test_verification_auc_dtw"]
    # the checkpoint evaluates on the same protocol; on images it is refused in one line
    assert main(["eval", "--protocol", "nway", "--checkpoint", str(out / "best.npz"), "--data-dir", str(data_root),
                 "--out", str(tmp_path / "eval")]) == 0
    assert json.loads((tmp_path / "eval" / "eval_nway.json").read_text()) == expected
    assert main(["eval", "--checkpoint", str(out / "best.npz"), "--data-dir", str(data_root)]) == 2
    assert "its preset 'tdnn' takes sequences, --data omniglot holds images" in \
        capsys.readouterr().err
    png = write_png(tmp_path / "a.png", np.zeros((8, 8)))
    assert main(["verify", str(png), str(png), "--checkpoint", str(out / "best.npz")]) == 2
    assert "its preset 'tdnn' takes sequences, not the image files or sentences this command reads" in \
        capsys.readouterr().err


def test_an_image_net_trained_on_the_strokes_split_is_scored_on_the_same_pairs(data_root, tmp_path, capsys):
    """--data strokes-images: the drawings' images of the strokes' training alphabets; the test is the
    strokes' protocol (the same pairs, DTW and pixel baselines), the model scoring the images."""
    from tinysiam.data.registry import load_split
    from tinysiam.data.splits import STROKES_TEST_ALPHABETS

    out = tmp_path / "images"
    assert main(["train", "--recipe", "omniglot-demo", "--data", "strokes-images", "--data-dir", str(data_root),
                 "--epochs", "1", "--steps-per-epoch", "2", "--val-episodes", "20", "--quiet", "--no-plots",
                 "--out", str(out)]) == 0
    assert "omniglot28, trained" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["test_alphabets"] == sorted(STROKES_TEST_ALPHABETS) and results["test_pairs"] == 2000
    train, _, _ = load_split("strokes-images", (28, 28), 0, data_root, "alphabets")
    strokes_train, _, _ = load_split("strokes", (5, 128), 0, data_root, "alphabets")
    assert train.names == strokes_train.names and train.images.shape[1:] == (1, 28, 28)
    # the baselines are the strokes run's own: the same pairs of the same drawings
    tdnn = tmp_path / "tdnn"
    assert main(["train", "--recipe", "tdnn", "--data-dir", str(data_root), "--epochs", "1", "--steps-per-epoch", "1",
                 "--val-episodes", "20", "--quiet", "--no-plots", "--out", str(tdnn)]) == 0
    strokes_results = json.loads((tdnn / "results.json").read_text())
    for name in ("test_verification_auc_dtw", "test_verification_eer_raw_pixels"):
        assert results[name] == strokes_results[name]
    assert results["test_verification_auc"] != strokes_results["test_verification_auc"]


def test_gradcheck_command_passes(capsys):
    assert main(["gradcheck", "--group", "op"]) == 0
    assert "0 failed" in capsys.readouterr().out


def test_a_checkpoint_written_on_the_gpu_loads_and_resumes_on_the_cpu(tmp_path, capsys):
    """Arrays are stored as NumPy; the config's device is only where that run trained."""
    from tinysiam.serialization import read_checkpoint_meta, update_checkpoint_meta

    assert main(["train", "--out", str(tmp_path)] + QUICK) == 0
    for name in ("best.npz", "last.npz"):
        meta = read_checkpoint_meta(tmp_path / name)
        update_checkpoint_meta(tmp_path / name, config={**meta["config"], "device": "gpu"})
    assert main(["eval", "--protocol", "nway", "--checkpoint", str(tmp_path / "best.npz"), "--device", "cpu"]) == 0
    assert main(["train", "--out", str(tmp_path), "--resume", "--epochs", "2", "--device", "cpu", "--quiet",
                 "--no-plots"]) == 0
    assert "resuming with device = cpu (was gpu)" in capsys.readouterr().out


def test_keep_epochs_scores_every_epoch_on_lakes_runs(tmp_path, monkeypatch):
    """--keep-epochs: one checkpoint per epoch, each scored on Lake's runs (the bundled copy here) against the
    minutes of training; the last point is the last checkpoint's accuracy."""
    pytest.importorskip("PIL")
    monkeypatch.delenv("TINYSIAM_DATA", raising=False)
    out = tmp_path / "run"
    assert main(["train", "--recipe", "omniglot-demo", "--epochs", "2", "--steps-per-epoch", "2", "--val-episodes",
                 "20", "--keep-epochs", "--quiet", "--no-plots", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [p["epoch"] for p in results["lake_curve"]] == [1, 2]
    assert results["lake_curve"][-1]["lake_accuracy"] == pytest.approx(results["lake_accuracy_last"])
    minutes = np.cumsum([row["seconds"] for row in results["history"]]) / 60
    assert [p["minutes"] for p in results["lake_curve"]] == pytest.approx(minutes.tolist())
    assert (out / "epoch-001.npz").is_file() and (out / "epoch-002.npz").is_file()
    for name in ("last.npz", "best.npz", "results.json", "history.json", "history.csv"):
        (out / name).unlink()
    assert main(["train", "--recipe", "omniglot-demo", "--out", str(out), "--quiet"]) == 2  # the kept ones guard it
