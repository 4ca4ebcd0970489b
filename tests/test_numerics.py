"""Numbers at the edges: norms below the clamp, NaN and Inf inputs, and what the optimizers accept."""
import numpy as np
import pytest

import tinysiam as ts
from tinysiam import nn, optim
from tinysiam.engine.gradcheck import gradcheck
from tinysiam.siamese import distances, losses

TINY = 1e-9  # scales a unit-norm row below NORM_EPS (1e-8), where the norm is clamped


def test_cosine_distance_gradient_where_a_norm_is_clamped():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    # |TINY * a| < NORM_EPS: the norm is the constant NORM_EPS, and the gradient has no radial term
    gradcheck(lambda x, y: distances.cosine_distance(x * TINY, y), a, b)
    gradcheck(lambda x, y: distances.cosine_distance(x, y * TINY), a, b)


def test_nt_xent_gradient_where_a_norm_is_clamped():
    rng = np.random.default_rng(1)
    z1, z2 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    scale = np.array([[TINY], [1.0], [1.0]])  # only the first view of z1 is below the clamp
    gradcheck(lambda x, y: losses.nt_xent_loss(x * ts.Tensor(scale), y, 0.5), z1, z2)


def embeddings(value):
    a = np.ones((2, 3))
    a[0, 1] = value
    return ts.Tensor(a), ts.Tensor(np.zeros((2, 3)))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("call", [
    lambda a, b: distances.l2_distance(a, b), lambda a, b: distances.cosine_distance(a, b),
    lambda a, b: losses.triplet_loss(a, b, b), lambda a, b: losses.nt_xent_loss(a, b),
    lambda a, b: losses.contrastive_loss(a[:, 1], np.array([1, 0])),
    lambda a, b: losses.bce_with_logits(a[:, 1], np.array([1, 0])),
    lambda a, b: losses.mse_loss(a, b),
])
def test_distances_and_losses_refuse_non_finite_inputs(call, value):
    a, b = embeddings(value)
    with pytest.raises(ValueError, match="contains NaN or Inf"):
        call(a, b)


@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, lr=float("nan")), lambda p: optim.Adam(p, lr=float("inf")),
                                  lambda p: optim.SGD(p, lr=0.1, weight_decay=float("nan"))])
def test_optimizers_refuse_non_finite_settings(make):
    with pytest.raises(ValueError, match="must be a finite number"):
        make(nn.Linear(2, 2).parameters())
