"""Stride-1 convolution through the FFT (Mathieu, Henaff & LeCun 2014): for large kernels.

A layer's cross-correlation y[i] = sum_k x[i + k] w[k] is, on a grid of F >= H
points, the circular correlation of x with the zero-padded kernel; no index
i + k of a kept output wraps around, so it is exact. The Fourier transform
turns it into a product per frequency f:

    Y[f] = conj(W[f]) X[f]        (W, X: 2-D real FFTs of the padded kernel and input)

and the sum over input channels into one matrix product per frequency:
Y[f] (OC x N) = conj(W[f]) (OC x C) @ X[f] (C x N). A KxK kernel costs the
direct method K^2 multiply-adds per output; here the products cost about
4 C OC N per frequency (complex), whatever K, plus the transforms. Backward is
the adjoint, in the same frequency domain:

    dX[f] = W[f]^T dY[f]  (a convolution: the correlation's adjoint),  dW[f] = conj(dY[f]) X[f]^T

The arrays are laid out spatial axes first, (H, W, C, N): each frequency's
(C, N) block is then contiguous, as the batched matrix product wants it.
docs/convolution.md derives it.
"""

import numpy as np

from . import threads, workspace
from .backend import xp_of
from .tensor import Function

try:  # optional: SciPy's FFT runs on several threads (NumPy's on one)
    import scipy.fft as scipy_fft
except ImportError:
    scipy_fft = None

# the transforms run on slices of the batch (or of the frequencies) whose complex spectra fit in this many bytes
SLICE_BUDGET_BYTES = 64 * 2**20


def fast_size(n):
    """The smallest m >= n whose only prime factors are 2, 3 and 5: FFTs of such sizes are fast."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


class _FFT:
    """The transforms of one array library: SciPy's on ``threads.WORKERS`` threads for NumPy arrays when
    SciPy is installed, else the library's own ``fft`` module (NumPy's, or CuPy's on a GPU)."""

    def __init__(self, like):
        xp = xp_of(like)
        threaded = xp is np and scipy_fft is not None
        self.module, self.options = (scipy_fft, {"workers": threads.WORKERS}) if threaded else (xp.fft, {})

    def __getattr__(self, name):  # rfftn, irfftn, rfft, irfft, fft, ifft
        transform = getattr(self.module, name)
        return lambda *args, **kwargs: transform(*args, **kwargs, **self.options)


