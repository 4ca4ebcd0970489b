"""Layers that normalise without parameters: unit-length embeddings and per-image standardisation.

Both are composed from the engine's ops, so their gradients are the ops' own;
the gradient-check catalogue checks them like every other layer.
"""
from ..engine import ops
from ..engine.checks import check_float_tensor
from .module import Module


class L2Normalize(Module):
    """Each row of (N, D) divided by its length: embeddings on the unit sphere (FaceNet's last layer).

    ``eps`` under the square root keeps the gradient finite at a zero row.
    """

    def __init__(self, eps=1e-12):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        check_float_tensor("L2Normalize", "input", x)
        if x.ndim != 2:
            raise ValueError(f"L2Normalize: expected (N, D) embeddings, got shape {x.shape}")
        return x / ops.sqrt((x * x).sum(axis=1, keepdims=True) + self.eps)

    def extra_repr(self):
        return f"eps={self.eps}"


class Standardize(Module):
    """Each item of (N, ...) shifted to mean 0 and scaled to variance 1 over all its values.

    For images this removes each picture's brightness and contrast before the
    first convolution; a constant image becomes all zeros (``eps`` keeps it finite).
    """

    def __init__(self, eps=1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        check_float_tensor("Standardize", "input", x)
        axes = tuple(range(1, x.ndim))
        centred = x - x.mean(axis=axes, keepdims=True)
        return centred / ops.sqrt((centred * centred).mean(axis=axes, keepdims=True) + self.eps)

    def extra_repr(self):
        return f"eps={self.eps}"
