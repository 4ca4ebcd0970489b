"""Dynamic time warping (DTW): the classical distance between two pen trajectories, for many pairs at once.

The DTW distance of sequences a (F, L) and b (F, M) is the least total cost
of an alignment: a path of steps (i, j) from (1, 1) to (L, M) moving by
(1, 0), (0, 1) or (1, 1), each step costing the Euclidean distance
||a[:, i] - b[:, j]||. With D[0, 0] = 0 and D = inf elsewhere on the edges,

    D[i, j] = cost(i, j) + min(D[i-1, j-1], D[i-1, j], D[i, j-1])

and the distance is D[L, M]. Cells with the same i + j depend only on the
two anti-diagonals before them, so the loop runs over the L + M - 1
anti-diagonals, each one a single array operation over every pair and every
cell of the diagonal. A Sakoe-Chiba ``band`` keeps the path within ``band``
steps of the diagonal (scaled when L != M).
"""
import numpy as np

from ..engine.backend import xp_of
from ..engine.checks import check_integer

PAIR_BUDGET_BYTES = 128 * 2**20  # pairs are processed in chunks whose cost matrices fit this


def dtw_distance(a, b, band=None):
    """DTW distances (P,) of the pairs (a[p], b[p]); a is (P, F, L), b is (P, F, M). NumPy or CuPy arrays."""
    xp = xp_of(a)
    if a.ndim != 3 or b.ndim != 3 or a.shape[:2] != b.shape[:2]:
        raise ValueError(f"a and b must be (P, F, L) and (P, F, M) with the same P and F, got {a.shape} and {b.shape}")
    if a.shape[2] < 1 or b.shape[2] < 1:
        raise ValueError(f"a and b need at least one step each, got {a.shape} and {b.shape}")
    if band is not None:
        check_integer("band", band, low=0)
    pairs, _, length_a = a.shape
    length_b = b.shape[2]
    chunk = max(1, PAIR_BUDGET_BYTES // (2 * 8 * (length_a + 1) * (length_b + 1)))
    return xp.concatenate([_dtw_chunk(a[lo:lo + chunk], b[lo:lo + chunk], band) for lo in range(0, pairs, chunk)])


def _dtw_chunk(a, b, band):
    xp = xp_of(a)
    a, b = a.astype(np.float64), b.astype(np.float64)
    length_a, length_b = a.shape[2], b.shape[2]
    cost = xp.sqrt(((a[:, :, :, None] - b[:, :, None, :]) ** 2).sum(axis=1))  # (P, L, M)
    total = xp.full((len(a), length_a + 1, length_b + 1), xp.inf)
    total[:, 0, 0] = 0.0
    scale = max(length_a, length_b)
    for diagonal in range(2, length_a + length_b + 1):  # the cells (i, j), 1-based, with i + j = diagonal
        i = np.arange(max(1, diagonal - length_b), min(length_a, diagonal - 1) + 1)
        j = diagonal - i
        if band is not None:
            inside = np.abs(i / length_a - j / length_b) * scale <= band
            i, j = i[inside], j[inside]
            if not len(i):
                continue
        i, j = xp.asarray(i), xp.asarray(j)
        best = xp.minimum(xp.minimum(total[:, i - 1, j - 1], total[:, i - 1, j]), total[:, i, j - 1])
        total[:, i, j] = cost[:, i - 1, j - 1] + best
    return total[:, length_a, length_b]
