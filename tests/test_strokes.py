"""Omniglot's pen trajectories: the reader on the real archives and on broken files, features, augmentation."""
import zipfile

import numpy as np
import pytest
from conftest import on
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysiam.data import LabelledSequences, load_omniglot, load_omniglot_strokes
from tinysiam.data.registry import load_split
from tinysiam.data.splits import STROKES_TEST_ALPHABETS
from tinysiam.data.strokes import (
    DX,
    DY,
    FEATURES,
    PEN_UP,
    TRAJECTORY_RANGES,
    X,
    Y,
    augment_trajectories,
    drawings_to_sequences,
    parse_drawing,
    resample_path,
    trajectory_features,
    trajectory_ranges,
)


def make_zip(path, files):
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def drawing_text(*strokes):
    """The file format: START, then each stroke's x,y,t lines closed by BREAK."""
    lines = ["START"]
    for stroke in strokes:
        lines += [f"{x},{y},{t}" for x, y, t in stroke] + ["BREAK"]
    return "\n".join(lines) + "\n"


L_SHAPE = [(0, 0, 0), (0, -3, 10), (4, -3, 20)]  # down 3, right 4: a path of length 7
DOT = [(8, -3, 40)]


# ----- reading --------------------------------------------------------------------------------------
def test_parse_drawing_reads_strokes_and_times():
    strokes = parse_drawing(drawing_text(L_SHAPE, DOT), "a.txt")
    assert [s.shape for s in strokes] == [(3, 3), (1, 3)]
    np.testing.assert_array_equal(strokes[0], L_SHAPE)
    np.testing.assert_array_equal(strokes[1], DOT)
    # a START heading every stroke, and blank lines, read the same
    text = "START\n0,0,0\n0,-3,10\n4,-3,20\nBREAK\n\nSTART\n8,-3,40\nBREAK\n"
    assert all(np.array_equal(a, b) for a, b in zip(parse_drawing(text, "b.txt"), strokes))


@pytest.mark.parametrize("text, message", [
    ("START\n1,2,3\n", r"a\.txt, line 2: the stroke starting here has no closing BREAK"),
    ("START\n1,2,3\nBREAK\n4,5,6\n7,8,9\n", r"a\.txt, line 4: the stroke starting here has no closing BREAK"),
    ("START\n1,2,3\n1,x,4\nBREAK\n",
     r"a\.txt, line 3: expected 'x,y,t' \(three numbers\), START or BREAK, got '1,x,4'"),
    ("START\n1,2\nBREAK\n", r"a\.txt, line 2: expected 'x,y,t'.*got '1,2'"),
    ("START\n1,2,nan\nBREAK\n", r"line 2: expected 'x,y,t'.*got '1,2,nan'"),
    ("START\nEND\n", r"line 2: expected 'x,y,t'.*got 'END'"),
    ("START\n1,2,3\nBREAK\nBREAK\n", r"a\.txt, line 4: BREAK closes a stroke without points"),
    ("START\n", r"a\.txt: the drawing holds no points"),
    ("", r"a\.txt: the drawing holds no points"),
])
def test_malformed_drawings_name_the_file_and_line(text, message):
    with pytest.raises(ValueError, match=message):
        parse_drawing(text, "a.txt")


def test_reader_keeps_identity_skips_metadata_and_reads_zip_and_folder_alike(tmp_path):
    files = {"strokes_background_small1/Alpha/character01/0001_01.txt": drawing_text(L_SHAPE),
             "strokes_background_small1/Alpha/character01/0001_02.txt": drawing_text(L_SHAPE, DOT),
             "strokes_background_small1/Alpha/character02/0002_01.txt": drawing_text(DOT),
             "strokes_background_small1/Beta/character01/0003_01.txt": drawing_text(L_SHAPE[::-1]),
             "strokes_background_small1/.DS_Store": "\0\0binary",
             "__MACOSX/strokes_background_small1/Alpha/character01/._0001_01.txt": "\0\0binary"}
    from_zip = load_omniglot_strokes(make_zip(tmp_path / "s.zip", files), length=8)
    for name, text in files.items():
        (tmp_path / "folder" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "folder" / name).write_text(text)
    from_folder = load_omniglot_strokes(tmp_path / "folder", length=8)
    assert isinstance(from_zip, LabelledSequences) and from_zip.sequences.shape == (4, len(FEATURES), 8)
    assert from_zip.names == ["Alpha/character01/0001_01", "Alpha/character01/0001_02", "Alpha/character02/0002_01",
                              "Beta/character01/0003_01"]
    assert from_zip.class_names == ["Alpha/character01", "Alpha/character02", "Beta/character01"]
    assert from_zip.groups == ["Alpha", "Alpha", "Beta"]
    np.testing.assert_array_equal(from_zip.labels, [0, 0, 1, 2])
    np.testing.assert_array_equal(from_zip.sequences, from_folder.sequences)
    assert from_folder.names == from_zip.names


