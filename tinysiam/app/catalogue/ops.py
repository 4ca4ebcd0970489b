"""Catalogue entries for the elementary ops (inputs kept away from kinks and ties).

Each entry's name starts with the op's name, lower case, as in ``ops.py``.
"""
import numpy as np

from ...engine import ops, textbook
from ...engine.conv import conv2d, max_pool2d
from ...engine.conv1d import avg_pool1d, conv1d, max_pool1d
from ...engine.embedding import embedding, masked_max, masked_mean
from ...siamese.losses import kl_divergence_loss, score_distribution
from . import Check


def away_from_zero(rng, shape, low=0.1, high=2.0):
    """Values with |x| in [low, high] and random signs: far from the kinks of abs, relu, clip."""
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


def distinct(rng, shape):
    """Values a clear step apart, in random order: no ties for max or max-pooling."""
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.1 + rng.uniform(-0.02, 0.02, shape)


def checks(rng):
    n = rng.standard_normal

    def positive(*shape):
        return rng.uniform(0.5, 2.0, shape)

    def op(name, fn, *inputs):
        return Check(name, "op", fn, list(inputs))

    # clip's input: half inside [-0.05, 0.05], half well outside
    clip_input = np.where(rng.random((3, 4)) < 0.5, rng.uniform(-0.03, 0.03, (3, 4)), away_from_zero(rng, (3, 4)))
    return [
        op("add (3,4)+(4,)", ops.add, n((3, 4)), n(4)),
        op("add (2,1,3)+(4,1)", ops.add, n((2, 1, 3)), n((4, 1))),
        op("sub (3,1)-(1,4)", ops.sub, n((3, 1)), n((1, 4))),
        op("mul (3,1)*(1,4)", ops.mul, n((3, 1)), n((1, 4))),
        op("mul (2,3,4)*(3,1)", ops.mul, n((2, 3, 4)), n((3, 1))),
        op("mul by a Python number", lambda a: 2.5 * a, n((2, 3))),
        op("div (3,4)/(4,)", ops.div, n((3, 4)), positive(4)),
        op("div (1,4)/(3,1)", ops.div, n((1, 4)), positive(3, 1)),
        op("neg", lambda a: -a, n((2, 5))),
        op("pow 3", lambda a: a**3, n((3, 3))),
        op("pow 0.5 (positive inputs)", lambda a: a**0.5, positive(4, 2)),
        op("pow -1.5 (positive inputs)", lambda a: a**-1.5, positive(3)),
        op("matmul (3,4)@(4,2)", ops.matmul, n((3, 4)), n((4, 2))),
        op("matmul (1,5)@(5,1)", ops.matmul, n((1, 5)), n((5, 1))),
        op("matmul batched (2,3,4)@(4,5)", ops.matmul, n((2, 3, 4)), n((4, 5))),
        op("matmul batched (2,1,3,4)@(3,4,2)", ops.matmul, n((2, 1, 3, 4)), n((3, 4, 2))),
        op("sum all", lambda a: a.sum(), n((3, 4))),
        op("sum axis=1 keepdims", lambda a: a.sum(axis=1, keepdims=True), n((3, 4, 2))),
        op("sum axis=(0,-1)", lambda a: a.sum(axis=(0, -1)), n((3, 4, 2))),
        op("mean all", lambda a: a.mean(), n((5,))),
        op("mean axis=(0,2)", lambda a: a.mean(axis=(0, 2)), n((3, 4, 2))),
        op("mean axis=-1 keepdims", lambda a: a.mean(axis=-1, keepdims=True), n((2, 3))),
        op("max axis=1", lambda a: a.max(axis=1), distinct(rng, (3, 5))),
        op("max axis=(0,2) keepdims", lambda a: a.max(axis=(0, 2), keepdims=True), distinct(rng, (2, 3, 4))),
        op("max all keepdims", lambda a: a.max(keepdims=True), distinct(rng, (2, 3))),
        op("reshape (2,3,4)->(4,6)", lambda a: a.reshape(4, 6), n((2, 3, 4))),
        op("reshape -1", lambda a: a.reshape(-1, 2), n((3, 2, 2))),
        op("reshape by squeeze axis=(0,2)", lambda a: a.squeeze((0, 2)), n((1, 3, 1, 2))),
        op("transpose (2,0,1)", lambda a: a.transpose(2, 0, 1), n((2, 3, 4))),
        op("transpose (-1,0,1)", lambda a: a.transpose(-1, 0, 1), n((2, 3, 4))),
        op("transpose .T", lambda a: a.T, n((3, 5))),
        op("getitem slice", lambda a: a[1:, ::2], n((4, 5))),
        op("getitem negative step and None", lambda a: a[::-2, None, 1], n((5, 3))),
        op("getitem repeated indices", lambda a: a[np.array([0, 2, 0, 0])], n((3, 4))),
        op("getitem pairs of indices", lambda a: a[np.array([0, 1, 1]), np.array([2, 0, 2])], n((2, 3))),
        op("getitem slice and repeated indices", lambda a: a[1:, np.array([-1, 0, -1])], n((3, 4))),
        op("concatenate axis=1", lambda a, b: ops.concatenate([a, b], axis=1), n((2, 3)), n((2, 1))),
        op("concatenate three, axis=-1", lambda a, b, c: ops.concatenate([a, b, c], axis=-1),
           n((2, 2, 1)), n((2, 2, 3)), n((2, 2, 2))),
        op("stack axis=0", lambda a, b, c: ops.stack([a, b, c]), n((2, 3)), n((2, 3)), n((2, 3))),
        op("stack axis=-1", lambda a, b: ops.stack([a, b], axis=-1), n((2, 3)), n((2, 3))),
        op("astype float64", lambda a: a.astype(np.float64), n((2, 3))),
        op("exp", lambda a: a.exp(), n((3, 4))),
        op("log (positive inputs)", lambda a: a.log(), positive(3, 4)),
        op("sqrt (positive inputs)", lambda a: a.sqrt(), positive(3, 4)),
        op("abs", lambda a: a.abs(), away_from_zero(rng, (3, 4))),
        op("relu", lambda a: a.relu(), away_from_zero(rng, (3, 4))),
        op("sigmoid", lambda a: a.sigmoid(), n((3, 4))),
        op("sigmoid saturated +-30", lambda a: a.sigmoid(), np.array([-30.0, -12.0, 12.0, 30.0])),
        op("tanh", lambda a: a.tanh(), n((3, 4))),
        op("tanh saturated +-30", lambda a: a.tanh(), np.array([-30.0, -8.0, 8.0, 30.0])),
        op("clip [-0.05, 0.05]", lambda a: a.clip(-0.05, 0.05), clip_input),
        op("clip low only", lambda a: a.clip(low=0.0), away_from_zero(rng, (2, 5))),
        op("maximum 0.5", lambda a: a.maximum(0.5), 0.5 + away_from_zero(rng, (3, 4))),
        op("conv2d im2col stride 1 pad 0", lambda x, w, b: conv2d(x, w, b, algorithm="im2col"),
           n((2, 3, 6, 5)), n((4, 3, 3, 2)), n(4)),
        op("conv2d im2col stride 2 pad 1", lambda x, w, b: conv2d(x, w, b, stride=2, padding=1),
           n((2, 2, 7, 7)), n((3, 2, 3, 3)), n(3)),
        op("conv2d im2col stride (1,2) pad (2,0), no bias", lambda x, w: conv2d(x, w, stride=(1, 2), padding=(2, 0)),
           n((1, 2, 5, 6)), n((2, 2, 2, 3))),
        op("conv2d winograd 3x3 pad 1", lambda x, w, b: conv2d(x, w, b, padding=1, algorithm="winograd"),
           n((2, 3, 6, 5)), n((2, 3, 3, 3)), n(2)),
        op("conv2d winograd 3x3 pad (0,2), odd output, no bias",
           lambda x, w: conv2d(x, w, padding=(0, 2), algorithm="winograd"), n((1, 2, 5, 4)), n((3, 2, 3, 3))),
        op("conv2d fft 3x3 pad 1", lambda x, w, b: conv2d(x, w, b, padding=1, algorithm="fft"),
           n((2, 3, 6, 5)), n((2, 3, 3, 3)), n(2)),
        op("conv2d fft 5x4 pad (2,0), no bias", lambda x, w: conv2d(x, w, padding=(2, 0), algorithm="fft"),
           n((2, 2, 7, 6)), n((3, 2, 5, 4))),
        op("max_pool2d 2x2", lambda x: max_pool2d(x, 2), distinct(rng, (2, 3, 6, 5))),
        op("max_pool2d 3x3 stride 2", lambda x: max_pool2d(x, 3, 2), distinct(rng, (2, 2, 7, 7))),
        op("textbook conv2d stride (2,1) pad (1,2)", lambda x, w, b: textbook.conv2d(x, w, b, (2, 1), (1, 2)),
           n((2, 2, 5, 4)), n((3, 2, 3, 2)), n(3)),
        op("textbook max_pool2d 3x2 stride (1,2)", lambda x: textbook.max_pool2d(x, (3, 2), (1, 2)),
           distinct(rng, (2, 2, 5, 6))),
        op("conv1d stride 1 pad 0", lambda x, w, b: conv1d(x, w, b), n((2, 3, 9)), n((4, 3, 3)), n(4)),
        op("conv1d stride 2 pad 2 dilation 2", lambda x, w, b: conv1d(x, w, b, stride=2, padding=2, dilation=2),
           n((2, 2, 10)), n((3, 2, 4)), n(3)),
        op("conv1d dilation 3, no bias", lambda x, w: conv1d(x, w, dilation=3), n((1, 2, 11)), n((2, 2, 3))),
        op("max_pool1d 2", lambda x: max_pool1d(x, 2), distinct(rng, (2, 3, 9))),
        op("max_pool1d 3 stride 2 (overlapping)", lambda x: max_pool1d(x, 3, 2), distinct(rng, (2, 2, 10))),
        op("avg_pool1d 2", lambda x: avg_pool1d(x, 2), n((2, 3, 9))),
        op("avg_pool1d 3 stride 1 (overlapping)", lambda x: avg_pool1d(x, 3, 1), n((2, 2, 7))),
        # word embeddings and pooling over the valid steps of padded sentences (engine/embedding.py)
        op("embedding repeated ids", lambda w, ids: embedding(w, ids), n((5, 3)), np.array([[1, 4, 1], [1, 0, 2]])),
        op("embedding padding_id 0 (its row gets no gradient)", lambda w, ids: embedding(w, ids, padding_id=0),
           n((4, 3)), np.array([[2, 3, 2, 0], [1, 0, 0, 0]])),
        op("masked_mean lengths", lambda x, lengths: masked_mean(x, lengths), n((3, 2, 4)), np.array([4, 1, 2])),
        op("masked_mean mask", lambda x, mask: masked_mean(x, mask), n((2, 3, 4)),
           np.array([[True, False, True, False], [False, False, False, True]])),
        op("masked_max lengths", lambda x, lengths: masked_max(x, lengths), distinct(rng, (3, 2, 5)),
           np.array([5, 1, 3])),
        op("masked_max mask, the padding holding the largest values", lambda x, mask: masked_max(x, mask),
           distinct(rng, (2, 2, 4)) + 10 * np.array([[0, 1, 1, 0], [1, 0, 0, 1]])[:, None, :],
           np.array([[True, False, False, True], [False, True, True, False]])),
        # Tai et al.'s relatedness objective: KL from the sparse score distribution to softmax(logits)
        Check("kl_divergence_loss to score_distribution", "loss",
              lambda z: kl_divergence_loss(z, score_distribution(np.array([1.0, 2.3, 4.5, 5.0]))), [n((4, 5)) * 2]),
        Check("kl_divergence_loss none, dense targets", "loss",
              lambda z: kl_divergence_loss(z, np.full((3, 4), 0.25), reduction="none"), [n((3, 4))]),
        Check("kl_divergence_loss sum", "loss",
              lambda z: kl_divergence_loss(z, score_distribution(np.array([3.2, 1.5])), reduction="sum"),
              [n((2, 5))]),
    ]