def _slices(n, bytes_each):
    """Slices of range(n) of about equal length whose items take at most SLICE_BUDGET_BYTES together."""
    parts = min(n, -(-n * bytes_each // SLICE_BUDGET_BYTES))  # ceiling division
    step = -(-n // parts)
    return [slice(lo, min(lo + step, n)) for lo in range(0, n, step)]


def _spatial_first(a, size, offset):
    """a (N, C, H, W) copied into zeros of shape (FH, FW, C, N) = ``size`` + (C, N), at offset (top, left)."""
    (n, c, h, w), (top, left) = a.shape, offset
    spatial = workspace.zeros(xp_of(a), tuple(size) + (c, n), a.dtype)
    spatial[top:top + h, left:left + w] = a.transpose(2, 3, 1, 0)
    return spatial


def _to_channel_first(spatial, out):
    """Copy (H, W, C, N) into ``out`` (C, N, H, W), one image row at a time (a plain transposing copy reads
    with a stride of C*N elements and was 4x slower here)."""
    for i in range(spatial.shape[0]):
        out[:, :, i] = spatial[i].transpose(1, 2, 0)


def _first_inverse_rows(like, size, rows):
    """The first ``rows`` rows of the inverse DFT matrix of ``size`` points, exp(2 pi i k f / size) / size."""
    k, f = np.arange(rows)[:, None], np.arange(size)[None, :]
    return xp_of(like).asarray(np.exp(2j * np.pi * k * f / size) / size, dtype=like.dtype)


class Conv2dFFTOp(Function):
    """Cross-correlation of x (N, C, H, W) with weight (OC, C, KH, KW), stride 1, plus bias (OC,), by the FFT.

    A layer's spectra are as large as its activations; the transforms and the products that feed them
    run a slice of the batch at a time (``SLICE_BUDGET_BYTES``), so that their temporaries stay small: on
    Koch's net they set the training step's peak memory.
    """

    def __init__(self, padding=(0, 0)):
        self.padding = padding

    def forward(self, x, weight, bias=None):
        xp, fft = xp_of(x), _FFT(x)
        (ph, pw), (n, c, h, w), (oc, _, kh, kw) = self.padding, x.shape, weight.shape
        self.x_shape, self.kernel, self.has_bias = x.shape, (kh, kw), bias is not None
        self.size = fh, fw = fast_size(h + 2 * ph), fast_size(w + 2 * pw)  # the padded input fits: no wrap-around
        self.out_size = oh, ow = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
        # the kernel zero-padded to (FH, FW): transform its KH rows along W first, then along H
        w_f = fft.fft(fft.rfft(weight.transpose(2, 3, 0, 1), n=fw, axis=1), n=fh, axis=0)
        self.w_conj = xp.conjugate(w_f, out=w_f)  # correlation, not convolution: conj(W)
        self.x_f = workspace.empty(xp, w_f.shape[:2] + (c, n), w_f.dtype)  # (FH, FW//2+1, C, N)
        freqs = w_f.shape[0] * w_f.shape[1]
        out = workspace.empty(xp, (oc, n, oh, ow), x.dtype)
        for batch in _slices(n, freqs * max(c, oc) * w_f.itemsize):
            self.x_f[..., batch] = fft.rfftn(_spatial_first(x[batch], self.size, (ph, pw)), axes=(0, 1))
            y_f = workspace.matmul(self.w_conj.reshape(freqs, oc, c), self.x_f.reshape(freqs, c, n)[..., batch])
            y = fft.irfftn(y_f.reshape(fh, -1, oc, y_f.shape[-1]), s=self.size, axes=(0, 1))
            _to_channel_first(y[:oh, :ow], out[:, batch])
        if bias is not None:
            out += bias.reshape(oc, 1, 1, 1)
        return out.transpose(1, 0, 2, 3)

    def backward(self, g):  # dL/dW[f] = conj(dY[f]) X[f]^T;  dL/dX[f] = W[f]^T dY[f] = conj(conj(W[f])^T conj(dY[f]))
        xp, fft = xp_of(g), _FFT(g)
        (ph, pw), (n, c, h, w), (kh, kw) = self.padding, self.x_shape, self.kernel
        fh, fw = self.size
        oc, freqs, itemsize = self.w_conj.shape[2], self.x_f.shape[0] * self.x_f.shape[1], self.x_f.itemsize
        g_conj = workspace.empty(xp, self.x_f.shape[:2] + (oc, n), self.x_f.dtype)  # conj(dY), (FH, FW//2+1, OC, N)
        for batch in _slices(n, freqs * oc * itemsize):  # zero beyond the outputs: they got no gradient
            g_conj[..., batch] = fft.rfftn(_spatial_first(g[batch], self.size, (0, 0)), axes=(0, 1))
        xp.conjugate(g_conj, out=g_conj)
        # only the first KH x KW taps are the kernel's: the first KH rows of the inverse along H (a matrix
        # product with those rows of the inverse DFT matrix, summed over slices of the H frequencies)
        inverse_rows, rows = _first_inverse_rows(g_conj, fh, kh), 0
        for part in _slices(fh, self.x_f.shape[1] * oc * c * itemsize):
            grad_w_f = workspace.matmul(g_conj[part], self.x_f[part].swapaxes(-1, -2))  # (part, FW//2+1, OC, C)
            rows = rows + inverse_rows[:, part] @ grad_w_f.reshape(grad_w_f.shape[0], -1)
        grad_w = fft.irfft(rows.reshape(kh, -1, oc, c), n=fw, axis=1)[:, :kw]  # then the inverse along W
        grad_w = grad_w.transpose(2, 3, 0, 1).astype(g.dtype, copy=False)
        grad_x = None
        if self.needs_grad(0):  # not for the first layer: images need no gradient
            grad_x = workspace.empty(xp, (c, n, h, w), g.dtype)
            w_t = self.w_conj.reshape(freqs, oc, c).swapaxes(-1, -2)
            for batch in _slices(n, freqs * max(c, oc) * itemsize):
                grad_x_f = workspace.matmul(w_t, g_conj.reshape(freqs, oc, n)[..., batch])
                xp.conjugate(grad_x_f, out=grad_x_f)
                spatial = fft.irfftn(grad_x_f.reshape(fh, -1, c, grad_x_f.shape[-1]), s=self.size, axes=(0, 1))
                _to_channel_first(spatial[ph:ph + h, pw:pw + w], grad_x[:, batch])
            grad_x = grad_x.transpose(1, 0, 2, 3)
        return (grad_x, grad_w, g.sum(axis=(0, 2, 3))) if self.has_bias else (grad_x, grad_w)
