"""tinysiam: a small deep-learning engine on NumPy/CuPy with a Siamese toolkit."""
from . import backend, nn, ops, optim
from .backend import gpu_available
from .serialization import load, load_checkpoint, save, save_checkpoint
from .tensor import Function, Tensor, is_grad_enabled, no_grad

__all__ = ["Function", "Tensor", "backend", "gpu_available", "is_grad_enabled", "load", "load_checkpoint", "nn",
           "no_grad", "ops", "optim", "save", "save_checkpoint"]
__version__ = "0.1.0"

backend.reuse_freed_memory()  # large temporaries are reused, not re-faulted, step after step
