"""Training and scoring Siamese networks: the loop behind ``tinysiam train`` and ``demo``.

A run lives in one output folder: ``last.npz`` (checkpoint after every
epoch), ``best.npz`` (best validation accuracy), ``history.json`` and
``history.csv`` (one row per epoch). Every file is written atomically, so a
run that fails or is interrupted never leaves a half-written file or
overwrites a good one with a bad one.
"""
import csv
import io
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from .. import nn, optim
from ..engine import backend
from ..siamese.distances import l2_distance, pairwise_distances
from ..siamese.losses import bce_with_logits, contrastive_linear_loss, contrastive_loss, triplet_loss
from ..evaluation.metrics import n_way_k_shot_accuracy
from ..siamese.mining import PairSampler, batch_hard_triplets
from .presets import get_preset
from ..serialization import load_checkpoint, read_checkpoint_meta, save_checkpoint, write_text_atomic
from ..siamese.networks import KochHead, TwinNetwork
from ..engine.tensor import Tensor, no_grad

LOSSES = ("contrastive", "contrastive-linear", "triplet", "koch")
OPTIMIZERS = ("sgd", "adam")


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in every checkpoint."""

    preset: str = "digits"
    loss: str = "contrastive"
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 10
    steps_per_epoch: int = 50
    batch: int = 64  # pairs per step; images per step for the triplet loss
    margin: float = 1.0
    augment: bool = False
    device: str = "cpu"
    seed: int = 0
    val_way: int = 5
    val_episodes: int = 200

    def __post_init__(self):
        get_preset(self.preset)
        backend.check_device(self.device)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name in ("lr", "margin"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("epochs", "steps_per_epoch", "batch", "val_way", "val_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.loss == "triplet" and self.batch < 8:
            raise ValueError(f"batch must be at least 8 for the triplet loss (classes x 4 images), got {self.batch}")

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class SiameseModel(nn.Module):
    """A preset's tower, plus Koch's head when the loss is "koch"."""

    def __init__(self, config, rng=None):
        super().__init__()
        preset = get_preset(config.preset)
        self.tower = preset.build(rng)
        self.head = KochHead(preset.embedding_size, rng=rng) if config.loss == "koch" else None
        self.twin = TwinNetwork(self.tower, head=self.head)

    def embed(self, images, batch_size=256):
        """Embeddings of a NumPy array of images, in eval mode, without a graph."""
        was_training = self.training
        self.eval()
        device = self.tower_device()
        with no_grad():
            chunks = [self.tower(Tensor(backend.to_device(images[i:i + batch_size], device))).data
                      for i in range(0, len(images), batch_size)]
        self.train(was_training)
        return backend.xp_of(chunks[0]).concatenate(chunks)

    def tower_device(self):
        return next(iter(self.parameters())).device

    def _score_embeddings(self, e1, e2):
        """Scores of aligned rows, higher = more alike: -L2 distance, or Koch's logit."""
        with no_grad():
            if self.head is None:
                return -backend.to_numpy(l2_distance(Tensor(e1), Tensor(e2)).data)
            return backend.to_numpy(self.head(Tensor(e1), Tensor(e2)).data)

    def pair_scores(self, left, right):
        """Scores of image pairs (row i of ``left`` with row i of ``right``)."""
        return self._score_embeddings(self.embed(left), self.embed(right))

    def similarity(self, queries, supports):
        """(n_query, n_support) scores of every query against every support image."""
        q, s = self.embed(queries), self.embed(supports)
        if self.head is None:
            return -backend.to_numpy(pairwise_distances(q, s))
        xp = backend.xp_of(q)
        scores = self._score_embeddings(xp.repeat(q, len(s), axis=0), xp.tile(s, (len(q), 1)))
        return scores.reshape(len(q), len(s))


