"""The memory layout the convolution and pooling ops share.

Their arrays are (N, C, H, W) to the user and stored channel-first over the
batch, (C, N, H, W) in memory: a convolution then needs no transpose to turn
its channels into the rows of a matrix product, and returns its result in the
same layout (``conv.py`` explains why). These helpers make such arrays, in
memory the engine reuses (``workspace.py``).
"""
from . import workspace


def channel_first_zeros(xp, shape, dtype):
    """Zeros of logical shape (N, C, H, W) stored as (C, N, H, W)."""
    n, c, h, w = shape
    return workspace.zeros(xp, (c, n, h, w), dtype).transpose(1, 0, 2, 3)


def zero_padded(xp, x, before, size):
    """x (N, C, H, W) copied into channel-first zeros of spatial ``size``, at offset ``before`` = (top, left)."""
    (top, left), (n, c, h, w) = before, x.shape
    padded = channel_first_zeros(xp, (n, c) + tuple(size), x.dtype)
    padded[:, :, top:top + h, left:left + w] = x
    return padded
