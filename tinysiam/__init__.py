"""tinysiam: a small deep-learning engine on NumPy/CuPy with hand-written backprop and a Siamese toolkit.

The folders are the layers, each built only on those above it in this list:

- ``engine``: Tensor, autodiff, the ops, convolution, the gradient checker
- ``nn``, ``optim``, ``serialization``: layers and modules, optimizers, saving
- ``siamese``: twin/triplet networks, heads, distances, losses, mining
- ``data``: readers for the papers' data sets, splits, augmentation
- ``evaluation``: metrics, one-shot protocols, plots
- ``app``: presets, training, the command line
"""
import importlib.abc
import sys

from . import engine, nn, optim, siamese
from .engine import Function, Tensor, backend, gpu_available, is_grad_enabled, no_grad, ops
from .serialization import load, load_checkpoint, save, save_checkpoint

# modules that moved when the package was split into its layers: importing an old name says where it went
MOVED = {f"tinysiam.{old}": f"tinysiam.{new}" for old, new in (
    ("backend", "engine.backend"), ("tensor", "engine.tensor"), ("ops", "engine.ops"), ("conv", "engine.conv"),
    ("gradcheck", "engine.gradcheck"), ("distances", "siamese.distances"), ("losses", "siamese.losses"),
    ("composed", "siamese.composed"), ("mining", "siamese.mining"), ("metrics", "evaluation.metrics"),
    ("oneshot", "evaluation.oneshot"), ("plots", "evaluation.plots"), ("presets", "app.presets"),
    ("training", "app.training"), ("cli", "app.cli"))}


class _MovedModules(importlib.abc.MetaPathFinder):
    """Asked only after every real finder failed: an old module name gets its new home in the error."""

    def find_spec(self, name, path=None, target=None):
        if name in MOVED:
            raise ModuleNotFoundError(f"No module named {name!r}: it moved to {MOVED[name]}", name=name)
        return None


if not any(type(finder).__name__ == "_MovedModules" for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())

__all__ = ["Function", "Tensor", "backend", "engine", "gpu_available", "is_grad_enabled", "load", "load_checkpoint",
           "nn", "no_grad", "ops", "optim", "save", "save_checkpoint", "siamese"]
__version__ = "0.1.0"
