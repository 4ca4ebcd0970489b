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


def reuse_freed_memory():
    """Ask glibc's malloc to keep large freed blocks for reuse instead of unmapping them.

    By default glibc returns blocks above 128 KiB to the OS on free, so memory
    allocated afresh every step costs a page fault per 4 KiB. The engine's ops
    reuse their own large arrays (``workspace.py``), so training does not need
    this; what it still adds, for the arrays other code allocates (SciPy's FFT
    outputs, for one), is the benchmarks' "retuned malloc" column. It changes
    the whole process, so tinysiam never calls it: a script may opt in.
    TINYSIAM_MALLOC_TUNING=0 turns it off. Does nothing outside Linux/glibc.
    Returns True when applied.
    """
    import ctypes
    import os
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("TINYSIAM_MALLOC_TUNING") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt parameter numbers from <malloc.h>
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, (1 << 31) - 1))
