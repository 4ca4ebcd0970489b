"""The Trainer used directly: every loss learns, a stopped run resumes bit for bit, a bad loss moves no weight."""
import numpy as np
import pytest

import tinysiam as ts
from tinysiam.app.config import LOSSES, OPTIMIZERS, TrainConfig
from tinysiam.app.objectives import OBJECTIVES
from tinysiam.app.runs import RunFolder
from tinysiam.app.training import NonFiniteLoss, Trainer, TrainingInterrupted
from tinysiam.data import LabelledImages

pytest.importorskip("tqdm")


def bars(n_per_class=24, seed=0, size=8):
    """Six classes of noisy size x size images, each with a faint bar on its own rows: easy once learned, not before."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(6), n_per_class)
    images = rng.normal(0, 0.5, (len(labels), 1, size, size)).astype(np.float32)
    unit = size // 8
    for c in range(6):
        images[labels == c, 0, (c + 1) * unit:(c + 2) * unit, unit:7 * unit] += 1.0
    data = LabelledImages(images, labels, [f"bar{c}" for c in range(6)])
    return data.split_items(0.75, seed)


def config(**settings):
    """A small run; nt-xent's two views are two augmentations, so it augments; relation needs feature maps."""
    relation = settings.get("loss") == "relation"
    return TrainConfig(**{"preset": "relation28" if relation else "digits", "epochs": 2, "steps_per_epoch": 6,
                          "batch": 16, "val_way": 6, "val_episodes": 50, "augment": settings.get("loss") == "nt-xent",
                          **settings})


IMAGE_LOSSES = [loss for loss in LOSSES if loss != "relatedness"]  # sentence pairs train in test_sick_app


def data_for(loss):
    """The bars at the size the loss's preset takes."""
    return bars(size=28 if loss == "relation" else 8)


def test_every_loss_has_an_objective():
    assert set(OBJECTIVES) == set(LOSSES)


@pytest.mark.parametrize("loss", IMAGE_LOSSES)
def test_every_loss_trains(loss, tmp_path):
    """Each objective's loss falls (NT-Xent's is bounded below by far more than 0, so it falls less); those that
    rank classes well this early (triplet, Koch's) learn to tell them apart.

    (The contrastive and energy losses fall too, but their unnormalised embeddings first shrink towards the
    margin: at this scale they need more steps than this to separate the classes. NT-Xent uses no labels.)"""
    train, val = data_for(loss)
    with RunFolder(tmp_path).open("new") as run:
        trainer = Trainer(config(loss=loss, epochs=4, steps_per_epoch=25, batch=32), train, val, run, progress=False)
        before = trainer.validate()
        history = trainer.fit()
    assert history[-1]["train_loss"] < (0.95 if loss == "nt-xent" else 0.5) * history[0]["train_loss"]
    if loss in ("triplet", "koch"):
        assert before < 0.5 and history[-1]["val_6way_accuracy"] > 0.75  # chance is 1/6


def run_to_the_end(cfg, train, val, folder, stop_after=None, resume=False):
    """Train in ``folder``; with ``stop_after=k`` the k-th step asks to stop, as Ctrl-C does."""
    with RunFolder(folder).open("resume" if resume else "new") as run:
        trainer = Trainer(cfg, train, val, run, progress=False)
        if resume:
            trainer.resume()
        if stop_after is not None:
            step, steps = trainer.train_step, {"n": 0}

            def counting_step():
                steps["n"] += 1
                trainer.stop_requested = steps["n"] == stop_after
                return step()

            trainer.train_step = counting_step
        trainer.fit()
    return trainer


def saved_arrays(folder):
    from tinysiam.serialization import read_npz

    arrays = read_npz(folder / "last.npz")
    return {k: v for k, v in arrays.items() if k != "meta"}


SCHEDULES = ("constant", "cosine", "exponential")


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("loss", IMAGE_LOSSES)
def test_a_run_stopped_at_any_step_resumes_to_the_same_weights(loss, optimizer, tmp_path):
    schedule = SCHEDULES[(LOSSES.index(loss) + OPTIMIZERS.index(optimizer)) % 3]  # each schedule with each optimizer
    train, val = data_for(loss)
    cfg = config(loss=loss, optimizer=optimizer, lr_schedule=schedule, lr_decay=0.5)
    straight = run_to_the_end(cfg, train, val, tmp_path / "straight")
    stop_at = int(np.random.default_rng(sum(map(ord, loss + optimizer + schedule))).integers(1, 12))  # of 12 steps
    with pytest.raises(TrainingInterrupted):
        run_to_the_end(cfg, train, val, tmp_path / "stopped", stop_after=stop_at)
    resumed = run_to_the_end(cfg, train, val, tmp_path / "stopped", resume=True)
    expected, got = saved_arrays(tmp_path / "straight"), saved_arrays(tmp_path / "stopped")
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=f"{name} (stopped after step {stop_at})")
    assert [row["train_loss"] for row in resumed.history] == [row["train_loss"] for row in straight.history]


