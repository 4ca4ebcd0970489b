"""The model a training run builds from its config, and loading it back from a checkpoint."""
import contextlib

from .. import nn
from ..data.augment import ONE_PIXEL_SHIFTS, shifted
from ..engine import backend
from ..engine.tensor import Tensor, no_grad
from ..siamese.distances import distance_op, pairwise_distances
from ..siamese.losses import expected_score
from ..siamese.networks import KochHead, RelationModule, TwinNetwork
from ..siamese.text import DistributionHead, TextTwin
from .checkpoints import read_training_checkpoint
from .presets import get_preset

# the heads that score pairs themselves, by loss: Koch's, a relation module (Sung et al. 2018) on the tower's
# feature maps, Tai et al.'s distribution over relatedness levels on a pair of sentence embeddings
HEADS = {"koch": KochHead, "relation": RelationModule,
         "relatedness": lambda features, rng: DistributionHead(features, hidden=100, rng=rng)}


class SiameseModel(nn.Module):
    """A preset's tower, plus, for some losses, a head that scores pairs (``HEADS``).

    Without a head, embeddings are compared by ``metric``, the distance the loss trained them for.
    The recipe's settings shape the tower: ``standardize`` puts a ``Standardize`` layer first,
    ``normalize`` an ``L2Normalize`` layer last; ``tta`` makes ``embed`` average over shifts.
    A tower over sentences takes them as strings: ``vocabulary`` (``tinysiam.data.sick.Vocabulary``, of the
    training sentences) turns them into word ids.
    """

    def __init__(self, config, rng=None, vocabulary=None):
        super().__init__()
        self.metric, self.tta, self.vocabulary = config.metric, config.tta, vocabulary
        preset = get_preset(config.preset)
        if preset.items == "sentences":
            if vocabulary is None:
                raise ValueError(f"the {config.preset} preset needs the vocabulary of its training sentences")
            self.tower = preset.build(rng, vocab_size=len(vocabulary))
        else:
            self.tower = preset.build(rng)
        if config.standardize:
            self.tower = nn.Sequential(nn.Standardize(), *self.tower)
        if config.normalize:
            self.tower = nn.Sequential(*self.tower, nn.L2Normalize())
        self.head = HEADS[config.loss](preset.embedding_size, rng=rng) if config.loss in HEADS else None
        self.twin = (TextTwin if preset.items == "sentences" else TwinNetwork)(self.tower, head=self.head)

    @contextlib.contextmanager
    def evaluating(self):
        """Eval mode and no graph for the block, then the mode it had: scoring never depends on the batch
        (a head with batch norm, the relation module's, would otherwise score a pair by its batch-mates)."""
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                yield self
        finally:
            self.train(was_training)

    def embed(self, items, batch_size=256):
        """Embeddings of a NumPy array of images (or sequences, or a list of sentences), in eval mode, without
        a graph (with ``tta``: the mean of the embeddings of each image and its four one-pixel shifts)."""
        with self.evaluating():
            chunks = [self._embed_batch(items[i:i + batch_size]) for i in range(0, len(items), batch_size)]
        return backend.xp_of(chunks[0]).concatenate(chunks)

    def encode(self, sentences):
        """(ids, lengths) of ``sentences`` (strings) as the tower takes them, on its device."""
        ids, lengths = self.vocabulary.encode_batch(sentences)
        device = self.tower_device()
        return backend.to_device(ids, device), backend.to_device(lengths, device)

    def _embed_batch(self, items):
        if self.vocabulary is not None:
            return self.tower(*self.encode(items)).data
        images = backend.to_device(items, self.tower_device())
        if not self.tta:
            return self.tower(Tensor(images)).data
        views = [self.tower(Tensor(shifted(images, dy, dx))).data for dy, dx in ONE_PIXEL_SHIFTS]
        return sum(views) / len(views)

    def tower_device(self):
        return next(iter(self.parameters())).device

    def score_embeddings(self, e1, e2):
        """Scores of aligned rows of two embedding arrays, higher = more alike: -distance, Koch's logit, a
        relation score, or the relatedness (1-5) that Tai et al.'s head predicts."""
        device = self.tower_device()
        e1, e2 = Tensor(backend.to_device(e1, device)), Tensor(backend.to_device(e2, device))
        with self.evaluating():
            scores = distance_op(self.metric)(e1, e2) * -1.0 if self.head is None else self.head(e1, e2)
        return expected_score(scores) if isinstance(self.head, DistributionHead) else backend.to_numpy(scores.data)

    @property
    def score_kind(self):
        """What ``score_embeddings`` returns, higher = more alike: "neg_l2", "neg_l1" or "neg_cosine" (minus the
        distance the embeddings are compared by), "koch_logit" (Koch's head), "relation_score" (Sung et al.) or
        "relatedness" (Tai et al.'s head)."""
        if isinstance(self.head, KochHead):
            return "koch_logit"
        if isinstance(self.head, RelationModule):
            return "relation_score"
        if isinstance(self.head, DistributionHead):
            return "relatedness"
        return f"neg_{self.metric}"

    def pair_scores(self, left, right):
        """Scores of image pairs (row i of ``left`` with row i of ``right``)."""
        return self.score_embeddings(self.embed(left), self.embed(right))

    def embedding_similarity(self, queries, supports):
        """(n_query, n_support) scores of every query embedding against every support embedding."""
        if self.head is None:
            return -backend.to_numpy(pairwise_distances(queries, supports, self.metric))
        xp = backend.xp_of(queries)
        every_support = xp.concatenate([supports] * len(queries))  # query i meets support j at row i * n + j
        scores = self.score_embeddings(xp.repeat(queries, len(supports), axis=0), every_support)
        return scores.reshape(len(queries), len(supports))

    def similarity(self, queries, supports):
        """(n_query, n_support) scores of every query image against every support image."""
        return self.embedding_similarity(self.embed(queries), self.embed(supports))


def load_model(path, device="cpu"):
    """Rebuild a trained model from a checkpoint on ``device``, in eval mode; returns (model, config).

    The checkpoint may come from any device. It is read by ``checkpoints.read_training_checkpoint``, which
    refuses, naming the file, anything but a training checkpoint whose weights fit its config and are finite.
    """
    checkpoint = read_training_checkpoint(path, device)
    return checkpoint.model(), checkpoint.config
