"""N-way K-shot episodes over held-out classes (Vinyals et al. 2016's protocol): a table of accuracies.

Each episode draws ``n_way`` classes, ``k_shot`` support and ``n_query`` query items of each
(``metrics.sample_episodes``: seeded, and, unless ``groups`` is given, not within one alphabet). A class is
represented by the mean of its support embeddings (a prototype, Snell et al. 2017); a query goes to the class
it scores highest against, with the model's own score: minus the distance its loss trained (an embedding
model: the same as ``metrics.n_way_k_shot_accuracy``'s nearest prototype), or its head (a Relation Network
scores the query's feature maps against the mean of the support feature maps; with one shot, the support's
own). For Omniglot at Vinyals's split, the test classes are the 423 test characters x 4 rotations
(``tinysiam.data.omniglot_protocols.vinyals_split``).
"""
from dataclasses import dataclass

import numpy as np

from ..engine import backend
from ..siamese.distances import pairwise_distances
from .metrics import EpisodeResult, check_finite_scores, sample_episodes

# the settings of the published tables: 5- and 20-way, 1- and 5-shot
STANDARD_SETTINGS = ((5, 1), (5, 5), (20, 1), (20, 5))


def episode_accuracy(model, embeddings, labels, n_way, k_shot, n_query=5, n_episodes=1000, seed=0, groups=None):
    """Mean accuracy over ``n_episodes`` seeded N-way K-shot episodes of ``n_query`` queries per class, with the
    95% interval of the mean over episodes (an ``EpisodeResult``).

    ``embeddings`` are ``model.embed`` of the items whose classes are ``labels`` (computed once, shared by every
    setting); ``model.embedding_similarity(queries, prototypes)`` scores them (higher = more alike).
    """
    embeddings, labels = backend.to_numpy(embeddings), backend.to_numpy(labels).ravel()
    if len(embeddings) != len(labels):
        raise ValueError(f"embeddings has {len(embeddings)} rows but labels has {len(labels)}")
    check_finite_scores(embeddings, "the embeddings")
    accuracies = []
    truth = np.repeat(np.arange(n_way), n_query)
    for support, query in sample_episodes(labels, n_way, k_shot, n_query, n_episodes, seed, groups):
        prototypes = embeddings[support].mean(axis=1)  # (n_way, ...) one per class
        scores = backend.to_numpy(model.embedding_similarity(embeddings[query.ravel()], prototypes))
        check_finite_scores(scores, "the scores")
        accuracies.append(np.mean(np.argmax(scores, axis=1) == truth))
    accuracies = np.asarray(accuracies)
    ci = 1.96 * accuracies.std(ddof=1) / np.sqrt(len(accuracies)) if len(accuracies) > 1 else float("nan")
    return EpisodeResult(float(accuracies.mean()), float(ci), len(accuracies))


class RawPixels:
    """The trivial baseline in the model interface ``few_shot_table`` uses: an image is its own embedding, compared
    by the L2 distance (a prototype is then the mean image of a class's supports)."""

    def embed(self, images):
        return np.asarray(backend.to_numpy(images)).reshape(len(images), -1)

    def embedding_similarity(self, queries, supports):
        return -pairwise_distances(queries, supports, "l2")


@dataclass
class FewShotTable:
    """The accuracy of each (way, shot) setting on one set of held-out classes."""
    results: dict  # {(way, shot): EpisodeResult}
    n_query: int
    classes: int

    def as_dict(self):
        """JSON-ready: {"5way_1shot": {"accuracy", "ci95", "episodes"}, ..., "n_query", "classes"}."""
        rows = {f"{way}way_{shot}shot": {"accuracy": r.accuracy, "ci95": r.ci95, "episodes": r.episodes}
                for (way, shot), r in self.results.items()}
        return {**rows, "n_query": self.n_query, "classes": self.classes}

    def __str__(self):
        return "\n".join(f"{way:3d}-way {shot}-shot: {result}" for (way, shot), result in self.results.items())


def few_shot_table(model, test, settings=STANDARD_SETTINGS, n_query=5, n_episodes=1000, seed=0, groups=None):
    """``episode_accuracy`` of ``model`` on ``test`` (LabelledImages) for each (way, shot) of ``settings``: the
    test items are embedded once (``model.embed``, with the model's test-time augmentation if it has one), and
    every setting draws its own ``n_episodes`` episodes from ``seed``."""
    embeddings = backend.to_numpy(model.embed(test.images))
    results = {(way, shot): episode_accuracy(model, embeddings, test.labels, way, shot, n_query, n_episodes, seed,
                                             groups)
               for way, shot in settings}
    return FewShotTable(results, n_query, len(test.classes))