def test_reader_errors_name_the_file(tmp_path):
    bad = {"s/Alpha/character01/0001_01.txt": drawing_text(L_SHAPE),
           "s/Alpha/character01/0001_02.txt": "START\n1,2,3\n"}
    with pytest.raises(ValueError, match="s/Alpha/character01/0001_02.txt, line 2: .*no closing BREAK"):
        load_omniglot_strokes(make_zip(tmp_path / "bad.zip", bad))
    with pytest.raises(ValueError, match="0001_01.txt: not a text file of strokes"):
        load_omniglot_strokes(make_zip(tmp_path / "binary.zip", {"s/Alpha/character01/0001_01.txt": b"\xff\xfe"}))
    with pytest.raises(ValueError, match="not an Omniglot strokes archive"):
        load_omniglot_strokes(make_zip(tmp_path / "images.zip", {"s/Alpha/character01/0001_01.png": b""}))
    with pytest.raises(ValueError, match="paths is empty: give at least one Omniglot strokes archive"):
        load_omniglot_strokes([])
    good = make_zip(tmp_path / "good.zip", {"s/Alpha/character01/0001_01.txt": drawing_text(L_SHAPE)})
    for length in (1, 2.5, "64"):
        with pytest.raises(ValueError, match=f"length must be an integer >= 2 .*got {length!r}"):
            load_omniglot_strokes(good, length=length)


def test_strokes_of_both_minimal_sets_match_the_images_drawing_by_drawing(data_root):
    omniglot = data_root / "omniglot"
    strokes = load_omniglot_strokes([omniglot / f"strokes_background_small{k}.zip" for k in (1, 2)], length=32)
    assert strokes.sequences.shape == (4840, len(FEATURES), 32) and strokes.sequences.dtype == np.float32
    assert len(strokes.class_names) == 242 and len(set(strokes.groups)) == 8  # Greek and Latin are in both, once
    images = load_omniglot([omniglot / f"images_background_small{k}.zip" for k in (1, 2)], size=(28, 28))
    assert images.names == strokes.names  # one trajectory per image, named alike
    np.testing.assert_array_equal(images.labels, strokes.labels)
    # the pen passes over the ink: a trajectory's points, drawn at their image coordinates, land on ink
    with zipfile.ZipFile(omniglot / "strokes_background_small1.zip") as archive:
        text = archive.read("strokes_background_small1/Korean/character05/0647_03.txt").decode()
    points = np.concatenate(parse_drawing(text, "0647_03.txt"))
    image = load_omniglot(omniglot / "images_background_small1.zip").align_to(["Korean/character05/0647_03"])
    ink = image.images[0, 0][np.clip(-points[:, 1], 0, 104).astype(int), np.clip(points[:, 0], 0, 104).astype(int)]
    assert ink.mean() > 0.9


def test_the_strokes_split_tests_on_whole_held_out_alphabets(data_root):
    train, val, test = load_split("strokes", (len(FEATURES), 32), seed=0, data_dir=data_root, val_split="alphabets")
    train_alphabets, val_alphabets, test_alphabets = (set(np.asarray(part.groups)[part.classes])
                                                       for part in (train, val, test))
    assert test_alphabets == set(STROKES_TEST_ALPHABETS) and len(train_alphabets | val_alphabets) == 5
    assert not train_alphabets & val_alphabets and not (train_alphabets | val_alphabets) & test_alphabets
    assert test.sequences.shape[1:] == (len(FEATURES), 32) and len(train) + len(val) + len(test) == 4840


# ----- fixed-length features -----------------------------------------------------------------------
def test_resampling_is_even_along_the_path_with_pen_up_moves():
    # the L (length 7), then a pen-up move of length 4 to the dot: 11 units, 12 points one unit apart
    xy, pen_up = resample_path([np.array(L_SHAPE, float), np.array(DOT, float)], 12)
    expected_x = [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    expected_y = [0, -1, -2, -3, -3, -3, -3, -3, -3, -3, -3, -3]
    np.testing.assert_allclose(xy, [expected_x, expected_y], atol=1e-12)
    np.testing.assert_array_equal(pen_up, [0] * 7 + [1] * 5)
    dot_xy, dot_pen = resample_path([np.array(DOT, float)], 4)  # no length: the point, repeated
    np.testing.assert_array_equal(dot_xy, [[8] * 4, [-3] * 4])
    assert not dot_pen.any()


def test_features_are_centred_scaled_and_directions_are_unit():
    sequences = drawings_to_sequences([[np.array(L_SHAPE, float), np.array(DOT, float)]], length=12)
    x, y, dx, dy, pen = sequences[0]
    np.testing.assert_allclose([x.mean(), y.mean()], 0, atol=1e-6)
    np.testing.assert_allclose(np.mean(x ** 2 + y ** 2), 1, atol=1e-6)
    np.testing.assert_allclose(dx ** 2 + dy ** 2, 1, atol=1e-6)
    np.testing.assert_allclose(dx[:3], 0, atol=1e-7)  # going down first
    np.testing.assert_allclose(dy[:3], -1)
    np.testing.assert_allclose(dx[3:], 1)  # then right
    np.testing.assert_array_equal(pen, [0] * 7 + [1] * 5)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 5), length=st.integers(2, 30), seed=st.integers(0, 999))
