"""Convolution and max-pooling written for reading, their backward passes left to autograd.

``conv.py`` has the fast versions, with hand-written backward passes over an
im2col matrix. Here the same two functions are composed from the primitive
ops of ``ops.py`` (slicing, matmul, stack, max), one kernel offset at a time,
so ``backward()`` derives their gradients by itself, as ``siamese/composed.py``
does for the losses. The tests check that both versions agree, values and
gradients; docs/derivations.md derives what the fast backward passes compute.
"""
from .backend import xp_of
from .checks import int_pair
from .ops import concatenate, stack
from .tensor import Tensor


def pad2d(x, padding):
    """x (N, C, H, W) with ``padding=(ph, pw)`` rows and columns of zeros around each image."""
    ph, pw = padding
    n, c, h, w = x.shape

    def zeros(*shape):
        return Tensor(xp_of(x.data).zeros(shape, dtype=x.dtype))

    x = concatenate([zeros(n, c, ph, w), x, zeros(n, c, ph, w)], axis=2)
    return concatenate([zeros(n, c, h + 2 * ph, pw), x, zeros(n, c, h + 2 * ph, pw)], axis=3)


def _offset_views(x, kernel, stride, out_size):
    """For each kernel offset (i, j), in row-major order: ((i, j), element (i, j) of every window).

    The windows' element (i, j) is a strided slice of x, (N, C, OH, OW).
    """
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_size
    for i in range(kh):
        for j in range(kw):
            yield (i, j), x[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]


def _out_size(size, kernel, stride):
    return tuple((n - k) // s + 1 for n, k, s in zip(size, kernel, stride))


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """Cross-correlation of x (N, C, H, W) with weight (OC, C, KH, KW), plus bias (OC,).

    out[n, o, p, q] = bias[o] + sum over c, i, j of weight[o, c, i, j] * x[n, c, p*sh + i, q*sw + j].
    For one kernel offset (i, j) the inner sum over channels is a matrix
    product, so the output is a sum of KH*KW matrix products.  (docs/derivations.md#convolution)
    """
    stride, padding = int_pair("stride", stride), int_pair("padding", padding)
    if padding != (0, 0):
        x = pad2d(x, padding)
    kernel = weight.shape[2:]
    out = None
    for (i, j), view in _offset_views(x, kernel, stride, _out_size(x.shape[2:], kernel, stride)):
        # (N, OH, OW, C) @ (C, OC) -> (N, OH, OW, OC): at every position, the channels times the weights at (i, j)
        term = view.transpose(0, 2, 3, 1) @ weight[:, :, i, j].T
        out = term if out is None else out + term
    out = out.transpose(0, 3, 1, 2)  # (N, OC, OH, OW)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def max_pool2d(x, kernel_size=2, stride=None):
    """Maximum over each window of x (N, C, H, W); windows past the edge are dropped.

    The KH*KW offsets of every window are stacked on a last axis, in row-major
    order, and ``max`` reduces it; its gradient goes to the first maximum, so
    a tie in a window sends the gradient to the first of its maxima, as in conv.py.
    (docs/derivations.md#max-pooling)
    """
    kernel = int_pair("kernel_size", kernel_size)
    stride = kernel if stride is None else int_pair("stride", stride)
    views = [view for _, view in _offset_views(x, kernel, stride, _out_size(x.shape[2:], kernel, stride))]
    return stack(views, axis=-1).max(axis=-1)
