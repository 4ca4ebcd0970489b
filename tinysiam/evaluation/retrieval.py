"""Nearest-neighbour retrieval, exact: the one implementation behind ``tinysiam search``, held-out evaluation
(precision@1, recall@k) and the retrieval benchmark.

Items are ranked for each query by a score, higher = nearer: minus the L2, L1
or cosine distance (through cheaper equivalents that rank alike), or a learned
head's score of the pair (``ranking``). ``nearest`` keeps a running top k over
blocks of about ``BLOCK_PAIRS`` query-item scores, on NumPy or CuPy, so memory
stays bounded for any collection size. Leave-one-out retrieval searches each
item among all the others: an item is never its own neighbour, even where a
duplicate of it scores as high.
"""
import numpy as np

from ..engine import backend
from ..siamese.distances import clamped_norm, pairwise_distances, squared_norms

BLOCK_PAIRS = 1 << 22  # query-item scores held at once by exact search (16 MiB of float32)
# the scores of a model's learned head (its ``score_kind``), which scores every query-item pair itself
LEARNED = {"koch_logit": "Koch's head (learned pair weights)", "relation_score": "a relation module",
           "relatedness": "Tai et al.'s relatedness head"}


# ----- exact search ---------------------------------------------------------------------------------
def l2_ranking(queries, items):
    """(n_queries, n_items) scores that rank items as minus their squared L2 distance to the query does.

    They are 2 q.x - |x|^2: minus the squared distance plus |q|^2, the same for
    all of a query's items, so one matrix product and one subtraction.
    """
    scores = queries @ items.T
    scores *= 2
    scores -= squared_norms(items)
    return scores


def cosine_ranking(queries, items):
    """(n_queries, n_items) cosine similarities (norms clamped at NORM_EPS, as the cosine distance does)."""
    return (unit_rows(queries) @ items.T) / clamped_norm(items)[0]


def unit_rows(rows):
    """Each row divided by its L2 norm (at least NORM_EPS)."""
    return rows / clamped_norm(rows)[0][:, None]


def l1_ranking(queries, items):
    """(n_queries, n_items) minus the L1 distances."""
    return -pairwise_distances(queries, items, "l1")


METRIC_RANKINGS = {"l2": l2_ranking, "cosine": cosine_ranking, "l1": l1_ranking}


