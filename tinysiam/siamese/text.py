"""A Siamese sentence encoder: a time-delay (1-D convolution) tower over word embeddings, and relatedness heads.

A sentence is a row of word ids, padded with ``padding_id`` to the longest
sentence of its batch, and its length. ``TextConvTower`` embeds the words,
convolves them over time with one or more kernel widths (Bromley et al.
1993's time-delay net, Kim 2014's several widths), pools each feature map over
the sentence's own steps only (masked max and/or mean), and maps the pooled
features to the sentence's embedding. ``TextTwin`` runs that one tower over
both sentences of each pair in one pass; its head scores the pair:
``DistributionHead`` (Tai et al. 2015: a small net on |u - v| and u * v giving
a distribution over the score levels, trained with ``kl_divergence_loss``) or
``ExpL1Head`` (Mueller & Thyagarajan 2016, MaLSTM: exp(-|u - v|_1) mapped onto
the score range, trained with ``mse_loss``).
"""
import numpy as np

from .. import nn
from ..engine import ops
from ..engine.backend import xp_of
from ..engine.checks import check_integer, check_number
from ..engine.embedding import check_ids, masked_max, masked_mean
from ..engine.tensor import Tensor
from .distances import check_embeddings, l1_distance

POOLINGS = ("max", "mean")


class TextConvTower(nn.Module):
    """ids (N, L) and lengths (N,) -> sentence embeddings (N, out_dim).

    Embedding(vocab_size, embed_dim) -> Dropout(embed_dropout) -> for each kernel width k: Conv1d(embed_dim,
    channels, k) over the whole sentence ("wide": padding k - 1, so every window holding at least one word
    counts; a sentence of n words has n + k - 1 of them) -> ReLU -> masked max and/or mean over those
    windows -> concatenated -> Dropout(dropout) -> Linear(-> out_dim) -> tanh (``out_dim=None``: the
    pooled features themselves). In training, ``word_dropout`` replaces each word by ``unknown_id`` with
    that probability (drawn from ``rng``, or the shared generator of ``nn.init.seed``). The embeddings
    start from N(0, embed_std^2).

    The defaults are the settings SICK's trial pairs chose (docs/sick.md): no projection, and embeddings
    starting at std 0.1: with Adam at 3e-3, std 1 did not learn on SICK (trial r 0.08 after 15 epochs) where
    std 0.1 reached 0.78; a tanh projection to 150 features cost 0.02-0.04 of trial r.
    The padding row of the embedding reads as zeros, like the convolution's own zero padding, so a
    sentence's embedding does not depend on how far its batch is padded.
    """

    def __init__(self, vocab_size, embed_dim=150, channels=100, widths=(1, 2, 3), pooling=POOLINGS, out_dim=None,
                 dropout=0.0, embed_dropout=0.0, word_dropout=0.0, padding_id=0, unknown_id=1, embed_std=0.1,
                 rng=None):
        super().__init__()
        check_integer("TextConvTower: channels", channels, low=1)
        widths = tuple(widths)
        if not widths:
            raise ValueError("TextConvTower: widths must name at least one kernel width")
        for k in widths:
            check_integer("TextConvTower: each kernel width", k, low=1)
        pooling = (pooling,) if isinstance(pooling, str) else tuple(pooling)
        if not pooling or any(p not in POOLINGS for p in pooling):
            raise ValueError(f"TextConvTower: pooling must be one or both of {POOLINGS}, got {pooling!r}")
        check_number("TextConvTower: word_dropout", word_dropout, low=0, high=1)
        check_integer("TextConvTower: unknown_id", unknown_id, low=0)
        self.widths, self.pooling, self.word_dropout = widths, pooling, word_dropout
        self.padding_id, self.unknown_id, self.rng = padding_id, unknown_id, rng
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_id, std=embed_std, channels_first=True, rng=rng)
        self.embed_dropout = nn.Dropout(embed_dropout, rng=rng)
        for k in widths:
            setattr(self, f"conv{k}", nn.Conv1d(embed_dim, channels, k, padding=k - 1, rng=rng))
        pooled = channels * len(widths) * len(pooling)
        self.pooled_dropout = nn.Dropout(dropout, rng=rng)
        self.project = None if out_dim is None else nn.Linear(pooled, out_dim, init="glorot", rng=rng)
        self.out_dim = pooled if out_dim is None else out_dim

    def forward(self, ids, lengths):
        ids = check_ids("TextConvTower", ids, self.embedding.vocab_size, self.embedding.weight).data
        xp = xp_of(ids)
        lengths = xp.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
        if ids.ndim != 2 or lengths.shape != ids.shape[:1]:
            raise ValueError(f"TextConvTower: expected ids (N, L) and lengths (N,), got {ids.shape} and "
                             f"{lengths.shape}")
        if self.training and self.word_dropout > 0:
            drop = xp.asarray(nn.init.get_rng(self.rng).random(ids.shape) < self.word_dropout)
            ids = xp.where(drop & (ids != self.padding_id), self.unknown_id, ids)
        x = self.embed_dropout(self.embedding(ids))  # (N, embed_dim, L)
        pooled = []
        for k in self.widths:
            h = getattr(self, f"conv{k}")(x).relu()  # (N, channels, L + k - 1)
            windows = lengths + (k - 1)  # the windows holding at least one word of each sentence
            pooled += [masked_max(h, windows) if p == "max" else masked_mean(h, windows) for p in self.pooling]
        z = self.pooled_dropout(ops.concatenate(pooled, axis=1) if len(pooled) > 1 else pooled[0])
        return z if self.project is None else self.project(z).tanh()

    def extra_repr(self):
        return (f"widths={self.widths}, pooling={self.pooling}, word_dropout={self.word_dropout}, "
                f"out_dim={self.out_dim}")


