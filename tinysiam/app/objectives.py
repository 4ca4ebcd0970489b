"""What one training step optimises, for each ``--loss``: which examples it draws and how it scores them.

Every objective draws with the trainer's one random generator, so a checkpoint that
saves that generator's state resumes the exact stream of batches.
"""
import numpy as np

from ..engine import backend
from ..engine.ops import concatenate
from ..engine.tensor import Tensor
from ..siamese.distances import l1_distance, l2_distance
from ..siamese.losses import (
    bce_with_logits,
    chopra_energy_loss,
    contrastive_linear_loss,
    contrastive_loss,
    kl_divergence_loss,
    mse_loss,
    nt_xent_loss,
    score_distribution,
    triplet_loss,
)
from ..siamese.mining import PairSampler, batch_hard_triplets
from .errors import UserError


class PairObjective:
    """Balanced pairs (half of one class, Chopra 2005): a distance loss on the two embeddings, or Koch's BCE.

    contrastive (Hadsell 2006) and contrastive-linear use the L2 distance; chopra (Chopra 2005) the L1
    distance as its energy, with ``margin`` as its scale Q; koch the head's logit.
    """

    def __init__(self, config, train, rng):
        self.config, self.labels = config, train.labels
        self.pairs = PairSampler(self.labels, seed=rng)  # default_rng(generator) is that generator: one shared stream

    def loss(self, model, batch):
        """The loss of one fresh batch; ``batch(index)`` gives those training images as a Tensor."""
        c = self.config
        left, right, same = self.pairs.sample(c.batch)
        same = Tensor(backend.to_device(same.astype(np.float32), c.device))
        out = model.twin(batch(left), batch(right))
        if c.loss == "koch":
            return bce_with_logits(out, same)
        if c.loss == "chopra":
            return chopra_energy_loss(l1_distance(*out), same, q=c.margin)
        loss_fn = contrastive_loss if c.loss == "contrastive" else contrastive_linear_loss
        return loss_fn(l2_distance(*out), same, margin=c.margin)


class BatchHardTripletObjective:
    """Hermans et al. 2017: P classes x K images per batch (K = ``per_class``, P = ``batch // K``); each anchor's
    hardest positive and negative."""

    def __init__(self, config, train, rng):
        self.config, self.labels, self.rng = config, train.labels, rng
        self.per_class = config.per_class
        classes, counts = np.unique(self.labels, return_counts=True)
        self.eligible = classes[counts >= self.per_class]
        if len(self.eligible) < 2:
            raise UserError(f"--loss triplet with --per-class {self.per_class} needs at least 2 classes with "
                            f"{self.per_class} images; the training set has {len(self.eligible)}")

    def loss(self, model, batch):
        index = self.class_balanced_batch()
        embeddings = model.tower(batch(index))
        anchor, positive, negative = batch_hard_triplets(embeddings.data, self.labels[index])
        return triplet_loss(embeddings[anchor], embeddings[positive], embeddings[negative], margin=self.config.margin)

    def class_balanced_batch(self):
        """Indices of ``batch // per_class`` random classes x ``per_class`` random images of each."""
        n_classes = min(self.config.batch // self.per_class, len(self.eligible))
        chosen = self.rng.choice(self.eligible, size=n_classes, replace=False)
        return np.concatenate([self.rng.choice(np.flatnonzero(self.labels == c), size=self.per_class, replace=False)
                               for c in chosen])


class NTXentObjective:
    """SimCLR (Chen et al. 2020): two augmented views of each of ``batch`` images; a view's positive is its
    other view, its negatives the other 2 x batch - 2 views. Labels are not used."""

    def __init__(self, config, train, rng):
        self.config, self.rng, self.n = config, rng, len(train)
        if config.batch > self.n:
            raise UserError(f"--batch {config.batch} is larger than the training set ({self.n} images)")

    def loss(self, model, batch):
        index = self.rng.choice(self.n, size=self.config.batch, replace=False)
        views = model.tower(concatenate([batch(index), batch(index)]))  # each call draws its own augmentation
        n = len(index)
        return nt_xent_loss(views[:n], views[n:], temperature=self.config.temperature)


class RelationObjective:
    """Sung et al. 2018: an N-way K-shot episode per step. The relation module scores every query against
    every class (the sum of its K support feature maps); MSE pulls the score to 1 for the query's class, 0 else."""

    def __init__(self, config, train, rng):
        self.config, self.labels, self.rng = config, train.labels, rng
        self.way, self.shot = config.way, config.shot
        self.queries = config.batch // config.way - config.shot
        classes, counts = np.unique(self.labels, return_counts=True)
        self.eligible = classes[counts >= self.shot + self.queries]
        if len(self.eligible) < self.way:
            raise UserError(f"--way {self.way} --shot {self.shot} with {self.queries} queries per class (--batch "
                            f"{config.batch}) needs {self.way} classes with {self.shot + self.queries} images; "
                            f"the training set has {len(self.eligible)}")

    def loss(self, model, batch):
        way, shot, queries = self.way, self.shot, self.queries
        classes = self.rng.choice(self.eligible, size=way, replace=False)
        picks = np.stack([self.rng.choice(np.flatnonzero(self.labels == c), size=shot + queries, replace=False)
                          for c in classes])  # (way, shot + queries)
        features = model.tower(batch(np.concatenate([picks[:, :shot].ravel(), picks[:, shot:].ravel()])))
        classes_maps = features[:way * shot].reshape(way, shot, *features.shape[1:]).sum(axis=1)
        query_maps = features[way * shot:]  # (way * queries, C, H, W), grouped by class
        n = way * queries
        query_of, class_of = np.repeat(np.arange(n), way), np.tile(np.arange(way), n)  # every (query, class) pair
        scores = model.head(query_maps[query_of], classes_maps[class_of])
        return mse_loss(scores, (query_of // queries == class_of).astype(np.float32))  # 1 for the query's class


class RelatednessObjective:
    """Tai et al. 2015: ``batch`` random training pairs of sentences a step; the twin's head gives a distribution
    over the relatedness levels 1-5, pulled by KL divergence to each pair's sparse target distribution (its gold
    score split between the two levels around it)."""

    def __init__(self, config, train, rng):
        self.config, self.rng, self.pairs = config, rng, train
        self.targets = score_distribution(train.scores).astype(np.float32)
        if config.batch > len(train):
            raise UserError(f"--batch {config.batch} is larger than the training set ({len(train)} pairs)")

    def loss(self, model, batch):
        index = self.rng.choice(len(self.pairs), size=self.config.batch, replace=False)
        logits = model.twin(*model.encode([self.pairs.sentences_a[i] for i in index]),
                            *model.encode([self.pairs.sentences_b[i] for i in index]))
        return kl_divergence_loss(logits, backend.to_device(self.targets[index], self.config.device))


OBJECTIVES = {"contrastive": PairObjective, "contrastive-linear": PairObjective, "chopra": PairObjective,
              "koch": PairObjective, "triplet": BatchHardTripletObjective, "nt-xent": NTXentObjective,
              "relation": RelationObjective, "relatedness": RelatednessObjective}


def make_objective(config, train, rng):
    """The objective of ``config.loss`` over the training set ``train`` (labelled items, or scored pairs)."""
    return OBJECTIVES[config.loss](config, train, rng)
