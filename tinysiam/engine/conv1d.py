"""1-D convolution, max-pooling and average-pooling over time, with hand-written backward passes.

Inputs are (N, C, L): a batch of N sequences of L steps with C features per
step, as in a time-delay network (Bromley et al. 1993). All three ops read the
same strided view of x, one row of K values per output step (``windows``), and
send their gradients back through ``add_to_windows``, its backward.
"""
from .backend import xp_of
from .checks import check_conv_inputs, check_float_tensor, check_integer
from .tensor import Function


def output_length(length, kernel, stride=1, dilation=1):
    """Steps of a window of ``kernel`` taps ``dilation`` apart, moved by ``stride`` over ``length`` steps."""
    return (length - dilation * (kernel - 1) - 1) // stride + 1


def windows(x, kernel, stride=1, dilation=1):
    """View (N, C, OL, K) of x (N, C, L): row t holds x[..., t*stride + k*dilation] for k < K. No copy."""
    n, c, length = x.shape
    s_n, s_c, s_l = x.strides
    shape = (n, c, output_length(length, kernel, stride, dilation), kernel)
    return xp_of(x).lib.stride_tricks.as_strided(x, shape=shape, strides=(s_n, s_c, s_l * stride, s_l * dilation))


def add_to_windows(grad_x, grad_windows, stride=1, dilation=1):
    """The backward of ``windows``: add each window's gradient (N, C, OL, K) onto grad_x (N, C, L), in place.

    One strided ``+=`` per tap k: the steps tap k read, t*stride + k*dilation,
    are a slice of grad_x, and no two outputs of one tap read the same step.
    """
    out_length, kernel = grad_windows.shape[2:]
    for k in range(kernel):
        start = k * dilation
        grad_x[:, :, start:start + stride * (out_length - 1) + 1:stride] += grad_windows[:, :, :, k]
    return grad_x


class Conv1dOp(Function):
    """Cross-correlation of x (N, C, L) with weight (OC, C, K), plus bias (OC,):
    out[n, o, t] = b[o] + sum_{c,k} w[o, c, k] x_padded[n, c, t*stride + k*dilation]."""

    def __init__(self, stride=1, padding=0, dilation=1):
        self.stride, self.padding, self.dilation = stride, padding, dilation

    def forward(self, x, weight, bias=None):
        xp = xp_of(x)
        p = self.padding
        self.x_shape, self.weight, self.has_bias = x.shape, weight, bias is not None
        padded = xp.pad(x, ((0, 0), (0, 0), (p, p))) if p else x
        self.padded_shape = padded.shape
        oc, c, k = weight.shape
        view = windows(padded, k, self.stride, self.dilation)
        n, _, out_length, _ = view.shape
        # columns (C*K, N*OL): every window as a column, so the convolution is one matrix product
        self.cols = xp.ascontiguousarray(view.transpose(1, 3, 0, 2)).reshape(c * k, n * out_length)
        out = (weight.reshape(oc, c * k) @ self.cols).reshape(oc, n, out_length)
        if bias is not None:
            out += bias.reshape(oc, 1, 1)
        return xp.ascontiguousarray(out.transpose(1, 0, 2))

    def backward(self, g):  # dL/dW = g @ cols^T, dL/dcols = W^T @ g, dL/dx = the windows' sum of dL/dcols
        xp = xp_of(g)
        oc, c, k = self.weight.shape
        n, _, out_length = g.shape
        g2 = g.transpose(1, 0, 2).reshape(oc, n * out_length)
        grad_w = (g2 @ self.cols.T).reshape(self.weight.shape)
        grad_x = None
        if self.needs_grad(0):  # not for the first layer: the data needs no gradient
            grad_cols = (self.weight.reshape(oc, c * k).T @ g2).reshape(c, k, n, out_length).transpose(2, 0, 3, 1)
            grad_padded = add_to_windows(xp.zeros(self.padded_shape, dtype=g.dtype), grad_cols, self.stride,
                                         self.dilation)
            grad_x = grad_padded[:, :, self.padding:self.padding + self.x_shape[2]]  # the padding's gradient is dropped
        return (grad_x, grad_w, g.sum(axis=(0, 2))) if self.has_bias else (grad_x, grad_w)


