"""Batch normalisation (Ioffe & Szegedy 2015) as one fused op with a hand-derived backward.

Per feature c, over the M = N (x H x W) values of the batch:

    x_hat = (x - mu) / sqrt(var + eps),   y = gamma * x_hat + beta

Backward, with g = dL/dy and g_hat = g * gamma. In training, mu and var
depend on every x, and the chain rule through them gives

    dL/dx = (1 / M) / sqrt(var + eps) * (M g_hat - sum(g_hat) - x_hat * sum(g_hat x_hat))

In eval mode mu and var are the running statistics (constants), so
dL/dx = g_hat / sqrt(var + eps). In both: dL/dgamma = sum(g x_hat), dL/dbeta = sum(g).
"""
import numpy as np

from ..tensor import Function
from .layers import check_float_input
from .module import Module, Parameter


class BatchNormOp(Function):
    """Normalise x per feature (axis 1) with batch statistics, or with given ``mean``/``var``."""

    def __init__(self, eps, mean=None, var=None):
        self.eps, self.mean, self.var = eps, mean, var

    def forward(self, x, gamma, beta):
        self.axes = (0,) + tuple(range(2, x.ndim))  # every axis but the feature axis
        shape = [1] * x.ndim
        shape[1] = x.shape[1]
        self.feature_shape = shape
        if self.mean is None:  # training: statistics of this batch
            self.mean, self.var = x.mean(axis=self.axes), x.var(axis=self.axes)
            self.batch_stats = True
        else:
            self.batch_stats = False
        self.inv_std = 1 / (self.var.reshape(shape) + self.eps) ** 0.5
        self.x_hat = (x - self.mean.reshape(shape)) * self.inv_std
        self.gamma = gamma.reshape(shape)
        return self.gamma * self.x_hat + beta.reshape(shape)

    def backward(self, g):  # see the module docstring for the derivation
        g_hat = g * self.gamma
        grad_gamma = (g * self.x_hat).sum(axis=self.axes)
        grad_beta = g.sum(axis=self.axes)
        if self.batch_stats:
            m = g.size // g.shape[1]
            sum_g_hat = g_hat.sum(axis=self.axes, keepdims=True)
            sum_g_hat_x_hat = (g_hat * self.x_hat).sum(axis=self.axes, keepdims=True)
            grad_x = self.inv_std / m * (m * g_hat - sum_g_hat - self.x_hat * sum_g_hat_x_hat)
        else:
            grad_x = g_hat * self.inv_std
        return grad_x, grad_gamma, grad_beta


class _BatchNorm(Module):
    expected_ndim = None

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        if not 0 <= momentum <= 1:
            raise ValueError(f"{type(self).__name__}: momentum must be in [0, 1], got {momentum}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, np.float32))  # gamma
        self.bias = Parameter(np.zeros(num_features, np.float32))  # beta
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))

    def forward(self, x):
        name = type(self).__name__
        check_float_input(name, x)
        if x.ndim != self.expected_ndim or x.shape[1] != self.num_features:
            raise ValueError(f"{name}({self.num_features}): expected {self.expected_ndim}-D input with "
                             f"{self.num_features} features on axis 1, got shape {x.shape}")
        if not self.training:
            return BatchNormOp(self.eps, self.running_mean, self.running_var)(x, self.weight, self.bias)
        op = BatchNormOp(self.eps)
        y = op(x, self.weight, self.bias)
        # running statistics use the unbiased variance, as PyTorch does
        m = x.size // x.shape[1]
        unbiased = op.var * (m / max(m - 1, 1))
        self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * op.mean.astype(x.dtype)
        self.running_var = (1 - self.momentum) * self.running_var + self.momentum * unbiased.astype(x.dtype)
        return y

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, F) inputs."""

    expected_ndim = 2


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, one mean and variance per channel."""

    expected_ndim = 4
