"""Distances between the rows of two (N, D) embeddings, each a fused op -> (N,).

Derivations: docs/derivations.md#distances. Written ``diff = a - b``.

Safe at zero: at a == b the L1 and L2 norms have no derivative; tinysiam uses
the subgradient 0 there and adds no epsilon, so values stay exact and identical
embeddings give no NaN or Inf. Cosine clamps each norm below at ``NORM_EPS``
(as PyTorch's ``cosine_similarity`` does), so a zero vector gives a finite
value and gradient.

``pairwise_distances`` gives the (N, M) matrix of all distances between two
sets of rows (raw arrays, no gradient): for mining, search and evaluation.
"""
import numpy as np

from ..engine.backend import xp_of
from ..engine.checks import check_tensor
from ..engine.debug import may_read
from ..engine.tensor import Function

NORM_EPS = 1e-8  # smallest norm cosine (and NT-Xent) divides by


class L1Distance(Function):
    """d = sum_k |a_k - b_k|   (docs/derivations.md#distances)"""

    def forward(self, a, b):
        self.sign = xp_of(a).sign(a - b)
        return abs(a - b).sum(axis=1)

    def backward(self, g):  # dd/da = sign(a - b) (0 where equal), dd/db = -sign(a - b)
        grad_a = g[:, None] * self.sign
        return grad_a, -grad_a


class L2Distance(Function):
    """d = sqrt(sum_k (a_k - b_k)^2)   (docs/derivations.md#distances)"""

    def forward(self, a, b):
        self.diff = a - b
        self.d = xp_of(a).sqrt((self.diff * self.diff).sum(axis=1))
        return self.d

    def backward(self, g):  # dd/da = (a - b) / d, taken as 0 where d = 0
        xp = xp_of(g)
        nonzero = self.d > 0
        scale = xp.where(nonzero, g / xp.where(nonzero, self.d, 1), 0)  # inner where: never divide by 0
        grad_a = scale[:, None] * self.diff
        return grad_a, -grad_a


class SquaredL2Distance(Function):
    """d = sum_k (a_k - b_k)^2   (docs/derivations.md#distances)"""

    def forward(self, a, b):
        self.diff = a - b
        return (self.diff * self.diff).sum(axis=1)

    def backward(self, g):  # dd/da = 2 (a - b), dd/db = -2 (a - b)
        grad_a = 2 * g[:, None] * self.diff
        return grad_a, -grad_a


class CosineDistance(Function):
    """d = 1 - a.b / (|a| |b|), each norm clamped below at NORM_EPS   (docs/derivations.md#distances)"""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.norm_a, self.free_a = clamped_norm(a)
        self.norm_b, self.free_b = clamped_norm(b)
        self.cos = (a * b).sum(axis=1) / (self.norm_a * self.norm_b)
        return 1 - self.cos

    def backward(self, g):  # dcos/da = b / (|a||b|) - cos a / |a|^2 (no second term where |a| is clamped); dd = -dcos
        na, nb, cos = self.norm_a[:, None], self.norm_b[:, None], self.cos[:, None]
        grad_a = -g[:, None] * (self.b / (na * nb) - self.free_a[:, None] * cos * self.a / (na * na))
        grad_b = -g[:, None] * (self.a / (na * nb) - self.free_b[:, None] * cos * self.b / (nb * nb))
        return grad_a, grad_b


def squared_norms(rows):
    """|row|^2 of each row of an (N, D) array (einsum: no (N, D) temporary, several times faster)."""
    return xp_of(rows).einsum("ij,ij->i", rows, rows)


def clamped_norm(rows):
    """(max(|row|, NORM_EPS), |row| > NORM_EPS) per row: where the norm is clamped it is a constant."""
    xp = xp_of(rows)
    norm = xp.sqrt(squared_norms(rows))
    return xp.maximum(norm, NORM_EPS), norm > NORM_EPS