def ranking(kind, model=None, item_size=1):
    """(score_fn, block_pairs) with which ``nearest`` ranks items as a model of ``score_kind`` ``kind`` does.

    A learned head scores every query-item pair itself (``model.embedding_similarity``, NumPy out), and L1
    holds a (queries, items, D) difference, so their blocks are ``item_size`` (values per item) times smaller.
    """
    if kind in LEARNED:
        return model.embedding_similarity, max(1, BLOCK_PAIRS // item_size)
    if kind == "neg_l1":
        return l1_ranking, max(1, BLOCK_PAIRS // item_size)
    return METRIC_RANKINGS[kind.removeprefix("neg_")], BLOCK_PAIRS


def nearest(queries, items, k, score_fn=l2_ranking, block_pairs=BLOCK_PAIRS):
    """(indices, scores), each (n_queries, k): the k items with the highest ``score_fn`` for each query, best first.

    Exact: every item is scored, keeping a running top k, in blocks of about
    ``block_pairs`` query-item scores (and at most ``block_pairs`` item values),
    so memory does not grow with the number of items. NumPy or CuPy arrays;
    the results live on the same device.
    """
    xp = backend.xp_of(items)
    if not 1 <= k <= len(items):
        raise ValueError(f"k must be between 1 and the number of items ({len(items)}), got {k}")
    query_rows = min(len(queries), 1024, max(1, block_pairs // k))
    item_rows = max(k, min(block_pairs // query_rows, block_pairs // int(np.prod(items.shape[1:]))))
    found_indices, found_scores = [], []
    for q in range(0, len(queries), query_rows):
        block = queries[q:q + query_rows]
        best_scores = best_indices = None
        for start in range(0, len(items), item_rows):
            scores = score_fn(block, items[start:start + item_rows])
            indices = xp.broadcast_to(xp.arange(start, start + scores.shape[1]), scores.shape)
            if best_scores is None:
                rows = slice(None)
            else:  # merge only the queries whose k-th best so far this block beats: few, once k good ones are found
                rows = xp.flatnonzero((scores > best_scores.min(axis=1, keepdims=True)).any(axis=1))
                if len(rows) == 0:
                    continue
                scores = xp.concatenate([best_scores[rows], scores[rows]], axis=1)
                indices = xp.concatenate([best_indices[rows], indices[rows]], axis=1)
            if scores.shape[1] > k:
                keep = xp.argpartition(-scores, k - 1, axis=1)[:, :k]
                scores, indices = xp.take_along_axis(scores, keep, axis=1), xp.take_along_axis(indices, keep, axis=1)
            if best_scores is None:
                best_scores, best_indices = scores, indices.copy()  # a copy: the broadcast view is read-only
            else:
                best_scores[rows], best_indices[rows] = scores, indices
        order = xp.argsort(-best_scores, axis=1)
        found_scores.append(xp.take_along_axis(best_scores, order, axis=1))
        found_indices.append(xp.take_along_axis(best_indices, order, axis=1))
    return xp.concatenate(found_indices), xp.concatenate(found_scores)


# ----- retrieval quality ------------------------------------------------------------------------------
def leave_one_out_neighbours(points, k, score_fn=l2_ranking, block_pairs=BLOCK_PAIRS):
    """(N, k) indices of each point's k nearest other points, by exact search."""
    if not 1 <= k < len(points):
        raise ValueError(f"k must be between 1 and {len(points) - 1} (the other items), got {k}")
    indices, _ = nearest(points, points, k + 1, score_fn, block_pairs)
    indices = backend.to_numpy(indices)
    itself = indices == np.arange(len(indices))[:, None]
    # move each point's own entry to the end (a duplicate point may outrank it), then drop the last column
    return np.take_along_axis(indices, np.argsort(itself, axis=1, kind="stable"), axis=1)[:, :k]


def retrieval_scores(neighbours, labels, ks):
    """precision@1 and recall@k (some same-label item among the first k) of ranked neighbour indices."""
    hits = labels[neighbours] == labels[:, None]
    return {"precision_at_1": float(hits[:, 0].mean()),
            **{f"recall_at_{k}": float(hits[:, :k].any(axis=1).mean()) for k in ks}}


def retrieval_quality(model, images, labels, ks=(1, 5, 10)):
    """Each image searched among all the others, ranked as ``tinysiam search`` ranks (exact), next to raw-pixel
    (L2) search.

    Returns {"images", "classes", "model": {"precision_at_1", "recall_at_1", ...}, "pixels": {...}}.
    """
    labels = np.asarray(labels)
    if not 1 <= max(ks) < len(labels):
        raise ValueError(f"ks must lie between 1 and {len(labels) - 1} (the other images), got {ks}")
    kind = model.score_kind
    with model.evaluating():
        embeddings = model.embed(images)
        if kind in LEARNED:  # the head scores on the model's device from NumPy rows
            embeddings = backend.to_numpy(embeddings)
        ranked = leave_one_out_neighbours(embeddings, max(ks),
                                          *ranking(kind, model, int(np.prod(embeddings.shape[1:]))))
    pixels = leave_one_out_neighbours(np.asarray(images).reshape(len(images), -1), max(ks))
    return {"images": len(images), "classes": int(len(np.unique(labels))),
            "model": retrieval_scores(ranked, labels, ks), "pixels": retrieval_scores(pixels, labels, ks)}


def precision_at_1(embeddings, labels, metric="l2"):
    """Fraction of items whose nearest other item (by the ``metric`` distance) has the same label."""
    return _leave_one_out(embeddings, labels, 1, metric)["precision_at_1"]


def recall_at_k(embeddings, labels, k, metric="l2"):
    """Fraction of items with at least one same-label item among their k nearest (metric-learning usage)."""
    return _leave_one_out(embeddings, labels, k, metric)[f"recall_at_{k}"]


def _leave_one_out(embeddings, labels, k, metric):
    embeddings, labels = backend.to_numpy(embeddings), np.asarray(backend.to_numpy(labels)).ravel()
    if len(embeddings) != len(labels):
        raise ValueError(f"embeddings has {len(embeddings)} rows but labels has {len(labels)}")
    return retrieval_scores(leave_one_out_neighbours(embeddings, k, METRIC_RANKINGS[metric]), labels, (k,))