class MaxPool1dOp(Function):
    """Maximum over each window of ``kernel`` steps moved by ``stride`` (windows past the end are dropped)."""

    def __init__(self, kernel, stride):
        self.kernel, self.stride = kernel, stride

    def forward(self, x):
        view = windows(x, self.kernel, self.stride)
        self.x_shape, self.dtype = x.shape, x.dtype
        self.winner = view.argmax(axis=-1)  # argmax picks the first maximum: the tie rule
        return xp_of(x).take_along_axis(view, self.winner[..., None], axis=-1)[..., 0]

    def backward(self, g):  # dL/dx = g at each window's (first) maximum, 0 elsewhere
        xp = xp_of(g)
        taps = xp.arange(self.kernel)
        grad_windows = (self.winner[..., None] == taps) * g[..., None]
        return add_to_windows(xp.zeros(self.x_shape, dtype=self.dtype), grad_windows, self.stride)


class AvgPool1dOp(Function):
    """Mean over each window of ``kernel`` steps moved by ``stride`` (windows past the end are dropped)."""

    def __init__(self, kernel, stride):
        self.kernel, self.stride = kernel, stride

    def forward(self, x):
        self.x_shape = x.shape
        return windows(x, self.kernel, self.stride).mean(axis=-1)

    def backward(self, g):  # d(mean of K values)/dx_k = 1/K for each step of the window
        xp = xp_of(g)
        grad_windows = xp.broadcast_to((g / self.kernel)[..., None], g.shape + (self.kernel,))
        return add_to_windows(xp.zeros(self.x_shape, dtype=g.dtype), grad_windows, self.stride)


def _check_sequences(fn, x):
    check_float_tensor(fn, "x", x)
    if x.ndim != 3:
        raise ValueError(f"{fn}: x must be (N, C, L), got shape {x.shape}")


def _check_reach(fn, x, reach, padding=0):
    """A sequence shorter than one window has no output step: say so, with the numbers."""
    length = x.shape[2] + 2 * padding
    if length < reach:
        padded = f" ({length} with the padding)" if padding else ""
        raise ValueError(f"{fn}: x has {x.shape[2]} steps{padded}, fewer than the {reach} steps one window spans; "
                         "give longer sequences or a smaller kernel")


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """Convolve x (N, C, L) with weight (OC, C, K) over time and add bias (OC,).

    The output has (L + 2*padding - dilation*(K-1) - 1) // stride + 1 steps.
    """
    inputs = check_conv_inputs("conv1d", x, weight, bias, dims=1)
    for name, value, low in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        check_integer(f"conv1d: {name}", value, low=low)
    _check_reach("conv1d", x, dilation * (weight.shape[2] - 1) + 1, padding)
    return Conv1dOp(stride, padding, dilation)(*inputs)


def _pool1d(fn, op_class, x, kernel_size, stride):
    _check_sequences(fn, x)
    stride = kernel_size if stride is None else stride
    check_integer(f"{fn}: kernel_size", kernel_size, low=1)
    check_integer(f"{fn}: stride", stride, low=1)
    _check_reach(fn, x, kernel_size)
    return op_class(kernel_size, stride)(x)


def max_pool1d(x, kernel_size=2, stride=None):
    """Max-pool x (N, C, L) over windows of kernel_size steps (stride defaults to kernel_size)."""
    return _pool1d("max_pool1d", MaxPool1dOp, x, kernel_size, stride)


def avg_pool1d(x, kernel_size=2, stride=None):
    """Average-pool x (N, C, L) over windows of kernel_size steps (stride defaults to kernel_size)."""
    return _pool1d("avg_pool1d", AvgPool1dOp, x, kernel_size, stride)
