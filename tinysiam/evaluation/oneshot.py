"""Lake et al.'s 20-way within-alphabet one-shot protocol on Omniglot's ``all_runs.zip``, and its baselines.

Each of the 20 runs has 20 support images (``runNN/training/classNN.png``, one
per character, all from one alphabet), 20 queries (``runNN/test/itemNN.png``)
and the answer key ``runNN/class_labels.txt``, one line per query:
``runNN/test/itemA.png runNN/training/classB.png``. A query is classified as
the support image it scores highest against; the result is the share of the
400 queries classified right. Lake's own baseline, the modified Hausdorff
distance, reproduces the 38.75% error of Lake's demo on these runs.
"""
import re
from dataclasses import dataclass

import numpy as np

from ..data.datasets import decode_images, iter_members
from ..data.omniglot import LakeRun
from ..engine.backend import to_numpy
from .metrics import check_finite_scores

_KEY = re.compile(r"(?:^|/)(run\d+)/class_labels\.txt$")


def load_lake_runs(path, size=None):
    """The runs of ``all_runs.zip`` (or its folder), in order; images inverted so that ink = 1.0.

    ``size=(H, W)`` resizes with Pillow at load time.
    """
    images = dict(iter_members(path, ".png"))
    keys = {name: data for name, data in iter_members(path, "class_labels.txt") if _KEY.search(name)}
    if not keys:
        raise ValueError(f"{path} holds no runNN/class_labels.txt: not Lake's all_runs.zip")
    runs = []
    for key_name, key_data in keys.items():  # sorted by name, so run01 first
        run = _KEY.search(key_name).group(1)
        root = key_name[: -len(f"{run}/class_labels.txt")]  # the key's paths are relative to this
        support_names = sorted(n for n in images if re.fullmatch(rf"{re.escape(root)}{run}/training/class\d+\.png", n))
        query_names = sorted(n for n in images if re.fullmatch(rf"{re.escape(root)}{run}/test/item\d+\.png", n))
        support_index = {name: i for i, name in enumerate(support_names)}
        answer = {}
        try:
            key_text = key_data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{path}: {key_name} is not UTF-8 text: not Lake's answer key") from None
        for line in key_text.splitlines():
            if not line.strip():
                continue
            words = line.split()
            if len(words) != 2 or root + words[0] not in query_names or root + words[1] not in support_index:
                raise ValueError(f"{key_name}: line {line!r} is not '<query image> <its support image>' "
                                 f"naming images that are in {path}")
            answer[root + words[0]] = support_index[root + words[1]]
        missing = sorted(set(query_names) - set(answer))
        if not support_names or not query_names or missing:
            raise ValueError(f"{path}: {run} has {len(support_names)} support images, {len(query_names)} queries, "
                             f"and no answer for {missing}; not Lake's all_runs layout")
        supports = decode_images([(n, images[n]) for n in support_names], size)
        queries = decode_images([(n, images[n]) for n in query_names], size)
        answers = np.array([answer[n] for n in query_names], dtype=np.int64)
        runs.append(LakeRun(run, 1 - supports, 1 - queries, answers))
    return runs


@dataclass
class LakeResult:
    per_run: list  # accuracy of each run, in [0, 1]

    @property
    def accuracy(self):
        """Mean accuracy over the runs."""
        return float(np.mean(self.per_run))

    @property
    def error(self):
        return 1 - self.accuracy

    @property
    def ci95(self):
        """Half-width of the 95% confidence interval of the mean over the runs (1.96 standard errors)."""
        return float(1.96 * np.std(self.per_run, ddof=1) / np.sqrt(len(self.per_run))) if len(self.per_run) > 1 \
            else float("nan")

    def __str__(self):
        return f"{self.accuracy:.2%} accuracy ({self.error:.2%} error) over {len(self.per_run)} runs"


def evaluate_lake_runs(runs, score_fn):
    """Score every run; ``score_fn(queries, supports)`` returns (n_query, n_support) similarities, higher = more
    alike."""
    per_run = []
    for run in runs:
        scores = to_numpy(score_fn(run.queries, run.supports))
        expected = (len(run.queries), len(run.supports))
        if scores.shape != expected:
            raise ValueError(f"score_fn returned shape {scores.shape} for {run.name}, expected {expected}")
        check_finite_scores(scores, f"the scores of {run.name}")
        per_run.append(float(np.mean(np.argmax(scores, axis=1) == run.answers)))
    return LakeResult(per_run)


