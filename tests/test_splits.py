"""Where the data sets are found (zipped or unpacked) and how they are split into train, validation and test."""
import zipfile

import numpy as np
import pytest
from test_cli import exit_status
from test_data_readers import image_bytes, make_zip

from tinysiam.data.omniglot_protocols import EVALUATION_ALPHABETS
from tinysiam.data.registry import data_set, load_split
from tinysiam.data.splits import data_root, find_archives


def test_unpacked_archives_are_found_and_zips_preferred(tmp_path):
    (tmp_path / "omniglot" / "images_background_small1" / "Greek").mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "images_background_small2.zip", "w"):
        pass
    (tmp_path / "images_background_small2").mkdir()
    found = find_archives(tmp_path, data_set("omniglot-minimal").archives, "Omniglot")
    assert found == [tmp_path / "omniglot" / "images_background_small1", tmp_path / "images_background_small2.zip"]


def test_each_data_set_reads_its_own_archives_and_names_a_missing_one(tmp_path):
    """The full sets (Koch's protocol, Vinyals's split) and the minimal ones are different data sets: neither
    stands in for the other."""
    for name in ("images_background.zip", "images_background_small1.zip", "images_background_small2.zip"):
        (tmp_path / name).write_bytes(b"")
    assert data_set("omniglot-minimal").sources(tmp_path) == [tmp_path / "images_background_small1.zip",
                                                              tmp_path / "images_background_small2.zip"]
    for name in ("omniglot", "vinyals"):
        with pytest.raises(FileNotFoundError, match=f"--data {name} needs images_evaluation.zip .or its unpacked "
                                                    "folder. in"):
            data_set(name).sources(tmp_path)
    (tmp_path / "images_evaluation.zip").write_bytes(b"")
    assert data_set("omniglot").sources(tmp_path) == [tmp_path / "images_background.zip",
                                                      tmp_path / "images_evaluation.zip"]


def test_a_faces_folder_must_hold_the_subjects(tmp_path):
    (tmp_path / "att_faces").mkdir()
    with pytest.raises(FileNotFoundError, match="AT&T faces needs att_faces.zip .or its unpacked folder. in"):
        find_archives(tmp_path, data_set("faces").archives, "AT&T faces")
    (tmp_path / "att_faces" / "s1").mkdir()
    assert find_archives(tmp_path, data_set("faces").archives, "AT&T faces") == [tmp_path / "att_faces"]


def test_data_root_names_the_option(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYSIAM_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="--data-dir is needed"):
        data_root(None)
    with pytest.raises(FileNotFoundError, match=f"--data-dir {tmp_path / 'nope'} is not a folder"):
        data_root(tmp_path / "nope")


def test_the_digits_split_keeps_test_classes_apart():
    pytest.importorskip("sklearn")
    train, val, test = load_split("digits", (8, 8), seed=0)
    assert set(train.classes) == set(val.classes) == {0, 1, 2, 3, 4} and set(test.classes) == {5, 6, 7, 8, 9}
    assert len(train) + len(val) == np.isin(np.concatenate([train.labels, val.labels]), range(5)).sum()


def test_an_unpacked_omniglot_set_loads_like_the_zip(data_root, tmp_path):
    pytest.importorskip("PIL")
    from tinysiam.data import load_omniglot

    archive = data_root / "omniglot" / "images_background_small1.zip"
    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp_path)
    found = find_archives(tmp_path, ("images_background_small1",), "Omniglot")
    assert found == [tmp_path / "images_background_small1"]
    from_folder, from_zip = load_omniglot(found, size=(28, 28)), load_omniglot(archive, size=(28, 28))
    assert from_folder.class_names == from_zip.class_names
    np.testing.assert_array_equal(from_folder.images, from_zip.images)


def _omniglot_zip(path, alphabets, root):
    """A tiny Omniglot-like archive: one 4x4 drawing of one character per alphabet."""
    pixels = np.full((4, 4), 255)
    return make_zip(path, {f"{root}/{a}/character01/0101_01.png": image_bytes(pixels) for a in alphabets})


@pytest.mark.parametrize("data", ["omniglot", "vinyals"])
def test_a_partial_or_foreign_omniglot_archive_is_one_line_naming_it(data, tmp_path, capsys):
    """The full set's protocols need every alphabet of each archive; nothing is written when one lacks some."""
    pytest.importorskip("PIL")
    background = _omniglot_zip(tmp_path / "images_background.zip", ["Greek", "Latin"], "images_background")
    _omniglot_zip(tmp_path / "images_evaluation.zip", EVALUATION_ALPHABETS, "images_evaluation")
    command = ["train", "--data", data, "--preset", "omniglot28", "--data-dir", str(tmp_path),
               "--out", str(tmp_path / "run")]
    assert exit_status(command) == 2
    err = capsys.readouterr().err
    assert f"{background} lack the alphabets ['Alphabet_of_the_Magi'" in err and err.count("\n") == 1
    make_zip(background, {"s1/1.pgm": b"P5 1 1 255 \x00"})  # another data set (AT&T faces) under Omniglot's name
    assert exit_status(command) == 2
    err = capsys.readouterr().err
    assert f"{background} is not an Omniglot images archive" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()