def make_optimizer(config, model):
    if config.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                         weight_decay=config.weight_decay)
    return optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def class_balanced_batch(labels, batch, rng, per_class=4):
    """Indices of ``batch // per_class`` random classes x ``per_class`` images each (for batch-hard mining)."""
    classes, counts = np.unique(labels, return_counts=True)
    eligible = classes[counts >= per_class]
    n_classes = min(batch // per_class, len(eligible))
    if n_classes < 2:
        raise ValueError(f"the triplet loss needs at least 2 classes with {per_class} images; found {len(eligible)}")
    chosen = rng.choice(eligible, size=n_classes, replace=False)
    return np.concatenate([rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in chosen])


class Trainer:
    """Runs epochs of training on ``train`` (LabelledImages), validating on ``val``."""

    def __init__(self, config, train, val, out_dir, augment_fn=None, progress=True):
        self.config, self.train_set, self.val_set = config, train, val
        self.out_dir = Path(out_dir)
        self.augment_fn = augment_fn
        self.progress = progress
        self.rng = np.random.default_rng(config.seed)
        self.model = SiameseModel(config, rng=self.rng).to(config.device)
        self.optimizer = make_optimizer(config, self.model)
        self.pairs = PairSampler(train.labels, seed=config.seed)
        self.history, self.start_epoch, self.best_accuracy = [], 0, -math.inf

    # ----- checkpoints ---------------------------------------------------------------
    def save(self, name, **extra):
        save_checkpoint(self.out_dir / name, self.model, self.optimizer, config=asdict(self.config),
                        history=self.history, epoch=len(self.history), best_accuracy=self.best_accuracy, **extra)

    def resume(self):
        """Continue from ``last.npz`` in the output folder."""
        path = self.out_dir / "last.npz"
        if not path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {path}")
        meta = load_checkpoint(path, self.model, self.optimizer)
        if TrainConfig.from_dict(meta["config"]).preset != self.config.preset:
            raise ValueError(f"--resume: {path} was trained with preset {meta['config']['preset']!r}, "
                             f"not {self.config.preset!r}")
        self.history, self.start_epoch = meta["history"], meta["epoch"]
        self.best_accuracy = meta["best_accuracy"]

    # ----- one step -------------------------------------------------------------------
    def _images(self, index):
        images = self.train_set.images[index]
        if self.augment_fn is not None:
            images = self.augment_fn(images, self.rng)
        return Tensor(backend.to_device(images, self.config.device))

    def loss(self):
        """The loss of one freshly sampled batch (a Tensor with a graph)."""
        c = self.config
        if c.loss == "triplet":
            index = class_balanced_batch(self.train_set.labels, c.batch, self.rng)
            embeddings = self.model.tower(self._images(index))
            anchor, positive, negative = batch_hard_triplets(embeddings.data, self.train_set.labels[index])
            return triplet_loss(embeddings[anchor], embeddings[positive], embeddings[negative], margin=c.margin)
        left, right, same = self.pairs.sample(c.batch)
        same = Tensor(backend.to_device(same.astype(np.float32), c.device))
        out = self.model.twin(self._images(left), self._images(right))
        if c.loss == "koch":
            return bce_with_logits(out, same)
        distance = l2_distance(*out)
        fn = contrastive_loss if c.loss == "contrastive" else contrastive_linear_loss
        return fn(distance, same, margin=c.margin)

    def validate(self):
        c = self.config
        embeddings = backend.to_numpy(self.model.embed(self.val_set.images))
        if self.model.head is None:
            result = n_way_k_shot_accuracy(embeddings, self.val_set.labels, n_way=c.val_way, k_shot=1,
                                           n_episodes=c.val_episodes, seed=c.seed)
        else:
            result = n_way_k_shot_accuracy(self.val_set.images, self.val_set.labels, n_way=c.val_way, k_shot=1,
                                           n_episodes=c.val_episodes, seed=c.seed, score_fn=self.model.similarity)
        return result.accuracy

    # ----- the loop ---------------------------------------------------------------------
    def fit(self):
        """Train the remaining epochs; Ctrl-C saves ``last.npz`` and re-raises."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.model.train()
        try:
            for epoch in range(self.start_epoch, self.config.epochs):
                self._run_epoch(epoch)
        except KeyboardInterrupt:
            self.save("last.npz", interrupted=True)
            raise
        return self.history

    def _run_epoch(self, epoch):
        from tqdm.auto import tqdm

        c = self.config
        start, losses = time.perf_counter(), []
        # a bar only on a terminal; logs (CI, files) get the one summary line per epoch
        bar = tqdm(range(c.steps_per_epoch), desc=f"epoch {epoch + 1}/{c.epochs}", unit="step", leave=False,
                   disable=not (self.progress and sys.stderr.isatty()), mininterval=0.5)
        for _ in bar:
            loss = self.loss()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):
                raise FloatingPointError(f"the loss became {losses[-1]} at epoch {epoch + 1}; lower --lr")
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", pairs_per_s=f"{c.batch * len(losses) / elapsed:.0f}")
        seconds = time.perf_counter() - start
        accuracy = self.validate()
        self.history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                             f"val_{c.val_way}way_accuracy": accuracy, "seconds": round(seconds, 3)})
        if accuracy > self.best_accuracy:
            self.best_accuracy = accuracy
            self.save("best.npz")
        self.save("last.npz")
        write_history(self.out_dir, self.history)
        if self.progress:
            print(f"epoch {epoch + 1}/{c.epochs}: loss {self.history[-1]['train_loss']:.4f}, "
                  f"val {c.val_way}-way one-shot {accuracy:.1%} ({seconds:.1f} s)")


def write_history(out_dir, history):
    """history.json and history.csv, one row per epoch."""
    write_text_atomic(Path(out_dir) / "history.json", json.dumps(history, indent=1))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(Path(out_dir) / "history.csv", buffer.getvalue())


def read_history(out_dir):
    return json.loads((Path(out_dir) / "history.json").read_text())


def load_model(path, device="cpu"):
    """Rebuild a trained model from a checkpoint; returns (model, config)."""
    config = TrainConfig.from_dict(read_checkpoint_meta(path)["config"])
    config.device = device
    model = SiameseModel(config)
    load_checkpoint(path, model)
    return model.to(device), config
