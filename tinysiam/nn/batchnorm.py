"""Batch normalisation (Ioffe & Szegedy 2015) as one fused op with a hand-derived backward.

Per feature (axis 1), over its M = N (x H x W) values x_i in the batch:

    mu = (1/M) sum_i x_i,   var = (1/M) sum_i (x_i - mu)^2,   s = 1 / sqrt(var + eps)
    x_hat_i = (x_i - mu) * s,   y_i = gamma * x_hat_i + beta

Backward, with g_i = dL/dy_i and g_hat_i = dL/dx_hat_i = gamma * g_i.
In training, mu and s depend on every x_j:

    dmu/dx_j = 1/M
    dvar/dx_j = 2 (x_j - mu) / M          (the mu term vanishes: sum_i (x_i - mu) = 0)
    ds/dx_j = -s^3 / 2 * dvar/dx_j = -s^2 x_hat_j / M
    dx_hat_i/dx_j = s (delta_ij - 1/M) + (x_i - mu) ds/dx_j = (s / M) (M delta_ij - 1 - x_hat_i x_hat_j)

so, summing over i,

    dL/dx_j = (s / M) * (M g_hat_j - sum_i g_hat_i - x_hat_j * sum_i g_hat_i x_hat_i)

In eval mode mu and var are the running statistics (constants), so
dL/dx_j = g_hat_j * s. In both modes dL/dgamma = sum_i g_i x_hat_i and
dL/dbeta = sum_i g_i.

The op computes on a (features, M) matrix, one row per feature: for the
channel-first arrays that convolutions return (see ``engine/layout.py``) that
is a free reshape, and every per-feature sum is a sum along a contiguous row.
It keeps c_i = x_i - mu rather than x_hat_i (x_hat_i = s c_i), and since
sum_i g_hat_i = gamma dL/dbeta and sum_i g_hat_i x_hat_i = gamma dL/dgamma, the
training gradient is one line per feature: dL/dx_j = a (g_j + b c_j + k) with
a = gamma s, b = -s^2 (sum_i g_i c_i) / M, k = -(sum_i g_i) / M.
"""
import numpy as np

from ..engine import threads, workspace
from ..engine.backend import xp_of
from ..engine.checks import check_float_tensor
from ..engine.tensor import Function
from .layers import check_sizes
from .module import Module, Parameter


def _rows(xp, a):
    """(features, M): axis 1 of ``a`` as rows; free when ``a`` is stored feature-first."""
    return xp.ascontiguousarray(xp.moveaxis(a, 1, 0)).reshape(a.shape[1], -1)


def _unrows(xp, rows, shape):
    """The inverse of ``_rows``: an array of ``shape``, stored feature-first."""
    return xp.moveaxis(rows.reshape((shape[1], shape[0]) + shape[2:]), 0, 1)


