"""Element-wise work on every core: NumPy runs a ufunc on one thread, but releases the GIL while it runs.

The matrix products already use every core (the BLAS's own threads); the
passes around them (pooling, ReLU masks) would otherwise keep one core busy and
the others idle. ``split`` runs a function on slices of its arrays along one
axis, one slice per thread. Only work whose slices are independent qualifies:
each output element must come from the same slice of the inputs (pooling
windows never cross channels, an element-wise op never crosses anything).
For the split to pay, the BLAS's idle threads must leave the cores free: the
first split lets them sleep (``let_idle_blas_threads_sleep``), a change to the
whole process that ``import tinysiam`` alone does not make.
"""
import ctypes
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# as many threads as the BLAS is asked to use (OMP_NUM_THREADS), else every core
WORKERS = int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count() or 1
# below this many elements a thread costs more than it saves (a hand-off is tens of microseconds)
MIN_ELEMENTS = 2**17
_pool = None
_blas_threads_told = False  # whether the first split has asked OpenBLAS's idle threads to sleep


def _start_pool():
    global _pool
    _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="tinysiam") if WORKERS > 1 else None


_start_pool()
os.register_at_fork(after_in_child=_start_pool)  # a forked child has none of its parent's threads


def loaded_openblas():
    """The OpenBLAS libraries loaded in this process (NumPy's, perhaps SciPy's) as ctypes libraries; none where
    none is found (not Linux, another BLAS)."""
    if not sys.platform.startswith("linux"):
        return []
    with open("/proc/self/maps") as maps:  # the files mapped into this process, one per line
        paths = {line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1].lower()}
    libraries = []
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path, mode=os.RTLD_NOLOAD)  # the copy already loaded, not a second one
        except OSError:  # a mapped file that is not a loaded library
            continue
        if all(hasattr(library, name) for name in ("openblas_read_env", "blas_thread_shutdown_")):
            libraries.append(library)
    return libraries


def let_idle_blas_threads_sleep(timeout="4"):
    """After a matrix product OpenBLAS's threads spin, waiting for the next one, for about 2^28 cycles; spinning,
    they hold the cores that ``split`` hands work to. OPENBLAS_THREAD_TIMEOUT=4 (its shortest: 2^4 cycles) lets
    them sleep at once. OpenBLAS reads it only when its threads start, which they did when NumPy loaded it: so
    set it, have OpenBLAS read its environment again, and stop its threads (the next product starts new ones).
    Leaves a timeout the user chose alone (set OPENBLAS_THREAD_TIMEOUT=28, OpenBLAS's default, to keep the
    spinning), and the environment as it was."""
    if "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        return
    libraries = loaded_openblas()
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = timeout
    try:
        for library in libraries:
            library.openblas_read_env()
    finally:
        del os.environ["OPENBLAS_THREAD_TIMEOUT"]  # child processes start with OpenBLAS's default
    for library in libraries:
        library.blas_thread_shutdown_()


def split(fn, arrays, axis=None):
    """``fn(*slices)`` for the ``arrays`` (same length along ``axis``) cut into one slice per thread along
    ``axis`` (default: the first array's outermost axis in memory, so that each slice is one block);
    ``fn(*arrays)`` at once for small or device arrays (CuPy's kernels run on the device anyway)."""
    first = arrays[0]
    if _pool is None or first.size < MIN_ELEMENTS or type(first) is not np.ndarray:
        fn(*arrays)
        return
    axis = int(np.argmax(np.abs(first.strides))) if axis is None else axis
    size = first.shape[axis]
    if size < 2:
        fn(*arrays)
        return
    global _blas_threads_told
    if not _blas_threads_told:
        _blas_threads_told = True
        let_idle_blas_threads_sleep()
    errors = np.geterr()  # NumPy's floating-point error settings belong to each thread: the caller's apply

    def with_callers_errors(*slices):
        with np.errstate(**errors):
            fn(*slices)

    bounds = np.linspace(0, size, min(WORKERS, size) + 1).astype(int)
    cut = [slice(None)] * axis
    jobs = [_pool.submit(with_callers_errors, *(a[(*cut, slice(lo, hi))] for a in arrays))
            for lo, hi in zip(bounds, bounds[1:])]
    for job in jobs:
        job.result()  # re-raises a thread's error here
