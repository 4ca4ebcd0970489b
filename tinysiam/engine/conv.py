"""2-D convolution and max-pooling, with hand-written backward passes.

Tensors are (N, C, H, W) to the user, but the arrays these ops return are
stored channel-first over the batch, (C, N, H, W) in memory: a convolution is
then ONE matrix product ``weight (OC, C*KH*KW) @ columns (C*KH*KW, N*OH*OW)``
whose result is already in that layout, and element-wise ops (relu, pooling
slices) keep an input's memory order, so the next convolution reads it without
a transpose. ``out.transpose(1, 0, 2, 3)`` is the free view between the two.

A convolution has three algorithms, each an op with its own backward:
``Conv2dIm2colOp`` (here: every window copied into a column, one matrix
product; any stride), ``Conv2dWinogradOp`` (``winograd.py``: 3x3, stride 1,
2.25x fewer multiplications) and ``Conv2dFFTOp`` (``fftconv.py``: stride 1,
products per frequency, whatever the kernel size). ``conv2d`` picks one per
layer by its shape (``conv_algorithms.py``, where ``set_algorithm`` can also
ask for timing the candidates, like cuDNN's benchmark mode, or force one).
docs/convolution.md explains them.
"""
from . import conv_algorithms, threads, workspace
from .backend import is_gpu_array, xp_of
from .checks import check_conv_inputs, int_pair
from .fftconv import Conv2dFFTOp
from .layout import channel_first_zeros, zero_padded
from .tensor import Function, is_grad_enabled
from .winograd import Conv2dWinogradOp

COLUMN_BUDGET_BYTES = 128 * 2**20  # larger im2col matrices are built a slice of the batch at a time


