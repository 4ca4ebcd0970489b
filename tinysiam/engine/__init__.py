"""The engine: tensors with reverse-mode autodiff, the ops and their hand-written backward passes.

Read in this order: ``tensor.py`` (Tensor, Function, backward), ``ops.py`` (one
class per op; it also gives Tensor its operators), ``gradcheck.py`` (the proof),
``textbook.py`` (convolution and pooling composed from those ops, for reading),
``conv.py`` (the same two, fast, with hand-written backward passes;
``winograd.py`` and ``fftconv.py`` are its faster algorithms, chosen per layer
by ``conv_algorithms.py``: docs/convolution.md), ``conv1d.py`` (convolution and pooling over time, for
sequences), ``embedding.py`` (word embeddings, pooling over the valid steps of padded sequences).
``backend.py`` picks NumPy or CuPy; ``layout.py`` holds the ops' shared memory layout; ``workspace.py`` the
bounded pool of large arrays they reuse from step to step; ``threads.py`` splits their element-wise passes over
the cores; ``checks.py`` the argument checks every layer shares; ``pytorch_habits.py`` the answers to PyTorch
spellings; ``debug.py`` draws the graph, traces the backward pass and finds the first NaN.
Nothing here knows about layers, Siamese networks or data.
"""
from . import backend, conv, conv1d, conv_algorithms, debug, embedding, gradcheck, ops, textbook
from .backend import gpu_available
from .debug import detect_anomaly, render, to_dot, trace
from .tensor import Function, Tensor, is_grad_enabled, no_grad

__all__ = ["Function", "Tensor", "backend", "conv", "conv1d", "conv_algorithms", "debug", "detect_anomaly",
           "embedding", "gpu_available", "gradcheck", "is_grad_enabled", "no_grad", "ops", "render", "textbook",
           "to_dot", "trace"]
