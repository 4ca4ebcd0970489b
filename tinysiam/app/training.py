"""The training loop behind ``tinysiam train`` and ``demo``: steps, validation, checkpoints, exact resume.

A run lives in one folder (see ``runs.py``): ``last.npz`` after every epoch (and
when stopped), ``best.npz`` at the best validation accuracy, ``history.json``/``.csv``.
A checkpoint holds everything the next step depends on: the model, the optimizer,
the random generator that draws batches and augmentations, the epoch and step, and
the losses of an unfinished epoch. So a run stopped at any step (Ctrl-C, SIGTERM) or
killed (it then restarts from its last checkpoint) and resumed ends with the same
weights as a run never stopped, bit for bit on the CPU.

Ctrl-C and SIGTERM never cut a step or a file write in half: they ask the loop to stop
after the current step, which saves ``last.npz`` and raises ``TrainingInterrupted``.
A second Ctrl-C interrupts at once (atomic writes still leave every file whole).

A step reads nothing back from a GPU (a read would make Python wait for the device to
finish its queued work): each step's loss stays on the device, and the losses are read
together, and checked finite, every ``LOSS_READS_ON_GPU`` steps, at the end of an epoch
and before a checkpoint. On the CPU a read costs nothing, so every loss is read and
checked before its step moves any weight.
"""
import contextlib
import functools
import math
import signal
import sys
import threading
import time

import numpy as np

from .. import optim
from ..data.augment import affine_augment, horizontal_flip, koch_ranges
from ..data.datasets import LabelledSequences
from ..data.sick import Vocabulary
from ..data.strokes import augment_trajectories, trajectory_ranges
from ..engine import backend
from ..engine.tensor import Tensor
from ..evaluation.calibration import calibrate
from ..evaluation.held_out import check_way
from ..evaluation.metrics import n_way_k_shot_accuracy
from ..evaluation.relatedness import pearson_r
from ..serialization import save_checkpoint, update_checkpoint_meta
from ..siamese.distances import NonFiniteValues
from .checkpoints import read_training_checkpoint
from .config import ConfigError
from .errors import UserError
from .model import SiameseModel, load_model
from .objectives import make_objective


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on request after a step; ``last.npz`` holds that step."""


class NonFiniteLoss(UserError):
    """The loss became NaN or Inf: the run stops at the next read of the losses (on the CPU, before that step
    changes any weight)."""


LOSS_READS_ON_GPU = 20  # steps between reads of the losses on a GPU (on the CPU: every step)

# the config's per-layer lists, and the optimizer setting each one sets
PER_LAYER = {"layer_lr_scale": "lr", "layer_momentum": "momentum", "layer_weight_decay": "weight_decay"}


def layer_settings(config):
    """Each layer's optimizer settings from the config's per-layer lists (equally long), or [] when it has none."""
    columns = {setting: getattr(config, name) for name, setting in PER_LAYER.items() if getattr(config, name)}
    if "lr" in columns:
        columns["lr"] = [config.lr * scale for scale in columns["lr"]]
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def make_optimizer(config, model):
    """SGD or Adam over the model's parameters: one group per layer when the config has per-layer settings."""
    params = model.parameters()
    settings = layer_settings(config)
    if settings:
        try:
            params = optim.layer_groups(model, settings)
        except ValueError as error:  # lists written for another model
            given = next(name for name in PER_LAYER if getattr(config, name))
            raise ConfigError(given, f"must have one value per layer of the {config.preset} model with the "
                              f"{config.loss} loss ({error})") from None
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def make_schedules(config, optimizer):
    """The schedules stepped after every optimizer step: the learning rate's (none for a constant rate), and
    the momentum ramp (counted in epochs: one step of either per ``steps_per_epoch`` optimizer steps)."""
    schedules = []
    if config.lr_schedule == "cosine":
        schedules.append(optim.CosineLR(optimizer, total=config.epochs * config.steps_per_epoch))
    elif config.lr_schedule == "exponential":
        schedules.append(optim.StepLR(optimizer, step_size=config.steps_per_epoch, gamma=config.lr_decay))
    if config.momentum_ramp:
        schedules.append(optim.MomentumRamp(optimizer, length=config.momentum_ramp, step_size=config.steps_per_epoch))
    return schedules


