"""Tensor and reverse-mode automatic differentiation.

A ``Tensor`` wraps a NumPy or CuPy array. Every operation on tensors is a
``Function`` (see ``ops.py``): its ``forward`` computes the result from raw
arrays and remembers what its ``backward`` needs; its ``backward`` turns the
gradient of the result into gradients of the inputs (the chain rule, one op at
a time). The result tensor records the function that made it (``creator``), so
the tensors form a graph that ``Tensor.backward`` walks from the end to the start.
"""
import contextlib

import numpy as np

from . import backend
from .pytorch_habits import ElementCount

_grad_enabled = True

# Watchers of every op (debug.py's trace and anomaly detection): objects with
# ``forward(fn, inputs, output)`` and ``backward(fn, grad_output, input_grads)``.
# Empty unless a debugging tool is on, so the loops over it cost nothing.
_observers = []


@contextlib.contextmanager
def no_grad():
    """Inside this block operations record no graph (inference, optimizer steps)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


@contextlib.contextmanager
def observing(observer):
    """Inside this block, ``observer`` is told about every op's forward and backward call."""
    _observers.append(observer)
    try:
        yield observer
    finally:
        _observers.remove(observer)


def _as_array(data, dtype, device):
    """Turn ``data`` into an array on ``device``; Python floats and lists become float32."""
    if isinstance(data, Tensor):
        data = data.data
    if device is not None:
        data = backend.to_device(data, device)
    xp = backend.xp_of(data)
    if dtype is None and not hasattr(data, "dtype"):
        array = xp.asarray(data)
        return array.astype(np.float32) if array.dtype.kind == "f" else array
    return xp.asarray(data, dtype=dtype)


class Tensor:
    """An array plus what autograd needs: ``requires_grad``, ``grad``, ``creator``."""

    __array_priority__ = 100  # so that ``ndarray * Tensor`` calls Tensor.__rmul__

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        self.data = _as_array(data, dtype, device)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad=True needs a floating-point tensor, got dtype {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self.grad = None  # raw array of the same shape, filled by backward()
        self.creator = None  # the Function that produced this tensor, if any

    # ----- array-like information -------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return ElementCount(self.data.size)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return backend.device_of(self.data)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({backend.to_numpy(self.data)!r}{grad}, device={self.device!r})"

    def numpy(self):
        """The values as a NumPy array (copied from the GPU if needed)."""
        return backend.to_numpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def __float__(self):  # float(loss)
        return float(self.item())

    def __bool__(self):  # if loss < best: ...
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous: test "
                             "t.numpy().any() or t.numpy().all()")
        return bool(self.item())

    def detach(self):
        """The same values, cut from the graph."""
        return Tensor(self.data)

    def to(self, device):
        """A copy on "cpu" or "gpu" (the same tensor if already there); cut from the graph."""
        if backend.check_device(device) == self.device:
            return self
        return Tensor(backend.to_device(self.data, device), requires_grad=self.requires_grad)

    # ----- backpropagation ----------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Fill ``.grad`` of every tensor this one depends on that requires grad.

        ``grad`` is d(something)/d(self); it may be omitted only for a scalar,
        where it is 1. Gradients are added to existing ``.grad`` arrays, so a
        tensor used twice (shared Siamese weights) gets the sum of both uses.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad (no input has requires_grad=True)")
        xp = backend.xp_of(self.data)
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a scalar; this tensor has shape {self.shape}")
            grad = xp.ones_like(self.data)
        else:
            grad = xp.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(grad): grad has shape {grad.shape}, tensor has shape {self.shape}")

        grads = {id(self): grad}  # gradient of the final output w.r.t. each tensor
        order = _topological_order(self)
        while order:  # popped, not iterated: a tensor whose users are done is freed here, not at the end
            tensor = order.pop()
            upstream = grads.pop(id(tensor), None)
            if upstream is None:  # every op that used it returned None for it: no gradient reaches it
                continue
            fn = tensor.creator
            if fn is None:  # a leaf: keep its gradient (a copy: upstream may be a view shared with other tensors)
                tensor.grad = upstream.copy() if tensor.grad is None else tensor.grad + upstream
                continue
            if fn.released:
                raise RuntimeError(
                    f"backward through {type(fn).__name__} a second time: its saved arrays were freed after the "
                    "first backward(); pass retain_graph=True to the first call"
                )
            input_grads = fn.backward(upstream)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for observer in _observers:
                observer.backward(fn, upstream, input_grads)
            for inp, g in zip(fn.inputs, input_grads):
                if inp.requires_grad and g is not None:
                    grads[id(inp)] = grads[id(inp)] + g if id(inp) in grads else g
            if not retain_graph:
                fn.release()

    # Operators (+, *, @, [], ...) and methods (.sum(), .relu(), ...) are attached by ops.py,
    # where each operation is defined: ``import tinysiam`` loads both.


def _topological_order(output):
    """Tensors reachable from ``output``, each before every tensor that uses it (``output`` last).

    Iterative depth-first search, so very deep graphs hit no recursion limit.
    """
    order, visited = [], set()
    stack = [(output, False)]
    while stack:
        tensor, children_done = stack.pop()
        if children_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        if tensor.creator is not None:
            stack.extend((inp, False) for inp in tensor.creator.inputs if inp.requires_grad)
    return order


class Function:
    """One differentiable operation.

    Subclasses implement ``forward(*arrays) -> array`` and
    ``backward(grad_output) -> grad or tuple of grads`` (one per input, or None
    for an input that needs none), storing on ``self`` what backward needs.
    """

    released = False

    def __call__(self, *inputs):
        inputs = tuple(x if isinstance(x, Tensor) else Tensor(x) for x in inputs)
        _check_same_device(type(self).__name__, inputs)
        output = Tensor(self.forward(*(x.data for x in inputs)))
        for observer in _observers:
            observer.forward(self, inputs, output)
        if _grad_enabled and any(x.requires_grad for x in inputs):
            output.requires_grad = True
            output.creator = self
            self.inputs = inputs
        return output

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    def needs_grad(self, i):
        """Whether input ``i`` wants a gradient: backward may skip work for one that does not."""
        return self.inputs[i].requires_grad

    def release(self):
        """Drop the arrays saved for backward and the links to the inputs.

        A tensor still referenced after backward (a loss kept for logging) then keeps no activation
        alive; ``released`` stays, so a second backward through this op says why it cannot run.
        """
        self.__dict__.clear()
        self.inputs, self.released = (), True


def _check_same_device(op_name, inputs):
    devices = {x.device for x in inputs}
    if len(devices) > 1:
        shapes = ", ".join(f"{x.shape} on {x.device}" for x in inputs)
        raise RuntimeError(f"{op_name}: inputs are on different devices ({shapes}); move them with .to(device)")