class BatchNormOp(Function):
    """Normalise x per feature (axis 1) with batch statistics, or with given ``mean``/``var``."""

    def __init__(self, eps, mean=None, var=None):
        self.eps, self.mean, self.var = eps, mean, var

    def forward(self, x, gamma, beta):
        xp = xp_of(x)
        rows, self.shape = _rows(xp, x), x.shape
        self.batch_stats = self.mean is None
        if self.batch_stats:  # training: statistics of this batch (biased variance), filled in below
            self.mean, self.var = xp.empty(len(rows), x.dtype), xp.empty(len(rows), x.dtype)
        self.inv_std, self.gamma = xp.empty(len(rows), x.dtype), gamma
        self.centered, out = workspace.empty_like(rows), workspace.empty_like(rows)
        # features are independent: a slice of them per core
        threads.split(self._normalize, [rows, self.centered, out, self.mean, self.var, self.inv_std, gamma, beta],
                      axis=0)
        return _unrows(xp, out, x.shape)

    def _normalize(self, rows, centered, out, mean, var, inv_std, gamma, beta):
        xp = xp_of(rows)
        if self.batch_stats:
            rows.mean(axis=1, out=mean)
        xp.subtract(rows, mean[:, None], out=centered)
        xp.multiply(centered, centered, out=out)  # first the squares
        if self.batch_stats:
            out.mean(axis=1, out=var)
        inv_std[...] = 1 / (var + self.eps) ** 0.5
        xp.multiply(centered, (gamma * inv_std)[:, None], out=out)  # gamma x_hat
        out += beta[:, None]

    def backward(self, g):  # see the module docstring for the derivation
        xp = xp_of(g)
        g = _rows(xp, g)
        grad_gamma, grad_beta, grad_x = xp.empty(len(g), g.dtype), xp.empty(len(g), g.dtype), workspace.empty_like(g)
        threads.split(self._gradients, [g, self.centered, self.inv_std, self.gamma, grad_x, grad_gamma, grad_beta],
                      axis=0)
        return _unrows(xp, grad_x, self.shape), grad_gamma, grad_beta

    def _gradients(self, g, centered, inv_std, gamma, grad_x, grad_gamma, grad_beta):
        xp = xp_of(g)
        g.sum(axis=1, out=grad_beta)
        sum_g_centered = xp.multiply(g, centered, out=grad_x).sum(axis=1)  # grad_x as scratch
        xp.multiply(sum_g_centered, inv_std, out=grad_gamma)  # sum_i g_i x_hat_i
        a = gamma * inv_std
        if self.batch_stats:  # dL/dx = a (g + b c + k) per feature
            m = g.shape[1]
            xp.multiply(centered, (-inv_std**2 * sum_g_centered / m)[:, None], out=grad_x)
            grad_x += g
            grad_x -= (grad_beta / m)[:, None]
            grad_x *= a[:, None]
        else:
            xp.multiply(g, a[:, None], out=grad_x)


class _BatchNorm(Module):
    """Shared code of BatchNorm1d and BatchNorm2d; ``input_shapes`` names the input ranks each accepts."""

    input_shapes = {}  # rank -> how the error message names that shape

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        name = type(self).__name__
        check_sizes(name, num_features=num_features)
        if not 0 <= momentum <= 1:
            raise ValueError(f"{name}: momentum must be in [0, 1], got {momentum!r}")
        if not eps > 0:
            raise ValueError(f"{name}: eps must be > 0, got {eps!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, np.float32))  # gamma
        self.bias = Parameter(np.zeros(num_features, np.float32))  # beta
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))

    def forward(self, x):
        name = type(self).__name__
        check_float_tensor(name, "input", x)
        if x.ndim not in self.input_shapes or x.shape[1] != self.num_features:
            expected = " or ".join(self.input_shapes.values()).replace("C", str(self.num_features))
            raise ValueError(f"{name}({self.num_features}): expected input {expected}, got shape {x.shape}")
        if x.dtype != self.weight.dtype:
            raise TypeError(f"{name}: input has dtype {x.dtype} but the layer's parameters are {self.weight.dtype}; "
                            "convert one with .astype()")
        if not self.training:
            mean, var = (s.astype(x.dtype, copy=False) for s in (self.running_mean, self.running_var))
            return BatchNormOp(self.eps, mean, var)(x, self.weight, self.bias)
        m = x.size // x.shape[1]  # values per feature
        if m < 2:
            raise ValueError(f"{name}: training needs more than one value per feature to take statistics, "
                             f"got input shape {x.shape}; use a larger batch, or eval()")
        op = BatchNormOp(self.eps)
        y = op(x, self.weight, self.bias)
        # the running variance is the unbiased estimate, as in PyTorch
        self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * op.mean
        self.running_var = (1 - self.momentum) * self.running_var + self.momentum * op.var * (m / (m - 1))
        return y

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs, one mean and variance per channel (over N, and L if given)."""

    input_shapes = {2: "(N, C)", 3: "(N, C, L)"}


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, one mean and variance per channel."""

    input_shapes = {4: "(N, C, H, W)"}
