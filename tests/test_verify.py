"""Calibrated verification: the thresholds ``calibrate`` records, and ``tinysiam verify`` on image files."""
import json

import numpy as np
import pytest
from conftest import pattern_images, write_png

from tinysiam.app.cli import main
from tinysiam.app.config import TrainConfig
from tinysiam.app.model import load_model
from tinysiam.app.trained import read_image_files
from tinysiam.evaluation.calibration import calibrate
from tinysiam.serialization import read_checkpoint_meta, save_checkpoint
from tinysiam.siamese.mining import PairSampler

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    """Two images of pattern 0 and one of pattern 1, as PNG files."""
    folder = tmp_path_factory.mktemp("pngs")
    images = pattern_images(2, seed=7)
    return {name: str(write_png(folder / f"{name}.png", image)) for name, image in zip(("a", "a2", "b"), images.images)}


def rates(scores, same, threshold):
    """(false-accept rate, false-reject rate) of "same iff score >= threshold"."""
    accepted = scores >= threshold
    return accepted[same == 0].mean(), (~accepted[same == 1]).mean()


@pytest.mark.parametrize("loss", ["contrastive", "koch"])
def test_calibration_thresholds_hold_on_their_pairs(calibrated_checkpoint, loss):
    path = calibrated_checkpoint(loss)
    calibration = read_checkpoint_meta(path)["calibration"]
    json.dumps(calibration, allow_nan=False)  # plain JSON
    assert calibration["score"] == ("neg_l2" if loss == "contrastive" else "koch_logit")
    assert (calibration["pairs"], calibration["same_pairs"], calibration["split"]) == (2000, 1000, "validation")
    model, _ = load_model(path)
    val = pattern_images(10, seed=2)  # the trainer's validation set
    left, right, same = PairSampler(val.labels, seed=0).sample(2000)
    scores = model.pair_scores(val.images[left], val.images[right])
    for key, threshold in calibration["far_thresholds"].items():
        false_accepts, false_rejects = rates(scores, same, threshold)
        assert false_accepts <= float(key)
        assert 1 - false_rejects == pytest.approx(calibration["far_true_accept_rates"][key])
    false_accepts, false_rejects = rates(scores, same, calibration["eer_threshold"])
    assert abs(false_accepts - calibration["eer"]) <= 1 / 1000 and abs(false_rejects - calibration["eer"]) <= 1 / 1000


@pytest.mark.parametrize("loss", ["contrastive", "koch"])
def test_verify_tells_same_from_different(calibrated_checkpoint, pngs, loss, capsys):
    checkpoint = str(calibrated_checkpoint(loss))
    assert main(["verify", pngs["a"], pngs["a2"], "--checkpoint", checkpoint]) == 0
    out = capsys.readouterr().out
    assert "decision   same" in out and ("logit" if loss == "koch" else "L2 distance") in out
    assert main(["verify", pngs["a"], pngs["b"], "--checkpoint", checkpoint]) == 1
    assert "decision   different" in capsys.readouterr().out


def test_far_picks_the_recorded_threshold(calibrated_checkpoint, pngs, capsys):
    checkpoint = str(calibrated_checkpoint())
    recorded = read_checkpoint_meta(checkpoint)["calibration"]["far_thresholds"]["0.01"]
    main(["verify", pngs["a"], pngs["a2"], "--checkpoint", checkpoint, "--far", "0.01"])
    assert f"threshold  {recorded:.4f}  (false-accept rate 1.00%" in capsys.readouterr().out


def with_threshold(source, target, threshold):
    """A copy of checkpoint ``source`` whose equal-error threshold is ``threshold``."""
    meta = read_checkpoint_meta(source)
    model, _ = load_model(source)
    calibration = {**meta["calibration"], "eer_threshold": threshold}
    save_checkpoint(target, model, config=meta["config"], calibration=calibration)
    return str(target)


def test_a_score_equal_to_the_threshold_is_same(calibrated_checkpoint, pngs, tmp_path, capsys):
    source = calibrated_checkpoint()
    model, _ = load_model(source)
    a, b = (read_image_files([pngs[key]], (8, 8), False, key) for key in ("a", "b"))
    score = float(model.pair_scores(a, b)[0])
    at = with_threshold(source, tmp_path / "at.npz", score)
    assert main(["verify", pngs["a"], pngs["b"], "--checkpoint", at]) == 0
    above = with_threshold(source, tmp_path / "above.npz", float(np.nextafter(np.float32(score), np.inf)))
    assert main(["verify", pngs["a"], pngs["b"], "--checkpoint", above]) == 1
    assert f"score      {score:.4f}" in capsys.readouterr().out


def printed_score(out):
    return float(out.split()[1])


def test_an_image_of_another_size_is_resized(calibrated_checkpoint, pngs, tmp_path, capsys):
    big = Image.open(pngs["a2"]).resize((40, 24), Image.Resampling.NEAREST)  # 8x8 blown up, not square
    big.save(tmp_path / "big.png")
    checkpoint = str(calibrated_checkpoint())
    main(["verify", pngs["a"], str(tmp_path / "big.png"), "--checkpoint", checkpoint])
    resized = printed_score(capsys.readouterr().out)
    main(["verify", pngs["a"], pngs["b"], "--checkpoint", checkpoint])
    assert resized > printed_score(capsys.readouterr().out)  # still nearer its own pattern than another one


def test_verify_errors_name_the_argument(calibrated_checkpoint, pngs, tmp_path, capsys):
    checkpoint = str(calibrated_checkpoint())
    model, _ = load_model(checkpoint)
    save_checkpoint(tmp_path / "plain.npz", model, config=TrainConfig(preset="digits").to_dict())
    (tmp_path / "notes.png").write_text("not an image")
    cases = [
        (["--checkpoint", str(tmp_path / "plain.npz")],
         "holds no calibration: checkpoints written by `tinysiam train`"),
        (["--checkpoint", checkpoint, "--far", "0.2"], "--far 0.2: the checkpoint records thresholds at false-accept "
                                                       "rates 0.01, 0.001"),
        (["--checkpoint", str(tmp_path / "missing.npz")], f"--checkpoint {tmp_path / 'missing.npz'}: no such file"),
    ]
    for options, message in cases:
        assert main(["verify", pngs["a"], pngs["b"], *options]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert main(["verify", str(tmp_path / "nope.png"), pngs["b"], "--checkpoint", checkpoint]) == 2
    assert "A: no such image file" in capsys.readouterr().err
    assert main(["verify", str(tmp_path), pngs["b"], "--checkpoint", checkpoint]) == 2
    assert f"A: {tmp_path} is a folder, not an image file" in capsys.readouterr().err
    assert main(["verify", pngs["a"], str(tmp_path / "notes.png"), "--checkpoint", checkpoint]) == 2
    assert "B: " in (err := capsys.readouterr().err) and "not a readable image" in err


def test_calibrate_refuses_a_rate_its_pairs_cannot_measure(calibrated_checkpoint):
    model, _ = load_model(calibrated_checkpoint())
    val = pattern_images(10, seed=3)
    with pytest.raises(ValueError, match="cannot be measured on 50 different pairs"):
        calibrate(model, val.images, val.labels, n_pairs=100, fars=(0.001,))
