"""A training step reads nothing back from a GPU: every preset, every loss and both optimizers, on the CPU.

``device_double`` takes CuPy's place in the backend, so ``device="gpu"`` runs on NumPy while every
transfer of values to the host is logged with the line that asked for it (its docstring says what a
host sync is and why a step should make none). A step may make no implicit transfer; the trainer
reads the losses itself, in one explicit transfer per ``read_every`` steps.
"""
import device_double
import numpy as np
import pytest

from tinysiam.app.config import LOSSES, OPTIMIZERS, TrainConfig
from tinysiam.app.presets import PRESETS
from tinysiam.app.runs import RunFolder
from tinysiam.app.training import NonFiniteLoss, Trainer
from tinysiam.data import LabelledImages, LabelledSequences
from tinysiam.data.sick import SickPairs
from tinysiam.engine import backend

pytest.importorskip("tqdm")

READ_EVERY = STEPS = 2


@pytest.fixture
def gpu(monkeypatch):
    """``device="gpu"`` on the device double: it sits where the backend keeps CuPy."""
    monkeypatch.setattr(backend, "_cupy", device_double)


def images(size, per_class=6, classes=4):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(classes), per_class)
    return LabelledImages(rng.random((len(labels), 1, *size), dtype=np.float32), labels,
                          [f"class{c}" for c in range(classes)])


def trajectories(per_class=6, classes=4):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(classes), per_class)
    return LabelledSequences(rng.standard_normal((len(labels), 5, 128), dtype=np.float32), labels,
                             [f"class{c}" for c in range(classes)])


def sentence_pairs(n=12):
    rng = np.random.default_rng(0)
    words = "a man dog plays the guitar runs cat sleeps on mat".split()

    def sentence():
        return " ".join(rng.choice(words, size=rng.integers(2, 7)))

    return SickPairs(np.arange(n), [sentence() for _ in range(n)], [sentence() for _ in range(n)],
                     rng.uniform(1, 5, n), ["NEUTRAL"] * n)


def run(case, device="gpu"):
    """A trainer for ``case`` (config settings) on ``device``, after STEPS steps; returns (trainer, transfers)."""
    preset = case.get("preset", "relation28" if case.get("loss") == "relation" else "digits")
    data = {"sentences": sentence_pairs(), "sequences": trajectories()}.get(PRESETS[preset].items) or \
        images(PRESETS[preset].input_size)
    config = TrainConfig(**{"data": {"sentences": "sick", "sequences": "strokes"}.get(PRESETS[preset].items, "digits"),
                            "preset": preset, "batch": 8, "per_class": 2, "way": 2, "val_way": 3, "device": device,
                            **case})
    trainer = Trainer(config, data, data, run=None, progress=False)
    trainer.read_every = READ_EVERY
    with device_double.watching() as transfers:
        for _ in range(STEPS):  # as Trainer.fit steps
            trainer.train_step()
            trainer.step += 1
    return trainer, transfers


# what each loss needs besides its name: a small episode, two augmented views, sentences
NEEDS = {"relation": {"batch": 4}, "nt-xent": {"augment": True}, "relatedness": {"preset": "text-conv"}}
LOSS_CASES = [{"loss": loss, **NEEDS.get(loss, {})} for loss in LOSSES]
PRESET_CASES = [pytest.param(case, marks=pytest.mark.slow) if case["preset"] == "koch" else case  # 105x105: minutes
                for case in ({"preset": name, **({"batch": 2} if name == "koch" else {}),
                              "loss": {"sentences": "relatedness", "sequences": "triplet"}.get(p.items, "contrastive")}
                             for name, p in PRESETS.items() if name != "relation28")]  # relation28: the relation loss
OPTIMIZER_CASES = [
    {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 1e-4, "lr_schedule": "exponential", "momentum_ramp": 2,
     "layer_lr_scale": (1, 1, 2, 2, 0.5), "layer_momentum": (0.9, 0.9, 0.8, 0.8, 0.7)},
    {"optimizer": "adam", "weight_decay": 1e-4, "lr_schedule": "cosine"},
    {"augment": True, "flip": True, "standardize": True, "normalize": True, "loss": "triplet"},  # the recipes'
]
assert {case["optimizer"] for case in OPTIMIZER_CASES if "optimizer" in case} == set(OPTIMIZERS)


def case_id(case):
    return "-".join(f"{k}={v}" for k, v in case.items()) if isinstance(case, dict) else None


@pytest.mark.parametrize("case", LOSS_CASES + PRESET_CASES + OPTIMIZER_CASES, ids=case_id)
def test_a_training_step_makes_no_host_sync(gpu, case):
    trainer, transfers = run(case)
    assert transfers.implicit == [], "host syncs in a training step:\n" + "\n".join(
        f"{kind} at {where}" for kind, where in transfers.implicit)
    assert len(transfers.explicit) == STEPS // READ_EVERY  # the losses, READ_EVERY steps at a time
    assert all("read_losses" in where for _, where in transfers.explicit)
    assert len(trainer.epoch_losses) == STEPS and not trainer.unread_losses


@pytest.mark.parametrize("loss", ["triplet", "relation", "relatedness"])
def test_the_device_path_computes_what_numpy_computes(gpu, loss):
    """The same losses, step by step: batch-hard mining on the device picks the triplets NumPy picks."""
    case = {"loss": loss, **NEEDS.get(loss, {})}
    on_gpu, _ = run(case)
    on_cpu, _ = run(case, device="cpu")
    assert on_gpu.epoch_losses == on_cpu.epoch_losses


def test_a_non_finite_loss_on_the_device_is_reported_at_the_read_with_its_step(gpu, tmp_path):
    config = TrainConfig(preset="digits", loss="contrastive", batch=8, val_way=3, device="gpu")
    with RunFolder(tmp_path).open("new") as folder:
        trainer = Trainer(config, images((8, 8)), images((8, 8)), folder, progress=False)
        real_loss = trainer.objective.loss
        trainer.objective.loss = lambda model, batch: real_loss(model, batch) * (float("nan") if trainer.step == 1
                                                                                 else 1.0)
        trainer.read_every = 4
        with pytest.raises(NonFiniteLoss, match=r"the loss became nan at epoch 1, step 2: training stopped 2 steps "
                                                r"later \(losses are read every 4 steps\)"):
            for _ in range(4):
                trainer.train_step()
                trainer.step += 1
    assert trainer.step == 3 and trainer.epoch_losses == []


def test_the_double_logs_what_would_wait_for_a_gpu(gpu):
    x = backend.to_device(np.arange(6.0), "gpu")
    with device_double.watching() as transfers:
        y = (x * 2).sum()  # queued work: nothing to read
        x[x > 2]  # a boolean mask: how many elements it keeps depends on the values
        if y > 1:  # Python control flow on a device value
            float(y)
        backend.to_numpy(y)  # explicit
    assert [kind for kind, _ in transfers.implicit] == ["boolean-mask indexing", "bool()", "float()"]
    assert [kind for kind, _ in transfers.explicit] == ["asnumpy()"]
    assert "test_host_syncs.py" in transfers.implicit[1][1]
    with pytest.raises(TypeError, match="move it to the device first"):
        x + np.ones(6)  # as in CuPy, host arrays are not mixed in silently
