"""Distances between rows of two (N, D) embeddings, each a fused op -> (N,).

Derivations: docs/derivations.md#distances. Written ``diff = a - b``.

At a == b the L1 and L2 norms have no derivative; tinysiam uses the
subgradient 0 there (no epsilon is added, so values stay exact), which keeps
identical embeddings free of NaN and Inf. Cosine clamps each norm below at
``COSINE_EPS`` (like PyTorch's ``cosine_similarity``) so zero vectors are safe.
"""
from .backend import xp_of
from .tensor import Function, Tensor

COSINE_EPS = 1e-8


class L1Distance(Function):
    """d = sum_k |a_k - b_k|"""

    def forward(self, a, b):
        self.sign = xp_of(a).sign(a - b)
        return abs(a - b).sum(axis=1)

    def backward(self, g):  # dd/da = sign(a - b) (0 where equal), dd/db = -sign(a - b)
        grad_a = g[:, None] * self.sign
        return grad_a, -grad_a


class L2Distance(Function):
    """d = sqrt(sum_k (a_k - b_k)^2)"""

    def forward(self, a, b):
        self.diff = a - b
        self.d = xp_of(a).sqrt((self.diff * self.diff).sum(axis=1))
        return self.d

    def backward(self, g):  # dd/da = (a - b) / d, taken as 0 where d = 0
        xp = xp_of(g)
        scale = xp.where(self.d > 0, g / xp.where(self.d > 0, self.d, 1), 0)
        grad_a = scale[:, None] * self.diff
        return grad_a, -grad_a


class SquaredL2Distance(Function):
    """d = sum_k (a_k - b_k)^2"""

    def forward(self, a, b):
        self.diff = a - b
        return (self.diff * self.diff).sum(axis=1)

    def backward(self, g):  # dd/da = 2 (a - b), dd/db = -2 (a - b)
        grad_a = 2 * g[:, None] * self.diff
        return grad_a, -grad_a


class CosineDistance(Function):
    """d = 1 - a.b / (|a| |b|), norms clamped below at COSINE_EPS"""

    def forward(self, a, b):
        xp = xp_of(a)
        self.a, self.b = a, b
        self.norm_a = xp.maximum(xp.sqrt((a * a).sum(axis=1)), COSINE_EPS)
        self.norm_b = xp.maximum(xp.sqrt((b * b).sum(axis=1)), COSINE_EPS)
        self.cos = (a * b).sum(axis=1) / (self.norm_a * self.norm_b)
        return 1 - self.cos

    def backward(self, g):  # dcos/da = b / (|a||b|) - cos a / |a|^2; dd = -dcos
        na, nb, cos = self.norm_a[:, None], self.norm_b[:, None], self.cos[:, None]
        grad_a = -g[:, None] * (self.b / (na * nb) - cos * self.a / (na * na))
        grad_b = -g[:, None] * (self.a / (na * nb) - cos * self.b / (nb * nb))
        return grad_a, grad_b


DISTANCES = {"l1": L1Distance, "l2": L2Distance, "squared_l2": SquaredL2Distance, "cosine": CosineDistance}


def distance_op(name):
    """A new distance op by name: "l1", "l2", "squared_l2" or "cosine"."""
    if name not in DISTANCES:
        raise ValueError(f"distance must be one of {sorted(DISTANCES)}, got {name!r}")
    return DISTANCES[name]()


def check_embeddings(name, *tensors):
    """Equal (N, D) shapes, N > 0, floating point, no NaN."""
    first = tensors[0]
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected Tensors, got {type(t).__name__}")
        if t.ndim != 2 or t.shape != first.shape:
            raise ValueError(f"{name}: embeddings must be (N, D) of one shape, got {[x.shape for x in tensors]}")
        if t.dtype.kind != "f":
            raise TypeError(f"{name}: embeddings must be floating point, got dtype {t.dtype}")
        if bool(xp_of(t.data).isnan(t.data).any()):
            raise ValueError(f"{name}: embeddings contain NaN")
    if first.shape[0] == 0:
        raise ValueError(f"{name}: empty batch")


def _distance(name, a, b):
    check_embeddings(f"{name}_distance", a, b)
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
    """(N, M) distances between the rows of two raw arrays (no gradient): for search and mining."""
    xp = xp_of(a)
    if metric in ("l2", "squared_l2"):
        squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        squared = xp.maximum(squared, 0)  # rounding can make it slightly negative
        return squared if metric == "squared_l2" else xp.sqrt(squared)
    if metric == "cosine":
        na = xp.maximum(xp.linalg.norm(a, axis=1), COSINE_EPS)
        nb = xp.maximum(xp.linalg.norm(b, axis=1), COSINE_EPS)
        return 1 - (a @ b.T) / (na[:, None] * nb[None, :])
    if metric == "l1":
        return abs(a[:, None, :] - b[None, :, :]).sum(axis=2)
    raise ValueError(f"metric must be 'l1', 'l2', 'squared_l2' or 'cosine', got {metric!r}")
