"""Layers: Linear, Conv2d, MaxPool2d, Flatten, activations, Dropout, Sequential, the 1-D layers over time, and
Embedding with the masked pooling layers for padded sentences."""
import numpy as np

from ..engine import ops
from ..engine.backend import xp_of
from ..engine.checks import check_float_tensor, check_integer, check_number, int_pair
from ..engine.conv import conv2d, max_pool2d
from ..engine.conv1d import avg_pool1d, conv1d, max_pool1d
from ..engine.embedding import embedding, masked_max, masked_mean
from ..engine.tensor import Function, Tensor
from . import init as initializers
from .module import Module, Parameter


def check_sizes(layer, **sizes):
    """Feature and channel counts must be positive integers."""
    for name, value in sizes.items():
        check_integer(f"{layer}: {name}", value, low=1)


class LinearOp(Function):
    """y = x W^T + b over the last axis of x (any leading axes, or none), as one op.

    One op rather than ``x @ W.T + b``: the weight gradient comes out in the
    weight's own (OUT, IN) layout, where the transposed matmul would give a
    transposed view that autograd then copies element by element.
    """

    def forward(self, x, weight, bias=None):
        self.x_shape, self.weight, self.has_bias = x.shape, weight, bias is not None
        self.x2 = x.reshape(-1, x.shape[-1])  # (M, IN): every leading axis is a row
        y = self.x2 @ weight.T
        if bias is not None:
            y += bias
        return y.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(self, g):  # dL/dx = g W, dL/dW = g^T x, dL/db = sum of g over the rows
        g2 = g.reshape(-1, self.weight.shape[0])
        grad_x = (g2 @ self.weight).reshape(self.x_shape) if self.needs_grad(0) else None
        grads = (grad_x, g2.T @ self.x2)
        return grads + (g2.sum(axis=0),) if self.has_bias else grads