# ----- baselines -------------------------------------------------------------------------------
def ink_points(image, threshold=0.5):
    """Lake's point set of a (1, H, W) image: (row, column) of each pixel above ``threshold``, centred on their mean.

    For the 1-bit Omniglot images (ink = 1.0) these are exactly the black pixels of the PNG.
    """
    points = _ink_pixels(image, threshold)
    return points - points.mean(axis=0)


def _ink_pixels(image, threshold):
    points = np.argwhere(to_numpy(image)[0] > threshold)  # row-major: sorted by row, then column
    if len(points) == 0:
        raise ValueError(f"image has no ink pixel above threshold={threshold}")
    return points


def modified_hausdorff(a, b):
    """Dubuisson & Jain's modified Hausdorff distance between point sets a (n, 2) and b (m, 2).

    The larger of two means: the mean distance from each point of a to its
    nearest point of b, and the same from b to a.
    """
    distances = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))  # (n, m), all pairs
    return float(max(distances.min(axis=1).mean(), distances.min(axis=0).mean()))


class _InkGrid:
    """The ink pixels of one image, indexed by row and by column for ``_squared_nearest``."""

    def __init__(self, image, threshold):
        points = _ink_pixels(image, threshold)
        self.mean = points.mean(axis=0)
        self.y, self.x = points.T.astype(np.float64)
        rows, self.row_starts = np.unique(points[:, 0], return_index=True)  # each row's points are contiguous
        columns, self.column_of = np.unique(points[:, 1], return_inverse=True)
        self.rows, self.columns = rows.astype(np.float64), columns.astype(np.float64)


def _squared_nearest(a, b, offset):
    """For each ink pixel p of ``a``: the squared distance from p - offset to the nearest ink pixel of ``b``.

    The squared distance splits into a row part and a column part, so the
    search splits in two: for every row of b and every column of a, the
    nearest ink pixel of b within that row (a 1-D search); then, for every
    pixel of a, the best row. That costs (points of b) x (columns of a) plus
    (points of a) x (rows of b) instead of points x points, and stays exact.
    """
    dy, dx = offset
    within_row = np.minimum.reduceat(np.subtract.outer(b.x, a.columns - dx) ** 2, b.row_starts, axis=0)
    total = np.subtract.outer(a.y - dy, b.rows) ** 2 + within_row.T[a.column_of]  # (points of a, rows of b)
    return total.min(axis=1)


def mhd_costs(queries, supports, threshold=0.5):
    """(n_query, n_support) modified Hausdorff distances between the images' ink points, as in Lake's demo.

    Equal to ``modified_hausdorff(ink_points(q), ink_points(s))`` for every
    pair; computed on the pixel grid with ``_squared_nearest``, which is much
    faster than comparing all pairs of points.
    """
    queries = [_InkGrid(q, threshold) for q in to_numpy(queries)]
    supports = [_InkGrid(s, threshold) for s in to_numpy(supports)]
    costs = np.empty((len(queries), len(supports)))
    for i, q in enumerate(queries):
        for j, s in enumerate(supports):
            offset = q.mean - s.mean  # centring both point sets = moving q by -offset
            q_to_s = np.sqrt(_squared_nearest(q, s, offset)).mean()
            s_to_q = np.sqrt(_squared_nearest(s, q, -offset)).mean()
            costs[i, j] = max(q_to_s, s_to_q)
    return costs


def mhd_scores(queries, supports):
    """Lake's baseline as a ``score_fn``: minus the modified Hausdorff distance (the lowest cost wins)."""
    return -mhd_costs(queries, supports)


def pixel_scores(queries, supports):
    """Nearest neighbour on raw pixels (Koch et al.'s table) as a ``score_fn``: minus the Euclidean distance."""
    q, s = to_numpy(queries).reshape(len(queries), -1), to_numpy(supports).reshape(len(supports), -1)
    return -np.sqrt(np.maximum((q * q).sum(1)[:, None] + (s * s).sum(1)[None] - 2 * q @ s.T, 0))
