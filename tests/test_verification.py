"""Dynamic time warping against a direct double loop, and the balanced verification pairs and their scores."""
import numpy as np
import pytest
from conftest import on
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysiam.evaluation.dtw as dtw
from tinysiam.data import LabelledImages, LabelledSequences
from tinysiam.data.strokes import trajectory_features
from tinysiam.evaluation.dtw import dtw_distance
from tinysiam.evaluation.verification import evaluate_verification, verification_pairs


def direct_dtw(a, b, band=None):
    """One pair (F, L) and (F, M), cell by cell, from the recurrence."""
    length_a, length_b = a.shape[1], b.shape[1]
    total = np.full((length_a + 1, length_b + 1), np.inf)
    total[0, 0] = 0
    for i in range(1, length_a + 1):
        for j in range(1, length_b + 1):
            if band is not None and abs(i / length_a - j / length_b) * max(length_a, length_b) > band:
                continue
            cost = np.linalg.norm(a[:, i - 1] - b[:, j - 1])
            total[i, j] = cost + min(total[i - 1, j - 1], total[i - 1, j], total[i, j - 1])
    return total[length_a, length_b]


@settings(max_examples=30, deadline=None)
@given(pairs=st.integers(1, 4), features=st.integers(1, 3), length_a=st.integers(1, 9), length_b=st.integers(1, 9),
       band=st.one_of(st.none(), st.integers(0, 4)), seed=st.integers(0, 999))
def test_dtw_matches_the_direct_recurrence(pairs, features, length_a, length_b, band, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(pairs, features, length_a)), rng.normal(size=(pairs, features, length_b))
    expected = [direct_dtw(a[p], b[p], band) for p in range(pairs)]
    np.testing.assert_allclose(dtw_distance(a, b, band), expected, rtol=1e-12)


def test_dtw_hand_computed_and_properties():
    a = np.array([[[0.0, 1.0, 2.0]]])
    b = np.array([[[0.0, 1.0, 1.0, 2.0]]])  # a with one step repeated: a warp of it
    assert dtw_distance(a, b)[0] == 0.0
    assert dtw_distance(a, b[:, :, ::-1])[0] == 4.0  # best path: 0-2, 1-1, 1-1, 2-0 costs 2 + 0 + 0 + 2
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 2, 7)), rng.normal(size=(5, 2, 6))
    np.testing.assert_allclose(dtw_distance(x, y), dtw_distance(y, x))  # symmetric
    assert (dtw_distance(x, x) == 0).all()
    z = x + rng.normal(size=x.shape)
    lockstep = np.linalg.norm(x - z, axis=1).sum(axis=1)  # band 0 allows only the diagonal
    np.testing.assert_allclose(dtw_distance(x, z, band=0), lockstep)
    warped = dtw_distance(x, z)  # the diagonal is one of the paths: never worse, here sometimes better
    assert (warped <= lockstep + 1e-12).all() and (warped < lockstep - 0.1).any()


def test_dtw_in_chunks_and_on_each_device(monkeypatch, device):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(7, 3, 10)), rng.normal(size=(7, 3, 8))
    whole = dtw_distance(a, b)
    monkeypatch.setattr(dtw, "PAIR_BUDGET_BYTES", 2 * 2 * 8 * 11 * 9)  # two pairs per chunk
    got = dtw_distance(*on(device, a, b))
    np.testing.assert_allclose(np.asarray(got.get() if hasattr(got, "get") else got), whole, rtol=1e-12)


def test_dtw_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"a and b must be \(P, F, L\) and \(P, F, M\).*\(2, 3, 5\) and \(2, 2, 5\)"):
        dtw_distance(np.zeros((2, 3, 5)), np.zeros((2, 2, 5)))
    with pytest.raises(ValueError, match="band must be an integer >= 0, got -1"):
        dtw_distance(np.zeros((2, 3, 5)), np.zeros((2, 3, 5)), band=-1)
    with pytest.raises(ValueError, match="at least one step each"):
        dtw_distance(np.zeros((2, 3, 0)), np.zeros((2, 3, 5)))


# ----- verification pairs within groups ---------------------------------------------------------------
def alphabets(n_groups=3, classes_per_group=4, items_per_class=5):
    """Labels with classes in groups: class c belongs to group c // classes_per_group."""
    labels = np.repeat(np.arange(n_groups * classes_per_group), items_per_class)
    groups = [f"g{c // classes_per_group}" for c in range(n_groups * classes_per_group)]
    return labels, groups


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 400), seed=st.integers(0, 999))
def test_pairs_are_balanced_distinct_and_within_a_group(n, seed):
    labels, groups = alphabets()
    left, right, same = verification_pairs(labels, n, seed, groups=groups)
    assert len(left) == len(right) == n and same.sum() == (n + 1) // 2
    assert (left != right).all()
    np.testing.assert_array_equal(labels[left] == labels[right], same == 1)
    group = np.array(groups)
    np.testing.assert_array_equal(group[labels[left]], group[labels[right]])  # different pairs share an alphabet
    again = verification_pairs(labels, n, seed, groups=groups)
    assert all(np.array_equal(x, y) for x, y in zip((left, right, same), again))


