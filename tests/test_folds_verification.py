"""Subject-disjoint folds and k-fold pair verification, on small synthetic data."""
import numpy as np
import pytest

from tinysiam.data import LabelledImages
from tinysiam.data.folds import subject_folds
from tinysiam.evaluation.metrics import equal_error_rate
from tinysiam.evaluation.verification import (
    FoldSummary,
    VerificationResult,
    evaluate_verification,
    pixel_pair_scores,
    verification_pairs,
)


def test_eight_folds_over_forty_subjects():
    folds = subject_folds(np.arange(40), n_folds=8, seed=0)
    assert [fold.index for fold in folds] == list(range(8))
    for fold in folds:
        assert (len(fold.train), len(fold.val), len(fold.test)) == (30, 5, 5)
        assert sorted(np.concatenate([fold.train, fold.val, fold.test])) == list(range(40))
    # each subject is tested once and validated once, and fold k validates on fold k+1's test subjects
    np.testing.assert_array_equal(np.sort(np.concatenate([f.test for f in folds])), np.arange(40))
    np.testing.assert_array_equal(np.sort(np.concatenate([f.val for f in folds])), np.arange(40))
    for fold, following in zip(folds, folds[1:] + folds[:1]):
        np.testing.assert_array_equal(fold.val, following.test)


def test_folds_are_seeded_and_take_any_labels():
    a, b = subject_folds([3, 9, 4, 7, 11, 5], n_folds=3, seed=1), subject_folds([3, 9, 4, 7, 11, 5], n_folds=3, seed=1)
    assert all(np.array_equal(x.test, y.test) for x, y in zip(a, b))
    assert sorted(np.concatenate([f.test for f in a])) == [3, 4, 5, 7, 9, 11]
    other = subject_folds([3, 9, 4, 7, 11, 5], n_folds=3, seed=2)
    assert any(not np.array_equal(x.test, y.test) for x, y in zip(a, other))


def test_fold_split_selects_the_classes():
    data = LabelledImages(np.zeros((12, 1, 2, 2), np.float32), np.repeat(np.arange(4), 3), list("abcd"))
    fold = subject_folds(data.classes, n_folds=4, seed=0)[0]
    train, val, test = fold.split(data)
    assert set(train.labels) == set(fold.train) and set(val.labels) == set(fold.val)
    assert set(test.labels) == set(fold.test) and len(train) + len(val) + len(test) == 12


@pytest.mark.parametrize("classes, n_folds, error", [
    (np.arange(10), 2, "n_folds must be between 3"),
    (np.arange(4), 5, "n_folds must be between 3 .* classes \\(4\\), got 5"),
    ([1, 1, 2, 3], 3, "distinct labels"),
])
def test_bad_fold_arguments(classes, n_folds, error):
    with pytest.raises(ValueError, match=error):
        subject_folds(classes, n_folds)


def clusters(n_classes=5, per_class=10, noise=0.3, seed=0):
    """Images of ``n_classes`` subjects: a random face per subject plus pixel noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per_class)
    images = rng.random((n_classes, 1, 6, 5))[labels] + noise * rng.standard_normal((len(labels), 1, 6, 5))
    return images.astype(np.float32), labels


def test_balanced_pairs_and_pixel_baseline():
    images, labels = clusters()
    left, right, same = pairs = verification_pairs(labels, n_pairs=2000, seed=0)
    assert len(left) == 2000 and same.sum() == 1000
    np.testing.assert_array_equal(same, labels[left] == labels[right])
    assert all(np.array_equal(x, y) for x, y in zip(pairs, verification_pairs(labels, 2000, seed=0)))
    result = evaluate_verification(pixel_pair_scores, images, pairs)
    distances = np.linalg.norm((images[left] - images[right]).reshape(2000, -1), axis=1)
    assert result.pairs == 2000 and result.eer == equal_error_rate(-distances, same)[0]
    assert result.eer < 0.1 and result.auc > 0.95  # subjects far apart with little noise
    noisy = evaluate_verification(pixel_pair_scores, *clusters(noise=3.0)[:1], pairs)
    assert noisy.eer > result.eer


def test_score_fn_of_the_wrong_shape_is_named():
    images, labels = clusters()
    with pytest.raises(ValueError, match="score_fn returned shape \\(10, 1\\) for 10 pairs"):
        evaluate_verification(lambda a, b: np.zeros((len(a), 1)), images, verification_pairs(labels, 10))


def test_fold_summary_mean_and_sample_sd():
    summary = FoldSummary([VerificationResult(0.1, 0.9, 2000), VerificationResult(0.2, 0.8, 2000),
                           VerificationResult(0.3, 0.95, 2000)])
    assert summary.eer == pytest.approx((0.2, 0.1))  # sd with ddof = 1
    assert summary.auc == pytest.approx((0.8833333, np.std([0.9, 0.8, 0.95], ddof=1)))
    assert str(summary) == "EER 20.00% +- 10.00%, AUC 0.8833 +- 0.0764 over 3 folds"
    assert summary.as_dict()["per_fold"][1] == {"eer": 0.2, "auc": 0.8, "pairs": 2000}
    assert np.isnan(FoldSummary([VerificationResult(0.1, 0.9, 10)]).eer[1])
    with pytest.raises(ValueError, match="at least one fold"):
        FoldSummary([])