def default_augment(config, train):
    """The distortion of a training batch, its ranges scaled by ``augment_strength``: pen-trajectory
    distortions for sequences, Koch et al.'s affine maps for images."""
    if isinstance(train, LabelledSequences):
        return functools.partial(augment_trajectories, **trajectory_ranges(config.augment_strength))
    return functools.partial(affine_augment, **koch_ranges(config.augment_strength))


def validation_groups(config, val):
    """The alphabet of each validation class when validation episodes stay within one alphabet, else None;
    refuses a ``val_way`` larger than every validation alphabet."""
    if config.val_split != "alphabets":
        return None
    sizes = np.unique(np.asarray(val.groups)[val.classes], return_counts=True)[1]
    if sizes.max() < config.val_way:
        raise ValueError(f"val_way must be at most {sizes.max()}, the characters of the largest validation alphabet "
                         f"(episodes stay within one alphabet), got {config.val_way}")
    return val.groups


class Trainer:
    """Trains on ``train`` and validates on ``val`` into ``run`` (an open RunFolder): LabelledItems (images, or
    sequences for a sequence preset; the tower takes their ``items``), or, for the relatedness loss, scored
    sentence pairs (``SickPairs``; the vocabulary is built from the training sentences alone)."""

    def __init__(self, config, train, val, run, augment_fn=None, progress=True, keep_epochs=False):
        """``augment_fn(batch, rng)`` distorts a training batch when ``config.augment`` (default:
        ``default_augment``); ``keep_epochs`` also saves every epoch's checkpoint as ``epoch-NNN.npz``."""
        self.relatedness = config.loss == "relatedness"  # validated by Pearson's r, not by one-shot episodes
        if not self.relatedness:
            check_way(config.val_way, val, "val_way")
        self.config, self.train_set, self.val_set, self.run = config, train, val, run
        self.val_column = "val_pearson" if self.relatedness else f"val_{config.val_way}way_accuracy"
        self.val_groups = None if self.relatedness else validation_groups(config, val)
        self.augment_fn = (augment_fn or default_augment(config, train)) if config.augment else None
        self.progress, self.keep_epochs = progress, keep_epochs
        self.rng = np.random.default_rng(config.seed)  # the one stream of batches and augmentations
        vocabulary = Vocabulary.build(train.sentences()) if self.relatedness else None
        self.model = SiameseModel(config, rng=self.rng, vocabulary=vocabulary).to(config.device)
        self.optimizer = make_optimizer(config, self.model)
        self.schedules = make_schedules(config, self.optimizer)
        self.objective = make_objective(config, train, self.rng)
        self.history, self.changes, self.best_accuracy = [], [], -math.inf
        self.epoch, self.step = 0, 0  # where the next step is: epoch (from 0) and step within it
        self.epoch_losses, self.epoch_seconds = [], 0.0  # of the unfinished epoch
        self.unread_losses = []  # (step, loss array) of the steps whose loss is still on the device
        self.read_every = 1 if config.device == "cpu" else LOSS_READS_ON_GPU
        self.stop_requested = False

    # ----- checkpoints ---------------------------------------------------------------
    def save(self, name, **extra):
        """Write checkpoint ``name``; a failing write (disk full) is a UserError and leaves the old file whole."""
        path = self.run.path / name
        try:
            if self.model.vocabulary is not None:  # a sentence model reads new sentences with it
                extra["vocabulary"] = self.model.vocabulary.to_dict()
            save_checkpoint(path, self.model, self.optimizer, config=self.config.to_dict(), history=self.history,
                            epoch=self.epoch, step=self.step, epoch_losses=self.epoch_losses,
                            epoch_seconds=self.epoch_seconds, best_accuracy=self.best_accuracy, changes=self.changes,
                            rng=self.rng.bit_generator.state, **extra)
        except OSError as error:
            raise UserError(f"cannot write {path}: {error.strerror or error}; the previous file is intact") from None

    def resume(self, changes=None):
        """Continue from the run's ``last.npz``; ``changes`` {field: (old, new)} were applied to the config.

        A checkpoint that cannot be resumed (damaged, foreign, not fitting this run) is a ValueError naming it,
        raised before anything is changed."""
        checkpoint = read_training_checkpoint(self.run.path / "last.npz", self.config.device)
        progress = checkpoint.restore(self.model, self.optimizer)
        self.history, self.epoch, self.step = progress["history"], progress["epoch"], progress["step"]
        self.epoch_losses, self.epoch_seconds = progress["epoch_losses"], progress["epoch_seconds"]
        self.best_accuracy, self.changes = progress["best_accuracy"], progress["changes"]
        self.rng.bit_generator.state = progress["rng"]
        for name, (old, new) in (changes or {}).items():
            self.changes.append({"epoch": self.epoch + 1, "step": self.step, "option": name, "from": old, "to": new})
            if name == "lr":  # the optimizer restored the saved rate; its initial_lr is already the new one
                for group in self.optimizer.param_groups:
                    group["lr"] *= new / old
        for schedule in self.schedules:  # the rate and momentum at this step, from the (possibly new) lr and epochs
            schedule.load_state_dict({"t": self.epoch * self.config.steps_per_epoch + self.step})
        self.run.write_history(self.history)  # repairs a history file left behind by a crash

    # ----- one step -------------------------------------------------------------------
    def batch(self, index):
        """The training items at ``index`` as a Tensor on the run's device, augmented if asked."""
        items = self.train_set.items[index]
        if self.augment_fn is not None:
            items = self.augment_fn(items, self.rng)
        if self.config.flip:
            items = horizontal_flip(items, self.rng)
        return Tensor(backend.to_device(items, self.config.device))

    def train_step(self):
        """One optimizer step on a fresh batch. Its loss joins the unread ones; once ``read_every`` have
        gathered they are read (``read_losses``) before this step moves any weight."""
        try:
            loss = self.objective.loss(self.model, self.batch)
        except NonFiniteValues as error:  # the embeddings themselves: the weights have diverged
            self.stop_diverged(f"a NaN or Inf reached the loss ({error})", self.step)
        self.unread_losses.append((self.step, loss.data))
        if len(self.unread_losses) >= self.read_every:
            self.read_losses()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        for schedule in self.schedules:
            schedule.step()

    def read_losses(self):
        """Bring the unread losses to the host in one transfer and add them to the epoch's; a non-finite one
        stops the run (``stop_diverged``)."""
        if not self.unread_losses:
            return
        steps, arrays = zip(*self.unread_losses)
        self.unread_losses = []
        values = backend.to_numpy(backend.xp_of(arrays[0]).stack(arrays)).tolist()
        for step, value in zip(steps, values):
            if not math.isfinite(value):
                self.stop_diverged(f"the loss became {value}", step)
        self.epoch_losses.extend(values)

    def stop_diverged(self, problem, step):
        """Raise NonFiniteLoss for ``problem`` found at ``step`` of this epoch (from 0), saying how many steps
        have moved the weights since (none on the CPU; on a GPU, up to ``read_every`` - 1)."""
        last = self.run.path / "last.npz"
        saved = f"{last} holds the last saved state" if last.exists() else "no checkpoint was saved yet"
        moved = self.step - step  # steps whose update ran from that loss on
        stopped = "before that step" if moved == 0 else \
            f"{moved} steps later (losses are read every {self.read_every} steps): the weights in memory diverged"
        raise NonFiniteLoss(f"{problem} at epoch {self.epoch + 1}, step {step + 1}: training stopped {stopped}; "
                            f"{saved}. Lower --lr, or run with --detect-anomaly to find the operation that "
                            "produced it")

    def validate(self):
        """``val_way``-way one-shot accuracy on the validation classes (seeded episodes: the same every epoch;
        with ``val_split="alphabets"``, each episode's classes from one alphabet); for the relatedness loss,
        Pearson's r between the predicted and the gold scores of the validation pairs."""
        c, model = self.config, self.model
        if self.relatedness:
            predicted = model.pair_scores(self.val_set.sentences_a, self.val_set.sentences_b)
            return pearson_r(predicted, self.val_set.scores)
        embeddings = backend.to_numpy(model.embed(self.val_set.items))
        score_fn = None if model.head is None else model.embedding_similarity  # None: the nearest prototype
        return n_way_k_shot_accuracy(embeddings, self.val_set.labels, n_way=c.val_way, k_shot=1,
                                     n_episodes=c.val_episodes, seed=c.seed, metric=model.metric,
                                     score_fn=score_fn, groups=self.val_groups).accuracy

    # ----- the loop ---------------------------------------------------------------------
    def fit(self):
        """Train until ``config.epochs`` (or until ``patience`` runs out), then calibrate; returns the history
        (one row per epoch)."""
        self.model.train()
        with self._stop_on_signals():
            while self.epoch < self.config.epochs and not self.out_of_patience():
                self._run_epoch()
        if self.epoch < self.config.epochs and self.progress:
            print(f"stopped early: no better validation accuracy in the last {self.config.patience} epochs", flush=True)
        self.calibrate()
        return self.history

    def out_of_patience(self):
        """Whether ``patience`` epochs have passed without a better validation accuracy than the best one
        (Koch et al. 2015's early stop; read from the history, so a resumed run stops where it would have)."""
        c = self.config
        accuracies = [row[self.val_column] for row in self.history]
        return bool(c.patience and accuracies) and len(accuracies) - 1 - int(np.argmax(accuracies)) >= c.patience

    def calibrate(self):
        """Record in best.npz and last.npz the decision thresholds that ``tinysiam verify`` uses, measured on
        validation pairs with each checkpoint's own weights (the equal-error point and false-accept rates).
        A relatedness model predicts a score on its data's own scale instead: nothing to calibrate."""
        if self.relatedness:
            return
        for name in ("best.npz", "last.npz"):
            path = self.run.path / name
            model = self.model if name == "last.npz" else load_model(path, self.config.device)[0]
            calibration = calibrate(model, self.val_set.items, self.val_set.labels, seed=self.config.seed)
            try:
                update_checkpoint_meta(path, calibration=calibration)
            except OSError as error:
                raise UserError(f"cannot write {path}: {error.strerror or error}; the previous file is intact") \
                    from None

    def _run_epoch(self):
        from tqdm.auto import tqdm

        c = self.config
        # a bar only on a terminal; logs (CI, files) get the one summary line per epoch
        bar = tqdm(total=c.steps_per_epoch, initial=self.step, desc=f"epoch {self.epoch + 1}/{c.epochs}",
                   unit="step", leave=False, disable=not (self.progress and sys.stderr.isatty()), mininterval=0.5)
        start = time.perf_counter() - self.epoch_seconds
        with bar:
            while self.step < c.steps_per_epoch:
                self.train_step()
                self.step += 1
                if self.stop_requested or self.step == c.steps_per_epoch:
                    self.read_losses()  # the epoch's losses complete, and its seconds include the device's work
                self.epoch_seconds = time.perf_counter() - start
                bar.update()
                if self.epoch_losses:
                    bar.set_postfix(loss=f"{np.mean(self.epoch_losses[-20:]):.4f}")
                if self.stop_requested:
                    self.save("last.npz", interrupted=True)
                    raise TrainingInterrupted
        accuracy = self.validate()
        row = {"epoch": self.epoch + 1, "train_loss": float(np.mean(self.epoch_losses)),
               self.val_column: accuracy, "seconds": round(self.epoch_seconds, 3)}
        self.history.append(row)
        self.epoch, self.step, self.epoch_losses, self.epoch_seconds = self.epoch + 1, 0, [], 0.0
        if accuracy > self.best_accuracy:
            self.best_accuracy = accuracy
            self.save("best.npz")
        self.save("last.npz")
        if self.keep_epochs:
            self.save(f"epoch-{self.epoch:03d}.npz")
        self.run.write_history(self.history)
        if self.progress:
            validation = f"val Pearson's r {accuracy:.4f}" if self.relatedness else \
                f"val {c.val_way}-way one-shot {accuracy:.1%}"
            print(f"epoch {row['epoch']}/{c.epochs}: loss {row['train_loss']:.4f}, {validation} "
                  f"({row['seconds']:.1f} s)", flush=True)

    @contextlib.contextmanager
    def _stop_on_signals(self):
        """Turn Ctrl-C and SIGTERM into a request to stop after the current step (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum, frame):
            self.stop_requested = True
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once

        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