def test_pairs_cover_every_class_and_group():
    labels, groups = alphabets()
    left, right, same = verification_pairs(labels, 4000, seed=0, groups=groups)
    assert set(labels[left[same == 1]]) == set(range(12))
    assert set(labels[left[same == 0]]) == set(labels[right[same == 0]]) == set(range(12))
    without_groups = verification_pairs(labels, 4000, seed=0)
    crossing = np.array(groups)[labels[without_groups[0]]] != np.array(groups)[labels[without_groups[1]]]
    assert crossing.any()  # without groups, different pairs may come from any two classes


def test_pair_errors():
    labels, groups = alphabets()
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="n must be an integer >= 1"):
            verification_pairs(labels, bad, groups=groups)
    with pytest.raises(ValueError, match="a group with 2 or more classes; each of the 12 classes is alone"):
        verification_pairs(labels, 10, groups=[f"g{c}" for c in range(12)])
    with pytest.raises(ValueError, match="one class with 2 or more items"):
        verification_pairs(np.arange(6), 10, groups=["g"] * 6)
    with pytest.raises(ValueError, match="groups must have an entry per label value 0..11"):
        verification_pairs(labels, 10, groups=groups[:5])


def test_aligned_containers_get_the_same_pairs_and_scores():
    labels, groups = alphabets()
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (12, 2, 6))
    sequences = (centres[labels] + rng.normal(0, 0.3, (len(labels), 2, 6))).astype(np.float32)
    data = LabelledSequences(sequences, labels, [f"c{c}" for c in range(12)], groups)
    images = LabelledImages(sequences.reshape(-1, 1, 2, 6), labels, data.class_names, groups)
    pairs = verification_pairs(data.labels, 400, seed=2, groups=data.groups)
    again = verification_pairs(images.labels, 400, seed=2, groups=images.groups)
    assert all(np.array_equal(x, y) for x, y in zip(pairs, again))

    def minus_distance(a, b):
        return -np.linalg.norm((a - b).reshape(len(a), -1), axis=1)

    result = evaluate_verification(minus_distance, data.items, pairs)
    assert result == evaluate_verification(minus_distance, images.items, pairs)
    assert result.auc > 0.95 and result.eer < 0.1 and result.pairs == 400
    chance = evaluate_verification(lambda a, b: rng.random(len(a)), data.items, pairs)
    assert 0.35 < chance.auc < 0.65


# ----- pen trajectories next to DTW and raw pixels ----------------------------------------------------
def test_trajectories_are_scored_with_their_baselines_on_the_same_within_alphabet_pairs():
    from tinysiam.evaluation.held_out import dtw_pair_scores, evaluate_trajectories

    labels, groups = alphabets()
    rng = np.random.default_rng(1)
    walks = np.cumsum(rng.normal(0, 1, (12, 2, 16)), axis=2)[labels] + rng.normal(0, 0.2, (len(labels), 2, 16))
    sequences = trajectory_features(walks, np.zeros((len(labels), 16), bool))
    names = [f"drawing{i}" for i in range(len(labels))]
    test = LabelledSequences(sequences, labels, [f"c{c}" for c in range(12)], groups, names)
    images = LabelledImages(rng.random((len(labels), 1, 4, 4)).astype(np.float32), labels, test.class_names,
                            groups, names)

    class FirstPoint:  # a "model" that scores a pair by minus the distance of their first points
        def pair_scores(self, left, right):
            return -np.linalg.norm(left[:, :2, 0] - right[:, :2, 0], axis=1)

    result = evaluate_trajectories(FirstPoint(), test, images, pairs=300, seed=4)
    pairs = verification_pairs(labels, 300, seed=4, groups=groups)
    assert result["test_verification_eer_dtw"] == evaluate_verification(dtw_pair_scores, sequences, pairs).eer
    assert result["test_verification_auc"] == evaluate_verification(FirstPoint().pair_scores, sequences, pairs).auc
    assert result["test_verification_auc_dtw"] > 0.95  # the same walk with a little noise: DTW tells them apart
    assert 0.3 < result["test_verification_auc_raw_pixels"] < 0.7  # random images: chance
    assert result["test_classes"] == 12 and result["test_alphabets"] == ["g0", "g1", "g2"]
    with pytest.raises(ValueError, match="images must hold the drawings of test in its order"):
        evaluate_trajectories(FirstPoint(), test, images.subset(np.arange(len(labels))[::-1]))
