"""Evaluating a trained Siamese model on classes it never saw: one-shot accuracy, verification, retrieval, figures;
for pen trajectories, verification next to DTW and raw pixels.

``model`` is anything with the scoring methods of the application's SiameseModel:
``embed(images)``, ``embedding_similarity(query_embeddings, support_embeddings)`` and
``similarity(queries, supports)`` ((n_query, n_support) scores, higher = more alike),
``score_embeddings(e1, e2)`` and ``pair_scores(left, right)`` (scores of aligned rows), ``head`` (None for
an embedding model, else the head that scores pairs of embeddings) and ``metric`` (the distance an embedding
model is scored by).
"""
import numpy as np

from ..data.strokes import DX, DY, X, Y
from ..engine.backend import to_numpy
from . import metrics
from .dtw import dtw_distance
from .retrieval import precision_at_1
from .verification import evaluate_verification, pixel_pair_scores, verification_pairs


def check_way(way, labelled, name="way"):
    """``way`` must be between 2 and the number of classes of ``labelled``: never clamped silently."""
    classes = len(labelled.classes)
    if not isinstance(way, (int, np.integer)) or not 2 <= way <= classes:
        raise ValueError(f"{name} must be between 2 and {classes} (the number of classes there), got {way!r}")


def evaluate_held_out(model, test, way, seed=0, pairs=2000, plot_dir=None):
    """One-shot accuracy (``way``-way), verification ROC/AUC/EER on ``pairs`` balanced pairs (next to the raw-pixel
    distance on the same pairs) and, for an embedding model, precision@1, on ``test`` (LabelledImages); figures
    into ``plot_dir`` when given."""
    check_way(way, test)
    embeddings = to_numpy(model.embed(test.images))
    score_fn = None if model.head is None else model.embedding_similarity  # None: the nearest prototype
    one_shot = metrics.n_way_k_shot_accuracy(embeddings, test.labels, way, 1, n_episodes=500, seed=seed,
                                             metric=model.metric, score_fn=score_fn)
    left, right, same = verification_pairs(test.labels, pairs, seed)
    scores = model.score_embeddings(embeddings[left], embeddings[right])
    fpr, tpr, _ = metrics.roc_curve(scores, same)
    auc, (eer, _) = metrics.auc(fpr, tpr), metrics.equal_error_rate(scores, same)
    pixels = evaluate_verification(pixel_pair_scores, test.images, (left, right, same))
    result = {f"test_{way}way_1shot_accuracy": one_shot.accuracy, "test_1shot_ci95": one_shot.ci95,
              "test_classes": len(test.classes), "test_verification_auc": auc, "test_verification_eer": eer,
              "test_verification_auc_raw_pixels": pixels.auc, "test_verification_eer_raw_pixels": pixels.eer}
    if model.head is None:  # retrieval ranks by the embedding distance
        result["test_precision_at_1"] = precision_at_1(embeddings, test.labels, model.metric)
    if plot_dir is not None:
        _plot(model, test, way, seed, plot_dir, fpr, tpr, auc, eer, embeddings)
    return result


def _plot(model, test, way, seed, plot_dir, fpr, tpr, auc, eer, embeddings):
    from . import plots

    plots.plot_roc(fpr, tpr, plot_dir / "roc.png", auc=auc, eer=eer)
    plots.plot_embeddings_2d(embeddings, test.labels, plot_dir / "embeddings.png", test.class_names)
    support, query = metrics.sample_episodes(test.labels, way, 1, 1, 1, seed=seed)[0]
    sims = model.similarity(test.images[query[:1, 0]], test.images[support[:, 0]])[0]
    plots.plot_one_shot(test.images[query[0, 0]], test.images[support[:, 0]], int(np.argmax(sims)), 0,
                        plot_dir / "one_shot.png")


# the raw-pixel baseline of pen trajectories compares their drawings at this size (chosen on validation alphabets)
TRAJECTORY_PIXEL_SIZE = (14, 14)


def evaluate_trajectories(model, test, images, pairs=2000, seed=0, model_images=None):
    """Verification on ``test`` (LabelledSequences of held-out alphabets): ``pairs`` seeded balanced pairs,
    the different ones within one alphabet, scored by the model, by DTW on the trajectories and by the
    raw-pixel distance on ``images`` (LabelledImages of the same drawings in the same order); a dict of
    their AUCs and EERs. An image model scores ``model_images`` (the same drawings at its input size)."""
    for given in (images, model_images):
        if given is not None and given.names != test.names:
            raise ValueError("images must hold the drawings of test in its order (images.align_to(test.names))")
    drawn = verification_pairs(test.labels, pairs, seed, groups=test.groups)
    model_items = test.sequences if model_images is None else model_images.images
    results = {"": evaluate_verification(model.pair_scores, model_items, drawn),
               "_dtw": evaluate_verification(dtw_pair_scores, test.sequences, drawn),
               "_raw_pixels": evaluate_verification(pixel_pair_scores, images.images, drawn)}
    summary = {"test_classes": len(test.classes), "test_pairs": pairs,
               "test_alphabets": sorted(set(np.asarray(test.groups)[test.classes]))}
    for suffix, result in results.items():
        summary[f"test_verification_auc{suffix}"] = result.auc
        summary[f"test_verification_eer{suffix}"] = result.eer
    return summary


def dtw_pair_scores(left, right):
    """The DTW baseline as a pair ``score_fn``: minus the DTW distance of trajectories (N, 5, L) over their
    position and direction, without a band (the settings chosen on the validation alphabets)."""
    channels = [X, Y, DX, DY]
    return -dtw_distance(left[:, channels], right[:, channels])


def raw_pixel_accuracy(test, way, seed=0, n_episodes=500):
    """The trivial baseline: the same one-shot episodes scored by Euclidean distance between raw pixels."""
    check_way(way, test)
    return metrics.n_way_k_shot_accuracy(test.images.reshape(len(test), -1), test.labels, way, 1,
                                         n_episodes=n_episodes, seed=seed)
