"""NumPy or CuPy: the one place that decides which array library holds the data.

Ops never call ``numpy`` on data directly; they ask ``xp_of(array)`` for the
module that owns the array, so the same code runs on CPU (NumPy) and GPU (CuPy).
"""
import numpy as np

DEVICES = ("cpu", "gpu")

try:  # CuPy is optional: everything works without it.
    import cupy as _cupy
except Exception:  # ImportError, or a CUDA library that fails to load
    _cupy = None


def gpu_available():
    """True when CuPy is installed and can see at least one CUDA device."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def check_device(device):
    """Return ``device`` if it is "cpu" or "gpu" (and usable), else raise."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "gpu" and not gpu_available():
        reason = "CuPy is not installed (pip install tinysiam[gpu])" if _cupy is None else "CuPy sees no CUDA device"
        raise RuntimeError(f"device='gpu' requested but {reason}")
    return device


def is_gpu_array(array):
    return _cupy is not None and isinstance(array, _cupy.ndarray)


def xp_of(array):
    """The array module (numpy or cupy) that owns ``array``."""
    return _cupy if is_gpu_array(array) else np


def device_of(array):
    return "gpu" if is_gpu_array(array) else "cpu"


def to_device(array, device):
    """Move an array to "cpu" (NumPy) or "gpu" (CuPy); no copy if already there."""
    check_device(device)
    if device == "gpu":
        return _cupy.asarray(array)
    return to_numpy(array)


def to_numpy(array):
    """A NumPy array with the same values (copies from the GPU if needed)."""
    return _cupy.asnumpy(array) if is_gpu_array(array) else np.asarray(array)
