"""Verification, retrieval and few-shot metrics."""
import numpy as np
import pytest
from conftest import needs_sklearn
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysiam.evaluation import metrics, retrieval


@needs_sklearn
@settings(max_examples=25, deadline=None)
@given(n=st.integers(4, 60), levels=st.integers(2, 10), seed=st.integers(0, 999))
def test_roc_and_auc_match_scikit_learn_with_ties(n, levels, seed):
    from sklearn import metrics as sklearn_metrics

    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, n).astype(float)  # few levels: many ties
    same = rng.integers(0, 2, n)
    same[:2] = [0, 1]
    fpr, tpr, _ = metrics.roc_curve(scores, same)
    ref_fpr, ref_tpr, _ = sklearn_metrics.roc_curve(same, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    assert metrics.roc_auc(scores, same) == pytest.approx(sklearn_metrics.roc_auc_score(same, scores))


def test_equal_error_rate():
    assert metrics.equal_error_rate([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])[0] == 0.0
    # scores 4 3 2 1 with labels 1 0 1 0: the ROC passes (0, .5) -> (.5, .5) -> (.5, 1); FPR = FNR = 0.5
    assert metrics.equal_error_rate([4, 3, 2, 1], [1, 0, 1, 0])[0] == pytest.approx(0.5)
    # interpolated: the crossing lies between two ROC points
    eer, _ = metrics.equal_error_rate([5, 4, 3, 2, 1], [1, 1, 0, 1, 0])
    assert eer == pytest.approx(1 / 3)


def test_best_threshold_accuracy():
    accuracy, threshold = metrics.best_threshold_accuracy([0.9, 0.7, 0.6, 0.2], [1, 0, 1, 0])
    assert accuracy == 0.75 and threshold in (0.9, 0.6)


def test_threshold_at_far_by_hand():
    scores, same = [9, 8, 7, 6, 5, 4, 3, 2], [1, 1, 0, 1, 0, 1, 0, 0]
    # 4 different pairs: FAR 0.25 admits one of them (score 7), which lets the same pair at 6 pass too
    assert metrics.threshold_at_far(scores, same, 0.25) == (6.0, 0.75)
    assert metrics.threshold_at_far(scores, same, 0.5) == (4.0, 1.0)
    # both different pairs tie at the top score: only a threshold above every score keeps FAR below 1
    threshold, tar = metrics.threshold_at_far([3, 3, 1, 0], [0, 0, 1, 1], 0.5)
    assert threshold > 3 and tar == 0.0


@settings(max_examples=40, deadline=None)
@given(n=st.integers(4, 80), levels=st.integers(2, 12), far=st.floats(0.02, 0.98), seed=st.integers(0, 999))
def test_threshold_at_far_is_the_lowest_threshold_within_the_rate(n, levels, far, seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, n).astype(float)  # ties: a threshold moves whole groups of pairs
    same = rng.integers(0, 2, n)
    same[:2] = [0, 1]
    different = same == 0
    if far * different.sum() < 1:
        with pytest.raises(ValueError, match="cannot be measured"):
            metrics.threshold_at_far(scores, same, far)
        return
    threshold, tar = metrics.threshold_at_far(scores, same, far)

    def false_accept_rate(t):
        return np.mean(scores[different] >= t)

    assert false_accept_rate(threshold) <= far
    assert tar == np.mean(scores[~different] >= threshold)
    lower = scores[scores < threshold]
    if len(lower):  # the next lower threshold would accept too many different pairs
        assert false_accept_rate(lower.max()) > far


def test_retrieval_by_hand():
    emb = np.array([[0.0], [0.1], [5.0], [5.2], [0.15]])
    labels = np.array([0, 0, 1, 1, 1])
    assert retrieval.precision_at_1(emb, labels) == pytest.approx(3 / 5)  # items 1 and 4 are each other's nearest
    assert retrieval.recall_at_k(emb, labels, 2) == pytest.approx(4 / 5)
    assert retrieval.recall_at_k(emb, labels, 3) == 1.0


def test_n_way_accuracy_perfect_and_chance():
    labels = np.repeat(np.arange(20), 5)
    perfect = np.eye(20)[labels] * 10
    assert metrics.n_way_k_shot_accuracy(perfect, labels, 5, 1, n_episodes=50).accuracy == 1.0
    noise = np.random.default_rng(0).standard_normal((100, 8))
    result = metrics.n_way_k_shot_accuracy(noise, labels, 5, 1, n_query=4, n_episodes=300)
    assert abs(result.accuracy - 0.2) < 0.06 and result.ci95 < 0.05


def test_episodes_are_seeded_and_score_fn_path_agrees():
    labels = np.repeat(np.arange(6), 4)
    a = metrics.sample_episodes(labels, 3, 2, 1, 5, seed=1)
    b = metrics.sample_episodes(labels, 3, 2, 1, 5, seed=1)
    assert all((x[0] == y[0]).all() and (x[1] == y[1]).all() for x, y in zip(a, b))
    emb = np.random.default_rng(0).standard_normal((24, 3))

    def negative_distance(q, s):
        return -np.linalg.norm(q[:, None] - s[None], axis=2)

    one = metrics.n_way_k_shot_accuracy(emb, labels, 3, 1, n_episodes=40, seed=2)
    two = metrics.n_way_k_shot_accuracy(emb, labels, 3, 1, n_episodes=40, seed=2, score_fn=negative_distance)
    assert one.accuracy == two.accuracy


@pytest.mark.parametrize("call, message", [
    (lambda: metrics.roc_curve([1, 2], [1, 1]), "both same"),
    (lambda: metrics.roc_curve([1, 2, 3], [1, 0]), "3 values"),
    (lambda: metrics.roc_curve([1, 2], [1, 2]), "only 0 and 1"),
    (lambda: metrics.sample_episodes(np.repeat(np.arange(3), 2), 5, 1), "only 3 qualify"),
    (lambda: retrieval.recall_at_k(np.ones((3, 2)), [0, 1, 1], 3), "k must be between 1 and 2"),
    (lambda: metrics.threshold_at_far([1, 2], [1, 0], 0), "far must be in"),
    (lambda: metrics.threshold_at_far([1, 2, 3], [1, 0, 0], 0.1), "needs at least 10"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
