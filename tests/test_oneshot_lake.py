"""Lake's 20-run protocol: the reader, the evaluation, and Lake's modified Hausdorff baseline reproduced."""
import io
import zipfile

import numpy as np
import pytest
from conftest import needs_pillow
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinysiam.evaluation.oneshot import (
    LakeRun,
    evaluate_lake_runs,
    ink_points,
    load_lake_runs,
    mhd_costs,
    mhd_scores,
    modified_hausdorff,
    pixel_scores,
)


def test_modified_hausdorff_by_hand():
    a = np.array([[0.0, 0.0], [0.0, 2.0]])
    b = np.array([[0.0, 1.0]])
    assert modified_hausdorff(a, b) == pytest.approx(1.0)  # every point is 1 away from the other set
    c = np.array([[0.0, 0.0], [0.0, 4.0], [0.0, 5.0]])
    # a -> c: 0 and 2 (mean 1); c -> a: 0, 2 and 3 (mean 5/3); the larger mean wins
    assert modified_hausdorff(a, c) == pytest.approx(5 / 3)
    assert modified_hausdorff(c, a) == pytest.approx(5 / 3)


def test_ink_points_are_centred_on_their_mean():
    image = np.zeros((1, 5, 6))
    image[0, 1, 1] = image[0, 3, 5] = 1
    np.testing.assert_array_equal(ink_points(image), [[-1, -2], [1, 2]])
    with pytest.raises(ValueError, match="no ink pixel"):
        ink_points(np.zeros((1, 3, 3)))


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_mhd_costs_equal_the_definition_on_every_pair(data):
    shape = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12)))
    images = data.draw(arrays(np.float32, shape, elements=st.sampled_from([0.0, 1.0])))
    images[:, 0, 0] = 1  # at least one ink pixel each
    queries, supports = images[:, None], images[::-1, None]
    expected = [[modified_hausdorff(ink_points(q), ink_points(s)) for s in supports] for q in queries]
    np.testing.assert_allclose(mhd_costs(queries, supports), expected, rtol=1e-12, atol=1e-12)


def test_mhd_scores_on_shapes_of_known_distance():
    bar = np.zeros((1, 1, 12, 12))
    bar[0, 0, 2:10, 5] = 1  # a vertical bar
    moved = np.roll(bar, (1, 3), axis=(2, 3))  # centring makes a shift free
    cross = bar.copy()
    cross[0, 0, 5, 2:9] = 1
    scores = mhd_scores(bar, np.concatenate([cross, moved]))
    assert scores[0, 1] == 0 and scores[0, 0] < 0


def test_pixel_scores_are_minus_euclidean_distances():
    rng = np.random.default_rng(0)
    q, s = rng.random((3, 1, 4, 4)), rng.random((5, 1, 4, 4))
    expected = -np.sqrt(((q[:, None] - s[None]) ** 2).sum(axis=(2, 3, 4)))
    np.testing.assert_allclose(pixel_scores(q, s), expected, rtol=1e-10)


def test_evaluate_counts_the_best_scoring_support():
    rng = np.random.default_rng(0)
    runs = []
    for i in range(3):
        supports, answers = rng.random((4, 1, 2, 2)), rng.permutation(4)
        runs.append(LakeRun(f"run{i}", supports, supports[answers] + 0.01, answers))  # queries: near copies
    nearest = evaluate_lake_runs(runs, pixel_scores)
    assert nearest.per_run == [1.0, 1.0, 1.0] and nearest.error == 0
    farthest = evaluate_lake_runs(runs, lambda q, s: -pixel_scores(q, s))
    assert farthest.per_run == [0.0, 0.0, 0.0]
    first_always = evaluate_lake_runs(runs, lambda q, s: np.tile([1.0, 0, 0, 0], (4, 1)))
    assert first_always.per_run == [0.25] * 3 and first_always.accuracy == 0.25
    assert str(first_always) == "25.00% accuracy (75.00% error) over 3 runs"
    with pytest.raises(ValueError, match=r"score_fn returned shape \(4, 3\) for run0, expected \(4, 4\)"):
        evaluate_lake_runs(runs, lambda q, s: np.zeros((4, 3)))


