"""The engine: tensors with reverse-mode autodiff, the ops and their hand-written backward passes.

Read in this order: ``tensor.py`` (Tensor, Function, backward), ``ops.py`` (one
class per op; it also gives Tensor its operators), ``conv.py`` (convolution and
pooling; ``winograd.py`` and ``fftconv.py`` are its faster algorithms, chosen
per layer, docs/convolution.md), ``gradcheck.py`` (the proof). ``backend.py``
picks NumPy or CuPy; ``layout.py`` holds the ops' shared memory layout.
Nothing here knows about layers, Siamese networks or data.
"""
from . import backend, conv, gradcheck, ops
from .backend import gpu_available
from .tensor import Function, Tensor, is_grad_enabled, no_grad

__all__ = ["Function", "Tensor", "backend", "conv", "gpu_available", "gradcheck", "is_grad_enabled", "no_grad",
           "ops"]