def im2col(x, kernel, stride):
    """Columns of every kernel window: (C*KH*KW, N*OH*OW) for x (N, C, H, W).

    A strided view picks each window without copying; one explicit copy then
    lays the columns out for the matrix product. (A copy into a contiguous array
    before the reshape: NumPy's reshape of such a view copies element by element,
    10x slower.)
    """
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    s_n, s_c, s_h, s_w = x.strides
    shape = (c, kh, kw, n, oh, ow)
    windows = xp_of(x).lib.stride_tricks.as_strided(x, shape=shape, strides=(s_c, s_h, s_w, s_n, s_h * sh, s_w * sw))
    cols = workspace.empty(xp_of(x), shape, x.dtype)
    cols[...] = windows
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im_add(grad_x, cols, kernel, stride, out_size):
    """Add column gradients back onto the (padded) input gradient, in place.

    One strided ``+=`` per kernel offset: every window that read pixel p adds
    its share to p. (Faster than ``np.add.at`` on large layers, no index array.)
    """
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_size
    n, c = grad_x.shape[:2]
    cols = cols.reshape(c, kh, kw, n, oh, ow).transpose(3, 0, 1, 2, 4, 5)
    for i in range(kh):
        for j in range(kw):
            grad_x[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += cols[:, :, i, j]


class Conv2dIm2colOp(Function):
    """Cross-correlation of x (N, C, H, W) with weight (OC, C, KH, KW), plus bias (OC,), through im2col."""

    def __init__(self, stride=1, padding=0):
        self.stride, self.padding = int_pair("stride", stride), int_pair("padding", padding)

    def forward(self, x, weight, bias=None):
        xp = xp_of(x)
        (ph, pw), (sh, sw) = self.padding, self.stride
        n, c, h, w = x.shape
        oc, _, kh, kw = weight.shape
        self.kernel = (kh, kw)
        if ph or pw:
            self.padded = zero_padded(xp, x, (ph, pw), (h + 2 * ph, w + 2 * pw))
        else:
            self.padded = x  # nothing to pad: im2col reads x in place, whatever its layout
        self.out_size = ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
        self.weight, self.has_bias = weight, bias is not None
        w2 = weight.reshape(oc, -1)
        out = workspace.empty(xp, (oc, n) + self.out_size, x.dtype)
        slices = self._batch_slices(n, c)
        for lo, hi in slices:
            cols = im2col(self.padded[lo:hi], self.kernel, self.stride)
            xp.matmul(w2, cols, out=out[:, lo:hi].reshape(oc, -1))  # a view: each channel's rows are contiguous
        # keep the columns for backward when they fit the budget; else backward rebuilds them slice by slice
        self.cols = cols if len(slices) == 1 else None
        if bias is not None:
            out += bias.reshape(oc, 1, 1, 1)
        return out.transpose(1, 0, 2, 3)

    def backward(self, g):  # dL/dW = g @ cols^T, dL/dcols = W^T @ g, dL/dx = col2im(dL/dcols)
        xp = xp_of(g)
        n, c = self.padded.shape[:2]
        oc = self.weight.shape[0]
        w2 = self.weight.reshape(oc, -1)
        g = g.transpose(1, 0, 2, 3)  # (OC, N, OH, OW): free for outputs of this op
        grad_w = xp.zeros_like(w2)
        want_x = self.needs_grad(0)  # not for the first layer: images need no gradient
        grad_padded = channel_first_zeros(xp, self.padded.shape, g.dtype) if want_x else None
        for lo, hi in self._batch_slices(n, c):
            g2 = g[:, lo:hi].reshape(oc, -1)
            cols = self.cols if self.cols is not None else im2col(self.padded[lo:hi], self.kernel, self.stride)
            grad_w += g2 @ cols.T
            if want_x:
                col2im_add(grad_padded[lo:hi], workspace.matmul(w2.T, g2), self.kernel, self.stride, self.out_size)
        (ph, pw), (hp, wp) = self.padding, self.padded.shape[2:]
        grad_x = grad_padded[:, :, ph:hp - ph, pw:wp - pw] if want_x else None  # the padding's gradient is dropped
        grad_w = grad_w.reshape(self.weight.shape)
        return (grad_x, grad_w, g.sum(axis=(1, 2, 3))) if self.has_bias else (grad_x, grad_w)

    def _batch_slices(self, n, c):
        """Slices of the batch whose column matrix fits in COLUMN_BUDGET_BYTES."""
        per_sample = c * self.kernel[0] * self.kernel[1] * self.out_size[0] * self.out_size[1]
        step = max(1, COLUMN_BUDGET_BYTES // (per_sample * self.padded.itemsize))
        return [(lo, min(lo + step, n)) for lo in range(0, n, step)]


class MaxPool2dOp(Function):
    """Maximum over each KxK window (windows past the edge are dropped, as in PyTorch).

    Which input gets a window's gradient, scanning the window row by row: the
    first maximum (ties go to the earliest position); in a window holding NaN
    the output is NaN and the gradient goes to its NaN, the last one if there
    are several. That is PyTorch's rule: a value takes over when it is greater
    than the maximum so far, or is NaN.
    """

    def __init__(self, kernel_size=2, stride=None):
        self.kernel = int_pair("kernel_size", kernel_size)
        self.stride = self.kernel if stride is None else int_pair("stride", stride)

    def _window_views(self, x, out_size):
        """For each kernel offset (i, j), row-major: the view of x holding that offset of every window."""
        (kh, kw), (sh, sw), (oh, ow) = self.kernel, self.stride, out_size
        for i in range(kh):
            for j in range(kw):
                yield x[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]

    def forward(self, x):
        (kh, kw), (sh, sw) = self.kernel, self.stride
        self.x = x
        self.out_size = ((x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1)
        self.out = workspace.empty_like(next(self._window_views(x, self.out_size)))
        threads.split(self._maxima, [x, self.out])  # windows never cross channels: a slice of them per thread
        return self.out

    def _maxima(self, x, out):
        """out = the element-wise maxima of the KH*KW offset views of x (NaN propagates): no copy of the windows."""
        views, maximum = self._window_views(x, self.out_size), xp_of(x).maximum
        out[...] = next(views)
        for view in views:
            maximum(out, view, out=out)

    def backward(self, g):  # dL/dx = g at the window's chosen input (see the class docstring), 0 elsewhere
        grad_x = channel_first_zeros(xp_of(g), self.x.shape, g.dtype)
        threads.split(self._route, [self.x, self.out, g, grad_x])
        return grad_x

    def _route(self, x, out, g, grad_x):
        """Adds each window's gradient g to its chosen input in grad_x."""
        xp = xp_of(g)
        overlapping = self.stride[0] < self.kernel[0] or self.stride[1] < self.kernel[1]
        taken = workspace.empty_like(out, bool)  # windows whose input was already chosen
        taken.fill(False)
        winner = workspace.empty_like(out, bool)
        views = zip(self._window_views(x, self.out_size), self._window_views(grad_x, self.out_size))
        for x_view, grad_view in views:
            xp.equal(x_view, out, out=winner)
            xp.greater(winner, taken, out=winner)  # winner and not taken
            taken |= winner
            if overlapping:  # a pixel in two windows collects from both
                grad_view += g * winner
            else:  # each pixel is in one window: write, no need to read the zeros
                xp.multiply(g, winner, out=grad_view)
        # only a NaN window has no input equal to its output: its last NaN wins (on a GPU this pass always runs,
        # finding nothing to add where there is no NaN: asking whether one is there would wait for the device)
        if is_gpu_array(taken) or not taken.all():
            views = zip(self._window_views(x, self.out_size), self._window_views(grad_x, self.out_size))
            for x_view, grad_view in reversed(list(views)):
                winner = xp.isnan(x_view) & ~taken
                taken |= winner
                grad_view += g * winner


ALGORITHMS = {"im2col": Conv2dIm2colOp, "winograd": Conv2dWinogradOp, "fft": Conv2dFFTOp}


def _new_op(name, stride, padding):
    return Conv2dIm2colOp(stride, padding) if name == "im2col" else ALGORITHMS[name](padding)


def conv2d(x, weight, bias=None, stride=1, padding=0, algorithm=None):
    """Convolve x (N, C, H, W) with weight (OC, C, KH, KW) and add bias (OC,).

    ``algorithm``: "im2col", "winograd", "fft", "auto" (by the layer's shape) or "benchmark" (time them once
    per layer shape); None follows ``conv_algorithms.set_algorithm`` (default "auto").
    """
    inputs = check_conv_inputs("conv2d", x, weight, bias)
    stride, padding, kernel = int_pair("stride", stride), int_pair("padding", padding), weight.shape[2:]
    if min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"conv2d: stride must be >= 1 and padding >= 0, got stride={stride}, padding={padding}")
    if x.shape[2] + 2 * padding[0] < kernel[0] or x.shape[3] + 2 * padding[1] < kernel[1]:
        raise ValueError(f"conv2d: kernel {kernel[0]}x{kernel[1]} is larger than the padded input "
                         f"{x.shape[2] + 2 * padding[0]}x{x.shape[3] + 2 * padding[1]}")
    backward = is_grad_enabled() and any(t.requires_grad for t in inputs)
    name = conv_algorithms.choose(algorithm, inputs, stride, padding,
                                  lambda name: _new_op(name, stride, padding), backward)
    return _new_op(name, stride, padding)(*inputs)


def max_pool2d(x, kernel_size=2, stride=None):
    """Max-pool x (N, C, H, W) over kernel_size windows (stride defaults to kernel_size)."""
    op = MaxPool2dOp(kernel_size, stride)
    if x.ndim != 4:
        raise ValueError(f"max_pool2d: x must be (N, C, H, W), got shape {x.shape}")
    if min(op.kernel) < 1 or min(op.stride) < 1:
        raise ValueError(f"max_pool2d: kernel_size and stride must be >= 1, got kernel_size={kernel_size}, "
                         f"stride={stride}")
    if x.shape[2] < op.kernel[0] or x.shape[3] < op.kernel[1]:
        raise ValueError(f"max_pool2d: kernel {op.kernel} is larger than the input {x.shape[2:]}")
    return op(x)