DISTANCES = {"l1": L1Distance, "l2": L2Distance, "squared_l2": SquaredL2Distance, "cosine": CosineDistance}


def distance_op(name):
    """A new distance op by name: "l1", "l2", "squared_l2" or "cosine"."""
    if name not in DISTANCES:
        raise ValueError(f"distance must be one of {sorted(DISTANCES)}, got {name!r}")
    return DISTANCES[name]()


def check_embeddings(caller, **embeddings):
    """Tensors of one (N, D) shape and one floating dtype, N > 0, finite; errors name the argument.

    Called as ``check_embeddings("triplet_loss", anchor=a, positive=p, negative=n)``.
    """
    (first_name, first), *_ = embeddings.items()
    for name, t in embeddings.items():
        check_tensor(caller, name, t)
        if t.ndim != 2:
            raise ValueError(f"{caller}: {name} must be (N, D) embeddings, got shape {t.shape}")
        if t.shape != first.shape:
            raise ValueError(f"{caller}: {name} has shape {t.shape} but {first_name} has shape {first.shape}; "
                             "the rows must pair up")
        if t.dtype.kind != "f" or t.dtype != first.dtype:
            raise TypeError(f"{caller}: {name} has dtype {t.dtype}, expected floating point like {first_name} "
                            f"({first.dtype})")
        check_finite(caller, name, t)
    if first.shape[0] == 0:
        raise ValueError(f"{caller}: empty batch ({first_name} has shape {first.shape})")


class NonFiniteValues(ValueError):
    """An input to a distance or loss holds NaN or Inf (in training: the weights have diverged)."""


def check_finite(caller, name, t):
    """Refuse NaN and Inf in a distance's or loss's input: every result from it would be NaN.

    This reads the values, which on a GPU means waiting for it to finish every step,
    so on CuPy arrays it runs only inside ``tinysiam.engine.detect_anomaly()``.
    """
    if may_read(t.data) and not np.isfinite(t.data).all():
        raise NonFiniteValues(f"{caller}: {name} contains NaN or Inf")


def _distance(name, a, b):
    check_embeddings(f"{name}_distance", a=a, b=b)
    return distance_op(name)(a, b)


def l1_distance(a, b):
    """Row-wise L1 distance of (N, D) tensors -> (N,) (Chopra 2005, Koch 2015)."""
    return _distance("l1", a, b)


def l2_distance(a, b):
    """Row-wise Euclidean distance of (N, D) tensors -> (N,)."""
    return _distance("l2", a, b)


def squared_l2_distance(a, b):
    """Row-wise squared Euclidean distance of (N, D) tensors -> (N,)."""
    return _distance("squared_l2", a, b)


def cosine_distance(a, b):
    """Row-wise 1 - cosine similarity of (N, D) tensors -> (N,)."""
    return _distance("cosine", a, b)


def pairwise_distances(a, b, metric="l2"):
    """(N, M) distances between the rows of raw (N, D) and (M, D) arrays; entry [i, j] = d(a_i, b_j).

    No gradient: for mining, search and evaluation. L2 uses |a|^2 + |b|^2 - 2 a.b
    (one matrix product) and clamps the rounding error below 0.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"pairwise_distances: a and b must be (N, D) and (M, D), got {a.shape} and {b.shape}")
    xp = xp_of(a)
    if metric in ("l2", "squared_l2"):
        squared = xp.maximum(squared_norms(a)[:, None] + squared_norms(b)[None, :] - 2 * a @ b.T, 0)
        return squared if metric == "squared_l2" else xp.sqrt(squared)
    if metric == "cosine":
        return 1 - (a @ b.T) / (clamped_norm(a)[0][:, None] * clamped_norm(b)[0][None, :])
    if metric == "l1":
        return abs(a[:, None, :] - b[None, :, :]).sum(axis=2)
    raise ValueError(f"metric must be one of {sorted(DISTANCES)}, got {metric!r}")
