"""Catalogue entries for the elementary ops (inputs kept away from kinks and ties)."""
import numpy as np

from .. import ops
from ..conv import conv2d, max_pool2d
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

    return [
        Check("add (3,4)+(4,)", "op", lambda a, b: a + b, [n((3, 4)), n(4)]),
        Check("sub (3,1)-(1,4)", "op", lambda a, b: a - b, [n((3, 1)), n((1, 4))]),
        Check("mul (2,3,4)*(3,1)", "op", lambda a, b: a * b, [n((2, 3, 4)), n((3, 1))]),
        Check("div (3,4)/(4,)", "op", lambda a, b: a / b, [n((3, 4)), positive(4)]),
        Check("neg", "op", lambda a: -a, [n((2, 5))]),
        Check("pow 3", "op", lambda a: a**3, [n((3, 3))]),
        Check("pow 0.5", "op", lambda a: a**0.5, [positive(4, 2)]),
        Check("matmul (3,4)@(4,2)", "op", lambda a, b: a @ b, [n((3, 4)), n((4, 2))]),
        Check("matmul batched (2,3,4)@(4,5)", "op", lambda a, b: a @ b, [n((2, 3, 4)), n((4, 5))]),
        Check("sum axis=1 keepdims", "op", lambda a: a.sum(axis=1, keepdims=True), [n((3, 4, 2))]),
        Check("sum all", "op", lambda a: a.sum(), [n((3, 4))]),
        Check("mean axis=(0,2)", "op", lambda a: a.mean(axis=(0, 2)), [n((3, 4, 2))]),
        Check("max axis=1", "op", lambda a: a.max(axis=1), [distinct(rng, (3, 5))]),
        Check("max all keepdims", "op", lambda a: a.max(keepdims=True), [distinct(rng, (2, 3))]),
        Check("reshape", "op", lambda a: a.reshape(4, 6), [n((2, 3, 4))]),
        Check("transpose (2,0,1)", "op", lambda a: a.transpose(2, 0, 1), [n((2, 3, 4))]),
        Check("getitem slice", "op", lambda a: a[1:, ::2], [n((4, 5))]),
        Check("getitem repeated indices", "op", lambda a: a[np.array([0, 2, 0, 0])], [n((3, 4))]),
        Check("getitem pairs of indices", "op", lambda a: a[np.array([0, 1, 1]), np.array([2, 0, 2])], [n((2, 3))]),
        Check("concatenate axis=1", "op", lambda a, b: ops.concatenate([a, b], axis=1), [n((2, 3)), n((2, 1))]),
        Check("stack axis=1", "op", lambda a, b: ops.stack([a, b], axis=1), [n((2, 3)), n((2, 3))]),
        Check("astype float64", "op", lambda a: a.astype(np.float64), [n((2, 3))]),
        Check("exp", "op", lambda a: a.exp(), [n((3, 4))]),
        Check("log", "op", lambda a: a.log(), [positive(3, 4)]),
        Check("sqrt", "op", lambda a: a.sqrt(), [positive(3, 4)]),
        Check("abs", "op", lambda a: a.abs(), [away_from_zero(rng, (3, 4))]),
        Check("relu", "op", lambda a: a.relu(), [away_from_zero(rng, (3, 4))]),
        Check("sigmoid", "op", lambda a: a.sigmoid(), [n((3, 4))]),
        Check("sigmoid saturated +-30", "op", lambda a: a.sigmoid(), [np.array([-30.0, -12.0, 12.0, 30.0])]),
        Check("tanh", "op", lambda a: a.tanh(), [n((3, 4))]),
        Check("tanh saturated +-20", "op", lambda a: a.tanh(), [np.array([-20.0, -8.0, 8.0, 20.0])]),
        Check("clip [-0.05, 0.05]", "op", lambda a: a.clip(-0.05, 0.05),
              [np.where(rng.random((3, 4)) < 0.5, rng.uniform(-0.03, 0.03, (3, 4)), away_from_zero(rng, (3, 4)))]),
        Check("maximum 0.5", "op", lambda a: a.maximum(0.5), [0.5 + away_from_zero(rng, (3, 4))]),
        Check("conv2d stride 1 pad 0", "op", lambda x, w, b: conv2d(x, w, b), [n((2, 3, 6, 5)), n((4, 3, 3, 2)), n(4)]),
        Check("conv2d stride 2 pad 1", "op", lambda x, w, b: conv2d(x, w, b, stride=2, padding=1),
              [n((2, 2, 7, 7)), n((3, 2, 3, 3)), n(3)]),
        Check("conv2d stride (1,2) pad (2,0), no bias", "op", lambda x, w: conv2d(x, w, stride=(1, 2), padding=(2, 0)),
              [n((1, 2, 5, 6)), n((2, 2, 2, 3))]),
        Check("max_pool2d 2x2", "op", lambda x: max_pool2d(x, 2), [distinct(rng, (2, 3, 6, 5))]),
        Check("max_pool2d 3x3 stride 2", "op", lambda x: max_pool2d(x, 3, 2), [distinct(rng, (2, 2, 7, 7))]),
    ]