def test_augmented_runs_resume_to_the_same_weights(tmp_path):
    train, val = bars()
    cfg = config(loss="triplet", augment=True)

    def run(folder, stop_after=None, resume=False):
        with RunFolder(folder).open("resume" if resume else "new") as run_folder:
            trainer = Trainer(cfg, train, val, run_folder, progress=False)
            if resume:
                trainer.resume()
            if stop_after:
                trainer.stop_requested = True  # stop after the first step
            trainer.fit()

    run(tmp_path / "a")
    with pytest.raises(TrainingInterrupted):
        run(tmp_path / "b", stop_after=1)
    run(tmp_path / "b", resume=True)
    for name, value in saved_arrays(tmp_path / "a").items():
        np.testing.assert_array_equal(saved_arrays(tmp_path / "b")[name], value, err_msg=name)


def test_a_non_finite_loss_stops_before_any_weight_moves(tmp_path):
    train, val = bars()
    with RunFolder(tmp_path).open("new") as run:
        trainer = Trainer(config(), train, val, run, progress=False)
        real_loss = trainer.objective.loss

        def diverging(model, batch):
            loss = real_loss(model, batch)
            return loss * float("nan") if trainer.step == 3 else loss

        trainer.objective.loss = diverging
        with pytest.raises(NonFiniteLoss, match="the loss became nan at epoch 1, step 4"):
            trainer.fit()
        weights = {name: p.data.copy() for name, p in trainer.model.named_parameters()}
    assert trainer.step == 3
    for name, p in trainer.model.named_parameters():
        assert np.isfinite(p.data).all(), name
        np.testing.assert_array_equal(p.data, weights[name])
    assert not (tmp_path / "last.npz").exists()  # nothing was saved from the diverged step


def test_history_and_checkpoint_agree_after_a_crash_between_them(tmp_path):
    import json

    train, val = bars()
    cfg = config(epochs=1)
    run_to_the_end(cfg, train, val, tmp_path)
    (tmp_path / "history.json").write_text("[]")  # as if the process died before rewriting the history
    run_to_the_end(config(epochs=2), train, val, tmp_path, resume=True)
    assert [row["epoch"] for row in json.loads((tmp_path / "history.json").read_text())] == [1, 2]


def test_validation_way_beyond_the_validation_classes_is_refused_before_training(tmp_path):
    train, val = bars()
    with RunFolder(tmp_path).open("new") as run, pytest.raises(ValueError, match="val_way must be between 2 and 6"):
        Trainer(config(val_way=7), train, val, run)


def test_schedules_set_the_rate_of_every_step(tmp_path):
    train, val = bars()
    with RunFolder(tmp_path).open("new") as run:
        trainer = Trainer(config(lr_schedule="exponential", lr_decay=0.5, lr=0.01), train, val, run, progress=False)
        rates = []
        step = trainer.train_step

        def recording_step():
            rates.append(trainer.optimizer.param_groups[0]["lr"])
            return step()

        trainer.train_step = recording_step
        trainer.fit()
    np.testing.assert_allclose(rates, [0.01] * 6 + [0.005] * 6)


def test_the_relation_network_scores_every_query_against_every_class(tmp_path):
    """An episode's pairs: each query meets each class once, and the target is 1 for its own class."""
    from tinysiam.app.objectives import RelationObjective

    train, val = bars()
    cfg = config(loss="relation", batch=12, way=3, shot=1)  # 3 queries per class
    seen = {}

    class Recorder:
        def tower(self, x):
            seen["images"] = x.shape[0]
            return ts.Tensor(np.arange(x.shape[0], dtype=np.float32).reshape(-1, 1, 1, 1))

        def head(self, query_maps, class_maps):
            seen["pairs"] = np.c_[query_maps.numpy().ravel(), class_maps.numpy().ravel()]
            return ts.Tensor(np.zeros(len(seen["pairs"]), np.float32), requires_grad=True)

    objective = RelationObjective(cfg, train, np.random.default_rng(0))
    loss = objective.loss(Recorder(), lambda index: ts.Tensor(np.zeros((len(index), 1, 28, 28), np.float32)))
    assert seen["images"] == 12 and len(seen["pairs"]) == 9 * 3
    query, class_sum = seen["pairs"].T  # supports are images 0, 1, 2 (one shot each); queries 3..11, by class
    np.testing.assert_array_equal(query, np.repeat(np.arange(3, 12), 3))
    np.testing.assert_array_equal(class_sum, np.tile([0, 1, 2], 9))
    assert loss.item() == pytest.approx(3 / 9)  # all scores 0: the 9 true pairs of 27 miss by 1


def test_relation_episodes_need_enough_images_per_class(tmp_path):
    from tinysiam.app.errors import UserError

    train, val = bars()
    with RunFolder(tmp_path).open("new") as run, pytest.raises(UserError, match="needs 6 classes with 30 images"):
        Trainer(config(loss="relation", batch=180, way=6, shot=2), train, val, run)


def test_training_records_calibrated_thresholds_in_both_checkpoints(tmp_path):
    from tinysiam.serialization import read_checkpoint_meta

    train, val = bars()
    with RunFolder(tmp_path).open("new") as run:
        Trainer(config(loss="koch"), train, val, run, progress=False).fit()
    best, last = (read_checkpoint_meta(tmp_path / name)["calibration"] for name in ("best.npz", "last.npz"))
    for calibration in (best, last):
        assert calibration["score"] == "koch_logit" and calibration["split"] == "validation"
        assert set(calibration["far_thresholds"]) == {"0.01", "0.001"}