class Linear(Module):
    """y = x W^T + b, with W of shape (out_features, in_features); x is (..., in_features) or (in_features,)."""

    def __init__(self, in_features, out_features, bias=True, init="he", rng=None):
        super().__init__()
        check_sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        weight, b = initializers.weight_and_bias(init, (out_features, in_features), in_features, out_features,
                                                 dense=True, rng=rng)
        self.weight = Parameter(weight)
        self.bias = Parameter(b) if bias else None

    def forward(self, x):
        check_float_tensor("Linear", "input", x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}): input has shape {x.shape}, "
                             f"expected last dimension {self.in_features}")
        if x.dtype != self.weight.dtype:
            raise TypeError(f"Linear: input has dtype {x.dtype} but the layer's weight is {self.weight.dtype}; "
                            "convert one with .astype()")
        params = (self.weight,) if self.bias is None else (self.weight, self.bias)
        return LinearOp()(x, *params)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution over (N, C, H, W) inputs; weight (out_channels, in_channels, KH, KW)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, init="he", rng=None):
        super().__init__()
        check_sizes("Conv2d", in_channels=in_channels, out_channels=out_channels)
        kh, kw = int_pair("kernel_size", kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        weight, b = initializers.weight_and_bias(init, (out_channels, in_channels, kh, kw), in_channels * kh * kw,
                                                 out_channels * kh * kw, dense=False, rng=rng)
        self.weight = Parameter(weight)
        self.bias = Parameter(b) if bias else None

    def forward(self, x):
        check_float_tensor("Conv2d", "input", x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d({self.in_channels}, {self.out_channels}): expected input (N, "
                             f"{self.in_channels}, H, W), got shape {x.shape}")
        return conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class MaxPool2d(Module):
    """Maximum over each kernel_size window, moving by stride (default: kernel_size)."""

    def __init__(self, kernel_size=2, stride=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x):
        check_float_tensor("MaxPool2d", "input", x)
        return max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}"


class Flatten(Module):
    """(N, ...) -> (N, product of the rest)."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1)


class ReLU(Module):
    def forward(self, x):
        check_float_tensor("ReLU", "input", x)
        return ops.relu(x)


class Sigmoid(Module):
    def forward(self, x):
        check_float_tensor("Sigmoid", "input", x)
        return ops.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        check_float_tensor("Tanh", "input", x)
        return ops.tanh(x)


class Dropout(Module):
    """Zero each element with probability p in training, scaling the rest by 1/(1-p); identity in eval.

    The mask is drawn from ``rng`` (a NumPy Generator), or, when None, from the
    shared generator that ``tinysiam.nn.init.seed`` reseeds.
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        check_number("Dropout: p", p, low=0, high=1)
        self.p, self.rng = p, rng

    def forward(self, x):
        check_float_tensor("Dropout", "input", x)
        if not self.training or self.p == 0:
            return x
        keep = initializers.get_rng(self.rng).random(x.shape) >= self.p
        mask = xp_of(x.data).asarray(keep / (1 - self.p), dtype=x.dtype)
        return x * Tensor(mask)

    def extra_repr(self):
        return f"p={self.p}"


class Sequential(Module):
    """Modules applied one after the other; named "0", "1", ..."""

    def __init__(self, *modules):
        super().__init__()
        for i, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: item {i} is a {type(module).__name__}, not a Module")
            setattr(self, str(i), module)

    def __getitem__(self, index):
        """One module, or a new Sequential of a slice (sharing the modules): ``model[:-1]``."""
        modules = list(self._modules.values())
        return Sequential(*modules[index]) if isinstance(index, slice) else modules[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for module in self:
            x = module(x)
        return x


class Conv1d(Module):
    """1-D convolution over time of (N, C, L) inputs; weight (out_channels, in_channels, K)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True, init="he",
                 rng=None):
        super().__init__()
        check_sizes("Conv1d", in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        weight, b = initializers.weight_and_bias(init, (out_channels, in_channels, kernel_size),
                                                 in_channels * kernel_size, out_channels * kernel_size, dense=False,
                                                 rng=rng)
        self.weight = Parameter(weight)
        self.bias = Parameter(b) if bias else None

    def forward(self, x):
        check_float_tensor("Conv1d", "input", x)
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv1d({self.in_channels}, {self.out_channels}): expected input (N, "
                             f"{self.in_channels}, L), got shape {x.shape}")
        return conv1d(x, self.weight, self.bias, stride=self.stride, padding=self.padding, dilation=self.dilation)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}")


class _Pool1d(Module):
    """Shared code of the 1-D pooling layers; ``pool`` is their functional op."""

    pool = None

    def __init__(self, kernel_size=2, stride=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x):
        check_float_tensor(type(self).__name__, "input", x)
        return type(self).pool(x, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}"


class MaxPool1d(_Pool1d):
    """Maximum over each window of kernel_size steps, moving by stride (default: kernel_size)."""

    pool = staticmethod(max_pool1d)


class AvgPool1d(_Pool1d):
    """Mean over each window of kernel_size steps, moving by stride (default: kernel_size)."""

    pool = staticmethod(avg_pool1d)


class Embedding(Module):
    """A learned vector per word id: ids (N, L) -> (N, L, dim), or (N, dim, L) with ``channels_first`` (the
    layout of Conv1d). ``weight`` is (vocab_size, dim), drawn from N(0, std^2).

    Padding convention: positions holding ``padding_id`` (default 0; None for none) read a zero vector
    whatever the padding row holds, and that row gets no gradient; it is also initialised to zero, so it
    stays zero under SGD, Adam and L2 weight decay. A padded step then looks to a Conv1d like its own zero
    padding, and a sentence's features at its valid steps do not depend on how long the batch is padded.
    """

    def __init__(self, vocab_size, dim, padding_id=0, std=1.0, channels_first=False, rng=None):
        super().__init__()
        check_sizes("Embedding", vocab_size=vocab_size, dim=dim)
        check_number("Embedding: std", std, low=0)
        if padding_id is not None:
            check_integer("Embedding: padding_id", padding_id, low=0)
            if padding_id >= vocab_size:
                raise ValueError(f"Embedding: padding_id must lie in [0, {vocab_size}) (vocab_size), got {padding_id}")
        self.vocab_size, self.dim, self.padding_id = vocab_size, dim, padding_id
        self.std, self.channels_first = std, channels_first
        weight = (initializers.get_rng(rng).standard_normal((vocab_size, dim)) * std).astype(np.float32)
        if padding_id is not None:
            weight[padding_id] = 0
        self.weight = Parameter(weight)

    def forward(self, ids):
        out = embedding(self.weight, ids, self.padding_id)
        if self.channels_first:
            if out.ndim != 3:
                raise ValueError(f"Embedding(channels_first=True): ids must be (N, L), got shape {out.shape[:-1]}")
            out = out.transpose(0, 2, 1)
        return out

    def extra_repr(self):
        return (f"{self.vocab_size}, {self.dim}, padding_id={self.padding_id}"
                + (", channels_first=True" if self.channels_first else ""))


class _MaskedPool1d(Module):
    """Shared code of the masked pooling layers: forward(x (N, C, L), mask (N, L) booleans or (N,) lengths)."""

    pool = None

    def forward(self, x, mask):
        check_float_tensor(type(self).__name__, "input", x)
        return type(self).pool(x, mask)


class MaskedMeanPool1d(_MaskedPool1d):
    """Mean over the valid steps of each sequence: (N, C, L) and a mask -> (N, C)."""

    pool = staticmethod(masked_mean)


class MaskedMaxPool1d(_MaskedPool1d):
    """Maximum over the valid steps of each sequence: (N, C, L) and a mask -> (N, C)."""

    pool = staticmethod(masked_max)
