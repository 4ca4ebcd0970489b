"""A bounded pool of the engine's large arrays, reused from one training step to the next.

A training step allocates the same large arrays every time: im2col columns and
their gradients, Winograd's transformed tiles, pooling masks, activations.
glibc gives a freed block above its mmap threshold back to the operating
system, so without reuse every step pays a page fault per 4 KiB of memory it
touches (about 13,000 a step for the ``omniglot28`` preset's net). The ops take
such arrays from here instead.

A buffer is free when nothing but the pool refers to it. Whatever uses it (an
op's saved arrays, an output tensor, any view of either) holds a reference to
the buffer, so a buffer in use is never handed out twice, and a buffer comes
back by itself when the graph that used it is released (``Function.release``
after backward, or the graph's garbage collection). The pool holds at most
``LIMIT_BYTES``; past that a request evicts free buffers, or gets a fresh
array the pool does not keep. CuPy arrays are left to CuPy's own memory pool,
and small arrays to malloc, which reuses them without unmapping.
"""
import math
import sys
import threading

import numpy as np

from .backend import xp_of

# 512 MiB holds every reused array of the small nets' steps (mini 105 MB, omniglot28 258 MB); for Koch's step
# a 1 GiB pool kept free buffers beside the FFT's own arrays, raising its peak from 1361 to 1809 MB for no speed
LIMIT_BYTES = 2**29
MIN_BYTES = 2**17  # glibc's default mmap threshold: smaller blocks stay in its heap when freed
# A request may take a free buffer up to FIT times its size, so that one buffer serves layers of different
# sizes in turn: with exact sizes only, the faces preset's step held 604 MB at its peak, with FIT = 2 480 MB.
FIT = 2


def _references(bucket, i):
    return sys.getrefcount(bucket[i])


_UNREFERENCED = _references([np.empty(0)], 0)  # the count of a buffer only its bucket holds, counted this way


class Workspace:
    """Free-standing pool; the engine's ops use the module's ``WORKSPACE``."""

    def __init__(self, limit_bytes=LIMIT_BYTES):
        self.limit_bytes = limit_bytes
        self.held_bytes = 0
        self.reuses = 0  # requests served by a buffer used before
        self._buckets = {}  # size in bytes -> the uint8 buffers of that size (their front serves smaller requests)
        self._lock = threading.Lock()  # two threads must not both take one free buffer

    def empty(self, xp, shape, dtype):
        """An uninitialised array like ``xp.empty(shape, dtype)``, C-contiguous, perhaps memory used before."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if xp is not np or nbytes < MIN_BYTES:
            return xp.empty(shape, dtype)
        with self._lock:
            buffer = self._free_buffer(nbytes)
            if buffer is None:
                buffer = self._new_buffer(nbytes)
            else:
                self.reuses += 1
        return buffer[:nbytes].view(dtype).reshape(shape)

    def zeros(self, xp, shape, dtype):
        array = self.empty(xp, shape, dtype)
        array.fill(0)
        return array

    def empty_like(self, a, dtype=None):
        """An uninitialised array of ``a``'s shape stored in ``a``'s memory order, as ``empty_like`` does."""
        order = sorted(range(a.ndim), key=lambda axis: -abs(a.strides[axis]))  # outermost axis first
        array = self.empty(xp_of(a), [a.shape[axis] for axis in order], a.dtype if dtype is None else dtype)
        return array.transpose(np.argsort(order))

    def matmul(self, a, b):
        """a @ b (batched, broadcasting), into workspace memory."""
        shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
        xp = xp_of(a)
        return xp.matmul(a, b, out=self.empty(xp, shape, np.result_type(a.dtype, b.dtype)))

    def set_limit(self, limit_bytes):
        """Hold at most ``limit_bytes`` from now on (0: no reuse); returns the previous limit."""
        with self._lock:
            previous, self.limit_bytes = self.limit_bytes, limit_bytes
            self._evict(0)
        return previous

    def _free_buffer(self, nbytes):
        """The smallest free buffer of at least ``nbytes`` and at most FIT times that, or None."""
        for size in sorted(self._buckets):
            if nbytes <= size <= FIT * nbytes:
                bucket = self._buckets[size]
                for i in range(len(bucket)):
                    if _references(bucket, i) == _UNREFERENCED:
                        return bucket[i]
        return None

    def _new_buffer(self, nbytes):
        buffer = np.empty(nbytes, dtype=np.uint8)
        if self._evict(nbytes):
            self._buckets.setdefault(nbytes, []).append(buffer)
            self.held_bytes += nbytes
        return buffer

    def _evict(self, room):
        """Drop free buffers until ``room`` more bytes fit under the limit; False if they cannot."""
        for nbytes, bucket in list(self._buckets.items()):
            if self.held_bytes + room <= self.limit_bytes:
                break
            for i in reversed(range(len(bucket))):
                if _references(bucket, i) == _UNREFERENCED:
                    del bucket[i]
                    self.held_bytes -= nbytes
            if not bucket:
                del self._buckets[nbytes]
        return self.held_bytes + room <= self.limit_bytes


WORKSPACE = Workspace()
empty, zeros, empty_like, matmul = WORKSPACE.empty, WORKSPACE.zeros, WORKSPACE.empty_like, WORKSPACE.matmul
