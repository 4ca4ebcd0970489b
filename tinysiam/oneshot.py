"""Lake et al.'s 20-way within-alphabet one-shot protocol on Omniglot's ``all_runs.zip``.

Each of the 20 runs has 20 support images (``runNN/training/classNN.png``, one
per character), 20 queries (``runNN/test/itemNN.png``) and the answer key
``runNN/class_labels.txt``. A query is classified as the support image it
scores highest against; the score is the percentage of the 400 queries
classified right. Lake's own baseline, the modified Hausdorff distance,
is included and reproduces its published 38.75% error on these runs.
"""
import re
from dataclasses import dataclass

import numpy as np

from .data.readers import decode_image, iter_members


@dataclass
class LakeRun:
    name: str
    supports: np.ndarray  # (20, 1, H, W) float32, ink = 1
    queries: np.ndarray  # (20, 1, H, W)
    answers: np.ndarray  # (20,) index of each query's true support image


def load_lake_runs(path, size=None):
    """The runs of ``all_runs.zip`` (or its folder), in order."""
    files = dict(iter_members(path, ".png"))
    keys = dict(iter_members(path, "class_labels.txt"))
    runs = []
    for key_name in sorted(keys):
        run = key_name.split("/")[-2]
        prefix = key_name[: -len("class_labels.txt")]
        support_names = sorted(n for n in files if re.search(rf"(^|/){run}/training/class\d+\.png$", n))
        query_names = sorted(n for n in files if re.search(rf"(^|/){run}/test/item\d+\.png$", n))
        position = {n[len(prefix):]: i for i, n in enumerate(support_names)}
        words = keys[key_name].decode().split()  # "runNN/test/itemA.png runNN/training/classB.png" lines
        answers = {q.split("/", 1)[1]: position[s.split("/", 1)[1]] for q, s in zip(words[0::2], words[1::2])}
        if not support_names or len(answers) != len(query_names):
            raise ValueError(f"{path}: {run} has {len(support_names)} supports, {len(query_names)} queries and "
                             f"{len(answers)} answers; not Lake's all_runs layout")
        runs.append(LakeRun(run, _decode_all(files, support_names, size), _decode_all(files, query_names, size),
                            np.array([answers[n[len(prefix):]] for n in query_names])))
    if not runs:
        raise ValueError(f"{path} holds no runNN/class_labels.txt: not Lake's all_runs.zip")
    return runs


def _decode_all(files, names, size):
    return np.stack([1 - decode_image(files[n], n, size) for n in names])[:, None]


@dataclass
class LakeResult:
    per_run: list  # accuracy of each run

    @property
    def accuracy(self):
        return float(np.mean(self.per_run))

    @property
    def error(self):
        return 1 - self.accuracy

    def __str__(self):
        return f"{self.accuracy:.2%} accuracy ({self.error:.2%} error) over {len(self.per_run)} runs"


def evaluate_lake_runs(runs, score_fn):
    """``score_fn(queries, supports)`` -> (n_query, n_support) similarities (higher = more alike)."""
    per_run = []
    for run in runs:
        scores = np.asarray(score_fn(run.queries, run.supports))
        if scores.shape != (len(run.queries), len(run.supports)):
            raise ValueError(f"score_fn returned shape {scores.shape}, expected {(len(run.queries), len(run.supports))}")
        per_run.append(float(np.mean(np.argmax(scores, axis=1) == run.answers)))
    return LakeResult(per_run)


def ink_points(image):
    """Coordinates (row, col) of the ink pixels of a (1, H, W) image, centred on their mean."""
    points = np.argwhere(image[0] > 0.5).astype(np.float64)
    return points - points.mean(axis=0)


def modified_hausdorff(a, b, tree_a=None, tree_b=None):
    """Dubuisson & Jain's modified Hausdorff distance between point sets (n, 2) and (m, 2):
    the larger of the two mean nearest-neighbour distances. (k-d trees find the neighbours.)"""
    from scipy.spatial import cKDTree

    tree_a = cKDTree(a) if tree_a is None else tree_a
    tree_b = cKDTree(b) if tree_b is None else tree_b
    return max(tree_b.query(a)[0].mean(), tree_a.query(b)[0].mean())


def mhd_scores(queries, supports):
    """Lake's baseline as a ``score_fn``: minus the modified Hausdorff distance of the ink points."""
    from scipy.spatial import cKDTree

    q_points, s_points = [ink_points(q) for q in queries], [ink_points(s) for s in supports]
    q_trees, s_trees = [cKDTree(p) for p in q_points], [cKDTree(p) for p in s_points]
    return np.array([[-modified_hausdorff(qp, sp, qt, st) for sp, st in zip(s_points, s_trees)]
                     for qp, qt in zip(q_points, q_trees)])


def pixel_scores(queries, supports):
    """Nearest neighbour on raw pixels (Koch et al.'s table): minus the Euclidean distance."""
    q, s = queries.reshape(len(queries), -1), supports.reshape(len(supports), -1)
    return -np.sqrt(np.maximum((q * q).sum(1)[:, None] + (s * s).sum(1)[None] - 2 * q @ s.T, 0))