def pad_batch(rows, padding_id=0):
    """Sequences of ids (lists or 1-D arrays, each non-empty) -> (ids (N, L) int64 padded with ``padding_id`` to
    the longest, lengths (N,) int64)."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    if len(rows) == 0 or (lengths == 0).any():
        raise ValueError("pad_batch: needs at least one sequence and no empty one"
                         + (f" (sequence {int(np.argmin(lengths))} is empty)" if len(rows) else ""))
    ids = np.full((len(rows), int(lengths.max())), padding_id, dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = r
    return ids, lengths


def _padded_to(ids, length, padding_id):
    return ids if ids.shape[1] == length else xp_of(ids).pad(ids, ((0, 0), (0, length - ids.shape[1])),
                                                             constant_values=padding_id)


def _array(x):
    return x.data if isinstance(x, Tensor) else x if hasattr(x, "ndim") else np.asarray(x)


class TextTwin(nn.Module):
    """``forward(ids_a, lengths_a, ids_b, lengths_b)``: one tower over both sentences of each pair, in one
    pass over the 2N sentences (shared weights: their gradients add up), then ``head(u, v)``; without a head,
    the two embeddings (u, v)."""

    def __init__(self, tower, head=None):
        super().__init__()
        self.tower, self.head = tower, head

    def embed_pair(self, ids_a, lengths_a, ids_b, lengths_b):
        ids_a, ids_b, lengths_a, lengths_b = (_array(x) for x in (ids_a, ids_b, lengths_a, lengths_b))
        if ids_a.ndim != 2 or ids_b.ndim != 2 or len(ids_a) != len(ids_b) or len(ids_a) == 0:
            raise ValueError(f"TextTwin: expected two non-empty (N, L) id batches with one N, got {ids_a.shape} "
                             f"and {ids_b.shape}")
        xp = xp_of(ids_a)
        length = max(ids_a.shape[1], ids_b.shape[1])
        pad = self.tower.padding_id
        ids = xp.concatenate([_padded_to(ids_a, length, pad), _padded_to(ids_b, length, pad)])
        both = self.tower(ids, xp.concatenate([lengths_a, lengths_b]))  # one pass over the 2N sentences
        n = len(ids_a)
        return both[:n], both[n:]

    def forward(self, ids_a, lengths_a, ids_b, lengths_b):
        u, v = self.embed_pair(ids_a, lengths_a, ids_b, lengths_b)
        return (u, v) if self.head is None else self.head(u, v)


class DistributionHead(nn.Module):
    """Tai et al. 2015: h = sigmoid(W [|u - v|, u * v] + b), logits = W' h + b' over ``levels`` score levels.

    Train with ``kl_divergence_loss(logits, score_distribution(scores))``; the predicted score is
    ``expected_score(logits)`` = sum_k softmax(logits)_k * level_k. ``dropout`` drops features of the pair,
    [|u - v|, u * v], in training: one mask per pair, where dropping u and v apart would make even a
    sentence and itself look different.
    """

    def __init__(self, features, hidden=50, levels=5, dropout=0.0, rng=None):
        super().__init__()
        check_integer("DistributionHead: levels", levels, low=2)
        self.features, self.hidden, self.levels = features, hidden, levels
        self.dropout = nn.Dropout(dropout, rng=rng)
        self.hidden_layer = nn.Linear(2 * features, hidden, init="glorot", rng=rng)
        self.out = nn.Linear(hidden, levels, init="glorot", rng=rng)

    def forward(self, u, v):
        check_embeddings("DistributionHead", u=u, v=v)
        pair = ops.concatenate([(u - v).abs(), u * v], axis=1)
        return self.out(self.hidden_layer(self.dropout(pair)).sigmoid())

    def extra_repr(self):
        return f"features={self.features}, hidden={self.hidden}, levels={self.levels}, dropout={self.dropout.p}"


class ExpL1Head(nn.Module):
    """MaLSTM (Mueller & Thyagarajan 2016): score = low + (high - low) exp(-|u - v|_1 / scale), in (low, high].
    No parameters; train with ``mse_loss(score, gold)``. MaLSTM's scale is 1 with 50-dimensional embeddings;
    wider embeddings lie farther apart, and a larger scale keeps exp(-d / scale) away from 0, where it has
    no slope left."""

    def __init__(self, low=1.0, high=5.0, scale=1.0):
        super().__init__()
        check_number("ExpL1Head: low", low)
        check_number("ExpL1Head: high", high, low=low, low_included=False)
        check_number("ExpL1Head: scale", scale, low=0, low_included=False)
        self.low, self.high, self.scale = low, high, scale

    def forward(self, u, v):
        return (l1_distance(u, v) * (-1.0 / self.scale)).exp() * (self.high - self.low) + self.low

    def extra_repr(self):
        return f"low={self.low}, high={self.high}, scale={self.scale}"