def test_features_do_not_change_under_moves_and_zooms(n, length, seed):
    rng = np.random.default_rng(seed)
    xy, pen = rng.normal(0, 5, (n, 2, length)), rng.random((n, length)) < 0.3
    moved = 3.5 * xy + rng.normal(0, 10, (n, 2, 1))
    np.testing.assert_allclose(trajectory_features(moved, pen), trajectory_features(xy, pen), atol=1e-5)


# ----- augmentation ---------------------------------------------------------------------------------
def sample_sequences(n=6, length=40, seed=0):
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, 1, (n, 2, length)), axis=2)
    return trajectory_features(walk, rng.random((n, length)) < 0.2)


def test_augmentation_is_seeded_keeps_the_features_consistent_and_stays_close():
    sequences = sample_sequences()
    first = augment_trajectories(sequences, np.random.default_rng(3))
    np.testing.assert_array_equal(first, augment_trajectories(sequences, np.random.default_rng(3)))
    assert not np.array_equal(first, augment_trajectories(sequences, np.random.default_rng(4)))
    assert first.shape == sequences.shape and first.dtype == sequences.dtype
    # the result is itself a feature sequence of its own path
    np.testing.assert_allclose(first, trajectory_features(first[:, [X, Y]], first[:, PEN_UP] > 0.5), atol=1e-5)
    assert set(np.unique(first[:, PEN_UP])) <= {0.0, 1.0}
    change = np.abs(first[:, [X, Y]] - sequences[:, [X, Y]]).mean()
    assert 0.01 < change < 0.5  # distorted, not scrambled


def test_augmentation_with_every_distortion_off_is_the_identity():
    sequences = sample_sequences()
    same = augment_trajectories(sequences, np.random.default_rng(0), rotation=0, stretch=0, shear=0, warp=0, jitter=0)
    np.testing.assert_allclose(same, sequences, atol=1e-5)


def test_trajectory_ranges_scale_every_distortion():
    sequences = sample_sequences()
    np.testing.assert_array_equal(augment_trajectories(sequences, np.random.default_rng(3), **trajectory_ranges()),
                                  augment_trajectories(sequences, np.random.default_rng(3)))
    half = trajectory_ranges(0.5)
    assert half.keys() == TRAJECTORY_RANGES.keys() and all(half[k] == v / 2 for k, v in TRAJECTORY_RANGES.items())
    moved = [np.abs(augment_trajectories(sequences, np.random.default_rng(3), **trajectory_ranges(strength))
                    - sequences)[:, X:Y + 1].mean() for strength in (0.25, 1.0)]
    assert moved[0] < moved[1]
    with pytest.raises(ValueError, match="strength must be a finite number > 0, got 0"):
        trajectory_ranges(0)


def test_augmentation_rotation_alone_rotates_positions_and_directions():
    sequences = sample_sequences()
    turned = augment_trajectories(sequences, np.random.default_rng(0), rotation=30, stretch=0, shear=0, warp=0,
                                  jitter=0)
    # a rotation keeps distances from the centre and turns every direction by the same angle per sequence
    np.testing.assert_allclose(np.hypot(turned[:, X], turned[:, Y]), np.hypot(sequences[:, X], sequences[:, Y]),
                               atol=1e-5)
    angle = np.arctan2(turned[:, DY], turned[:, DX]) - np.arctan2(sequences[:, DY], sequences[:, DX])
    angle = (angle + np.pi) % (2 * np.pi) - np.pi
    assert np.abs(angle).max() <= np.radians(30) + 1e-5
    np.testing.assert_allclose(angle, angle[:, :1].repeat(angle.shape[1], axis=1), atol=1e-4)


def test_augmentation_runs_on_each_device(device):
    sequences = sample_sequences()
    expected = augment_trajectories(sequences, np.random.default_rng(5))
    got, = on(device, sequences)
    got = augment_trajectories(got, np.random.default_rng(5))
    assert type(got) is type(on(device, sequences)[0])
    np.testing.assert_allclose(np.asarray(got.get() if hasattr(got, "get") else got), expected, atol=1e-5)


def test_augmentation_errors_name_the_argument():
    sequences = sample_sequences()
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        augment_trajectories(sequences, 0)
    with pytest.raises(ValueError, match=r"sequences must be \(N, 5, L\).*got shape \(6, 4, 40\)"):
        augment_trajectories(sequences[:, :4], np.random.default_rng(0))
    with pytest.raises(ValueError, match="sequences must be .*at least 2 steps.*got shape \\(6, 5, 1\\)"):
        augment_trajectories(sequences[:, :, :1], np.random.default_rng(0))
    with pytest.raises(ValueError, match="jitter must be >= 0, got -0.1"):
        augment_trajectories(sequences, np.random.default_rng(0), jitter=-0.1)
    with pytest.raises(ValueError, match="stretch must be below 1"):
        augment_trajectories(sequences, np.random.default_rng(0), stretch=1.0)
