"""Lake's 20-run protocol, checked by reproducing Lake's own baseline."""
import numpy as np
import pytest

from tinysiam.oneshot import evaluate_lake_runs, ink_points, load_lake_runs, mhd_scores, modified_hausdorff

pytest.importorskip("PIL")
pytest.importorskip("scipy")


def test_modified_hausdorff_by_hand():
    a = np.array([[0.0, 0.0], [0.0, 2.0]])
    b = np.array([[0.0, 1.0]])
    # a -> b: both points 1 away (mean 1); b -> a: 1 away (mean 1)
    assert modified_hausdorff(a, b) == pytest.approx(1.0)
    c = np.array([[0.0, 0.0], [0.0, 4.0], [0.0, 5.0]])
    # a -> c: 0 and 2 (mean 1); c -> a: 0, 2, 3 (mean 5/3): the larger mean wins
    assert modified_hausdorff(a, c) == pytest.approx(5 / 3)


def test_ink_points_are_centred():
    image = np.zeros((1, 5, 5))
    image[0, 1, 1] = image[0, 3, 3] = 1
    np.testing.assert_array_equal(ink_points(image), [[-1, -1], [1, 1]])


def test_lake_runs_layout(data_root):
    runs = load_lake_runs(data_root / "omniglot" / "all_runs.zip")
    assert len(runs) == 20
    for run in runs:
        assert run.supports.shape == (20, 1, 105, 105) and run.queries.shape == (20, 1, 105, 105)
        assert sorted(run.answers) == list(range(20))  # one query per support class


def test_mhd_baseline_reproduces_lakes_published_error(data_root):
    result = evaluate_lake_runs(load_lake_runs(data_root / "omniglot" / "all_runs.zip"), mhd_scores)
    assert result.error == pytest.approx(0.3875, abs=1e-9)  # 155 of 400 queries wrong, as Lake reports
    assert len(result.per_run) == 20
