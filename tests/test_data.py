"""Readers on the real archives and on small broken ones; augmentation; download."""
import gzip
import io
import zipfile

import numpy as np
import pytest

from tinysiam.data import affine_augment, load_att_faces, load_digits, load_mnist, load_omniglot
from tinysiam.data.augment import _bilinear
from tinysiam.data.download import fetch, file_checksum

pytest.importorskip("PIL")


def test_omniglot_minimal_sets(data_root):
    small1 = load_omniglot(data_root / "omniglot" / "images_background_small1.zip")
    assert small1.images.shape == (2720, 1, 105, 105) and len(small1.class_names) == 136
    both = load_omniglot([data_root / "omniglot" / "images_background_small1.zip",
                          data_root / "omniglot" / "images_background_small2.zip"], size=(28, 28))
    # small2 adds 3120 images, 1000 of which (Greek, Latin) are already in small1
    assert both.images.shape == (4840, 1, 28, 28) and len(both.class_names) == 242 and len(set(both.groups)) == 8
    assert both.images.dtype == np.float32 and 0 <= both.images.min() and both.images.max() <= 1
    assert both.images.mean() < 0.3  # ink is 1 on a 0 background: mostly background
    assert (np.bincount(both.labels) == 20).all()


def test_att_faces(data_root):
    faces = load_att_faces(data_root / "att_faces" / "att_faces.zip", size=(56, 46))
    assert faces.images.shape == (400, 1, 56, 46) and len(faces.class_names) == 40
    assert (np.bincount(faces.labels) == 10).all()
    train, test = faces.split_classes(30, seed=0)
    assert not set(train.labels) & set(test.labels) and len(train.classes) == 30


def test_digits():
    digits = load_digits()
    assert digits.images.shape == (1797, 1, 8, 8) and digits.images.max() == 1.0


def make_zip(path, files):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def png_bytes(value=255):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 4), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_readers_accept_a_folder_as_well_as_a_zip(tmp_path):
    files = {"root/Alpha/character01/a_01.png": png_bytes(0), "root/Alpha/character02/b_01.png": png_bytes(255)}
    from_zip = load_omniglot(make_zip(tmp_path / "o.zip", files))
    for name, data in files.items():
        (tmp_path / "folder" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "folder" / name).write_bytes(data)
    from_folder = load_omniglot(tmp_path / "folder")
    np.testing.assert_array_equal(from_zip.images, from_folder.images)
    np.testing.assert_array_equal(from_zip.images[:, 0, 0, 0], [1.0, 0.0])  # black ink becomes 1


def test_reader_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_omniglot(tmp_path / "missing.zip")
    with pytest.raises(ValueError, match="not an Omniglot images archive"):
        load_omniglot(make_zip(tmp_path / "other.zip", {"readme.txt": b"hi"}))
    with pytest.raises(ValueError, match="not the AT&T faces archive"):
        load_att_faces(make_zip(tmp_path / "other2.zip", {"x/1.png": png_bytes()}))
    with pytest.raises(ValueError, match="s1/1.pgm: not a readable image"):
        load_att_faces(make_zip(tmp_path / "broken.zip", {"att/s1/1.pgm": b"P5 garbage"}))
    (tmp_path / "plain.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="neither a folder nor a zip"):
        load_att_faces(tmp_path / "plain.zip")


def write_idx(path, magic, array):
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_files(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", 2051, images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 2049, np.arange(5))
    mnist = load_mnist(tmp_path, "test")
    np.testing.assert_allclose(mnist.images[:, 0] * 255, images, atol=1e-3)
    np.testing.assert_array_equal(mnist.labels, np.arange(5))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", 2049, images)  # the labels' magic number
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", 2049, np.arange(5))
    with pytest.raises(ValueError, match="magic number 2049, expected 2051"):
        load_mnist(tmp_path, "train")


def test_augment_identity_translation_and_determinism():
    images = np.random.default_rng(0).random((4, 1, 9, 9)).astype(np.float32)
    assert np.array_equal(affine_augment(images, np.random.default_rng(0), probability=0), images)
    shifted = affine_augment(images, np.random.default_rng(1), probability=1.0, max_rotation=0, max_shear=0,
                             scale=(1, 1), max_translation=0)
    np.testing.assert_allclose(shifted, images, atol=1e-6)
    one = np.zeros((1, 1, 9, 9), np.float32)
    one[0, 0, 4, 4] = 1
    ys, xs = np.meshgrid(np.arange(9.0), np.arange(9.0), indexing="ij")
    moved = _bilinear(one, (ys - 1)[None], (xs - 2)[None])  # every output pixel reads 1 up and 2 left
    assert moved[0, 0, 5, 6] == 1 and moved.sum() == 1
    a = affine_augment(images, np.random.default_rng(5))
    b = affine_augment(images, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == images.shape and not np.array_equal(a, images)


def test_fetch_verifies_checksums_and_never_keeps_a_bad_file(tmp_path):
    source = tmp_path / "served.zip"
    make_zip(source, {"a.txt": b"hello"})
    good = file_checksum(source, "sha256")
    cache = tmp_path / "cache"
    path = fetch("served.zip", cache_dir=cache, url=source.as_uri(), checksum=good)
    assert path.read_bytes() == source.read_bytes()
    with pytest.raises(ValueError, match="does not match"):
        fetch("other.zip", cache_dir=cache, url=source.as_uri(), checksum="0" * 64)
    assert sorted(p.name for p in cache.iterdir()) == ["served.zip"]
    with pytest.raises(ValueError, match="unknown data file"):
        fetch("imagenet.tar", cache_dir=cache)
