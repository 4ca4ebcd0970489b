"""3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016).

In one dimension, two outputs of a 3-tap correlation, y_i = d_i g_0 + d_{i+1} g_1 + d_{i+2} g_2
for i = 0, 1, take 6 multiplications done directly; F(2, 3) needs 4:

    y = A^T [ (G g) * (B^T d) ]        (* element-wise; d: 4 inputs, g: 3 taps)

Nesting it along rows and columns gives F(2x2, 3x3): a 2x2 output tile from a
4x4 input tile d (tiles overlap by 2) with 16 multiplications instead of 36:

    Y = A^T [ (G g G^T) * (B^T d B) ] A

Summed over the input channels, the 16 element-wise products of every tile
become 16 matrix products, one per position xi of the 4x4 transformed tile:
M[xi] (OC x tiles) = U[xi] (OC x C) @ V[xi] (C x tiles). The transforms are
matrix products too: a tile flattened row by row is transformed by a
Kronecker product, vec(P X Q^T) = (P kron Q) vec(X). So the forward pass is
five matrix products and two copies, and the backward pass is the transpose
of each step, last step first. docs/convolution.md derives it all.
"""
import numpy as np

from . import threads, workspace
from .backend import xp_of
from .layout import zero_padded
from .tensor import Function

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)  # input transform
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])  # filter transform
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)  # output transform
INPUT, FILTER, OUTPUT = np.kron(B_T, B_T), np.kron(G, G), np.kron(A_T, A_T)  # 16x16, 16x9, 4x16 on flattened tiles


def _on(matrix, like):
    """A transform matrix in the dtype and on the device of ``like``."""
    return xp_of(like).asarray(matrix, dtype=like.dtype)


class Conv2dWinogradOp(Function):
    """Cross-correlation of x (N, C, H, W) with weight (OC, C, 3, 3), stride 1, plus bias (OC,), by F(2x2, 3x3)."""

    def __init__(self, padding=(0, 0)):
        self.padding = padding

    def forward(self, x, weight, bias=None):
        xp = xp_of(x)
        (ph, pw), (n, c, h, w), oc = self.padding, x.shape, weight.shape[0]
        self.x_shape, self.has_bias = x.shape, bias is not None
        oh, ow = h + 2 * ph - 2, w + 2 * pw - 2
        self.tiles = th, tw = (oh + 1) // 2, (ow + 1) // 2  # an odd output gets one more row/column, dropped
        padded = zero_padded(xp, x, (ph, pw), (2 * th + 2, 2 * tw + 2))
        s_n, s_c, s_h, s_w = padded.strides
        # d[a, b, c, n, ty, tx] = padded[n, c, 2 ty + a, 2 tx + b]: the 4x4 tiles, 2 apart
        d = xp.lib.stride_tricks.as_strided(padded, (4, 4, c, n, th, tw), (s_h, s_w, s_c, s_n, 2 * s_h, 2 * s_w))
        tiles = workspace.empty(xp, d.shape, x.dtype)
        threads.split(xp.copyto, [tiles, d], axis=2)  # a slice of channels per core
        self.v = workspace.matmul(_on(INPUT, x), tiles.reshape(16, -1)).reshape(16, c, -1)  # B^T d B
        del tiles  # back to the workspace: m, of the same size when OC = C, takes its memory
        self.u = (_on(FILTER, x) @ weight.reshape(oc * c, 9).T).reshape(16, oc, c)  # G g G^T
        m = workspace.matmul(self.u, self.v)  # the 16 products, summed over c: (16, OC, N*TH*TW)
        y = workspace.matmul(_on(OUTPUT, x), m.reshape(16, -1)).reshape(2, 2, oc, n, th, tw)  # A^T M A
        out = workspace.empty(xp, (oc, n, oh, ow), x.dtype)
        threads.split(_untile, [out, y.transpose(2, 0, 1, 3, 4, 5)], axis=0)  # a slice of output channels per core
        if bias is not None:
            out += bias.reshape(oc, 1, 1, 1)
        return out.transpose(1, 0, 2, 3)

    def backward(self, g):  # each linear step backwards: dL/d(input) = step^T dL/d(output)
        xp = xp_of(g)
        (ph, pw), (n, c, h, w), (th, tw) = self.padding, self.x_shape, self.tiles
        oc = self.u.shape[1]
        g = g.transpose(1, 0, 2, 3)  # (OC, N, OH, OW): free for outputs of this op
        g_tiles = workspace.zeros(xp, (2, 2, oc, n, th, tw), g.dtype)  # the dropped row/column gets no gradient
        threads.split(_tile, [g_tiles.transpose(2, 0, 1, 3, 4, 5), g], axis=0)
        grad_m = workspace.matmul(_on(OUTPUT.T, g), g_tiles.reshape(4, -1)).reshape(16, oc, -1)  # through Y = A^T M A
        grad_u = grad_m @ self.v.transpose(0, 2, 1)  # through M = U V
        grad_w = (_on(FILTER.T, g) @ grad_u.reshape(16, -1)).reshape(3, 3, oc, c).transpose(2, 3, 0, 1)
        grad_x = None
        if self.needs_grad(0):  # not for the first layer: images need no gradient
            grad_v = workspace.matmul(self.u.transpose(0, 2, 1), grad_m)
            del grad_m  # grad_d, of the same size when OC = C, takes its memory
            grad_d = workspace.matmul(_on(INPUT.T, g), grad_v.reshape(16, -1)).reshape(4, 4, c, n, th, tw)
            grad_padded = workspace.zeros(xp, (c, n, 2 * th + 2, 2 * tw + 2), g.dtype)  # channel-first
            threads.split(_add_tiles, [grad_padded, grad_d.transpose(2, 0, 1, 3, 4, 5)], axis=0)
            grad_x = grad_padded.transpose(1, 0, 2, 3)[:, :, ph:ph + h, pw:pw + w]  # the padding's gradient is dropped
        return (grad_x, grad_w, g.sum(axis=(1, 2, 3))) if self.has_bias else (grad_x, grad_w)


# the copies between images and tiles, on one slice of channels (threads.split runs a slice per core)
def _untile(out, y):
    """out (C, N, OH, OW) from the 2x2 output tiles y (C, 2, 2, N, TH, TW): pixel (2 ty + a, 2 tx + b)."""
    oh, ow = out.shape[2:]
    for a in range(2):
        for b in range(2):
            out[:, :, a::2, b::2] = y[:, a, b, :, :(oh - a + 1) // 2, :(ow - b + 1) // 2]


def _tile(g_tiles, g):
    """The inverse of ``_untile``: g (C, N, OH, OW) into the 2x2 tiles g_tiles (C, 2, 2, N, TH, TW)."""
    oh, ow = g.shape[2:]
    for a in range(2):
        for b in range(2):
            g_tiles[:, a, b, :, :(oh - a + 1) // 2, :(ow - b + 1) // 2] = g[:, :, a::2, b::2]


def _add_tiles(grad_padded, grad_d):
    """grad_padded (C, N, 2 TH + 2, 2 TW + 2) += the 4x4 tiles grad_d (C, 4, 4, N, TH, TW), 2 apart: overlapping
    tiles, so every pixel collects from each tile that read it."""
    th, tw = grad_d.shape[4:]
    for a in range(4):
        for b in range(4):
            grad_padded[:, :, a:a + 2 * th:2, b:b + 2 * tw:2] += grad_d[:, a, b]