# ----- the reader on archives built here -----------------------------------------------------------
def png(value):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((3, 3), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def tiny_runs(prefix=""):
    """Two 3-way runs; support classNN is drawn in grey level 10 * NN, each query in its class's grey."""
    files = {}
    for run, truth in (("run01", [2, 3, 1]), ("run02", [1, 1, 2])):
        key = []
        for c in (1, 2, 3):
            files[f"{prefix}{run}/training/class0{c}.png"] = png(10 * c)
        for item, c in enumerate(truth, start=1):
            files[f"{prefix}{run}/test/item0{item}.png"] = png(10 * c)
            key.append(f"{run}/test/item0{item}.png {run}/training/class0{c}.png")
        files[f"{prefix}{run}/class_labels.txt"] = "\n".join(key) + "\n"
    return files


def make_zip(path, files):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("prefix", ["", "all_runs/"])
@needs_pillow
def test_reader_on_zip_and_folder(tmp_path, prefix):
    files = tiny_runs(prefix)
    folder = tmp_path / "folder"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data.encode() if isinstance(data, str) else data)
    for runs in (load_lake_runs(make_zip(tmp_path / "runs.zip", files)), load_lake_runs(folder)):
        assert [r.name for r in runs] == ["run01", "run02"]
        np.testing.assert_array_equal(runs[0].answers, [1, 2, 0])
        np.testing.assert_array_equal(runs[1].answers, [0, 0, 1])
        np.testing.assert_allclose(runs[0].supports[:, 0, 0, 0], 1 - np.array([10, 20, 30]) / 255, rtol=1e-6)
        same_grey = evaluate_lake_runs(runs, lambda q, s: -np.abs(q[:, None] - s[None]).sum(axis=(2, 3, 4)))
        assert same_grey.accuracy == 1.0  # the key and the images line up


@needs_pillow
def test_reader_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.zip"):
        load_lake_runs(tmp_path / "absent.zip")
    with pytest.raises(ValueError, match="no runNN/class_labels.txt"):
        load_lake_runs(make_zip(tmp_path / "none.zip", {"run01/test/item01.png": png(0)}))
    files = tiny_runs()
    files["run02/class_labels.txt"] += "run02/test/item09.png run02/training/class01.png\n"
    with pytest.raises(ValueError, match="item09.png.* naming images that are in"):
        load_lake_runs(make_zip(tmp_path / "extra.zip", files))
    files = tiny_runs()
    files["run01/class_labels.txt"] = files["run01/class_labels.txt"].split("\n", 1)[1]
    with pytest.raises(ValueError, match=r"no answer for \['run01/test/item01.png'\]"):
        load_lake_runs(make_zip(tmp_path / "short.zip", files))
    files = tiny_runs()
    files["run02/test/item02.png"] = b"\x89PNG\r\n\x1a\nbroken"
    with pytest.raises(ValueError, match="run02/test/item02.png: not a readable image"):
        load_lake_runs(make_zip(tmp_path / "broken.zip", files))


# ----- the real runs ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lake_runs(data_root):
    return load_lake_runs(data_root / "omniglot" / "all_runs.zip")


@needs_pillow
def test_real_runs_layout(lake_runs, data_root):
    assert [r.name for r in lake_runs] == [f"run{i:02d}" for i in range(1, 21)]
    for run in lake_runs:
        assert run.supports.shape == (20, 1, 105, 105) and run.queries.shape == (20, 1, 105, 105)
        assert sorted(run.answers) == list(range(20))  # one query per support character
        assert set(np.unique(run.queries)) == {0.0, 1.0} and run.queries.mean() < 0.2  # ink = 1, mostly paper
    with zipfile.ZipFile(data_root / "omniglot" / "all_runs.zip") as archive:
        lines = archive.read("run07/class_labels.txt").decode().split("\n")
    query, support = lines[0].split()  # "run07/test/item01.png run07/training/classB.png"
    assert query == "run07/test/item01.png" and lake_runs[6].answers[0] == int(support[-6:-4]) - 1


@needs_pillow
def test_mhd_baseline_reproduces_lakes_38_75_percent_error(lake_runs):
    result = evaluate_lake_runs(lake_runs, mhd_scores)
    assert round(result.accuracy * 400) == 245  # 155 of the 400 queries wrong
    assert result.error == pytest.approx(0.3875, abs=1e-12)
    assert len(result.per_run) == 20 and min(result.per_run) < max(result.per_run)
