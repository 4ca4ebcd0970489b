"""tinysiam: a small deep-learning engine on NumPy/CuPy with hand-written backprop and a Siamese toolkit.

The folders are the layers, each built only on those above it in this list:

- ``engine``: Tensor, autodiff, the ops, convolution, the gradient checker
- ``nn``, ``optim``, ``serialization``: layers and modules, optimizers, saving
- ``siamese``: twin/triplet networks, heads, distances, losses, mining
- ``data``: readers for the papers' data sets, splits, augmentation
- ``evaluation``: metrics, one-shot protocols, plots
- ``app``: presets, training, the command line
"""
from . import engine, nn, optim, siamese
from .engine import Function, Tensor, backend, gpu_available, is_grad_enabled, no_grad, ops
from .serialization import load, load_checkpoint, save, save_checkpoint

__all__ = ["Function", "Tensor", "backend", "engine", "gpu_available", "is_grad_enabled", "load", "load_checkpoint",
           "nn", "no_grad", "ops", "optim", "save", "save_checkpoint", "siamese"]
__version__ = "0.1.0"
