"""The readers on the real archives and on small broken ones, and the LabelledImages container."""
import gzip
import io
import zipfile

import numpy as np
import pytest
from conftest import needs_pillow, needs_sklearn
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysiam.data import LabelledImages, load_att_faces, load_digits, load_mnist, load_omniglot


def make_zip(path, files):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def write_folder(root, files):
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def image_bytes(pixels, format="PNG"):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format=format)
    return buffer.getvalue()


def omniglot_listing(path):
    """(alphabet, character, file) of every PNG in an Omniglot archive, read with zipfile alone."""
    with zipfile.ZipFile(path) as archive:
        return {tuple(name.split("/")[-3:]) for name in archive.namelist() if name.endswith(".png")}


# ----- Omniglot ----------------------------------------------------------------------------------
@needs_pillow
def test_omniglot_small1_matches_the_archive_listing(data_root):
    path = data_root / "omniglot" / "images_background_small1.zip"
    listing = omniglot_listing(path)
    data = load_omniglot(path)
    assert len(data) == len(listing) == 2720
    assert sorted(data.class_names) == sorted({f"{a}/{c}" for a, c, _ in listing})
    assert sorted(set(data.groups)) == sorted({a for a, _, _ in listing})
    assert len(data.class_names) == 136 and len(set(data.groups)) == 5
    assert data.images.shape == (2720, 1, 105, 105) and data.images.dtype == np.float32
    assert data.labels.dtype == np.int64 and (np.bincount(data.labels) == 20).all()
    assert set(np.unique(data.images)) == {0.0, 1.0}  # 1-bit PNGs
    assert data.images.mean() < 0.2  # ink is 1.0 on a 0.0 background, and most of a page is background


@needs_pillow
def test_omniglot_small1_and_small2_share_greek_and_latin_once(data_root):
    paths = [data_root / "omniglot" / f"images_background_small{k}.zip" for k in (1, 2)]
    listings = [omniglot_listing(p) for p in paths]
    both = load_omniglot(paths, size=(28, 28))
    union = listings[0] | listings[1]
    assert len(both) == len(union) == 4840  # 2720 + 3120 - 1000 shared drawings
    assert len(both.class_names) == len({(a, c) for a, c, _ in union}) == 242
    shared = {a for a, _, _ in listings[0]} & {a for a, _, _ in listings[1]}
    assert shared == {"Greek", "Latin"} and len(set(both.groups)) == 8
    assert both.images.shape == (4840, 1, 28, 28) and both.images.dtype == np.float32
    assert 0 <= both.images.min() and both.images.max() <= 1
    assert 0 < both.images.mean() < 0.3
    greek = [i for i, group in enumerate(both.groups) if group == "Greek"]
    assert (np.bincount(both.labels, minlength=len(both.class_names))[greek] == 20).all()  # not 40: deduplicated


@needs_pillow
def test_omniglot_zip_and_folder_give_the_same_images_inverted(tmp_path):
    ink = np.full((6, 5), 255)
    ink[2, 3] = 0
    files = {"images_background/Alpha/character01/0001_01.png": image_bytes(ink),
             "images_background/Alpha/character02/0002_01.png": image_bytes(np.zeros((6, 5))),
             "images_background/Beta/character01/0003_01.png": image_bytes(np.full((6, 5), 255))}
    from_zip = load_omniglot(make_zip(tmp_path / "o.zip", files))
    from_folder = load_omniglot(write_folder(tmp_path / "folder", files))
    for got in (from_zip, from_folder):
        assert got.class_names == ["Alpha/character01", "Alpha/character02", "Beta/character01"]
        assert got.groups == ["Alpha", "Alpha", "Beta"]
        expected = np.zeros((3, 1, 6, 5), np.float32)
        expected[0, 0, 2, 3] = 1.0  # the one black pixel is the ink
        expected[1] = 1.0  # an all-black image is all ink
        np.testing.assert_array_equal(got.images, expected)
        np.testing.assert_array_equal(got.labels, [0, 1, 2])


@needs_pillow
def test_omniglot_resize_keeps_the_ink_where_it_was(tmp_path):
    ink = np.full((40, 40), 255)
    ink[:20, :20] = 0  # top-left quarter inked
    data = load_omniglot(make_zip(tmp_path / "o.zip", {"r/A/character01/1_01.png": image_bytes(ink)}), size=(10, 8))
    assert data.images.shape == (1, 1, 10, 8)
    np.testing.assert_allclose(data.images[0, 0, :4, :3], 1, atol=0.02)
    np.testing.assert_allclose(data.images[0, 0, 6:, 5:], 0, atol=0.02)


@needs_pillow
def test_omniglot_conflicting_copies_are_an_error(tmp_path):
    name = "images_background_smallK/Greek/character01/0394_01.png"
    first = make_zip(tmp_path / "a.zip", {name: image_bytes(np.zeros((4, 4)))})
    same = make_zip(tmp_path / "b.zip", {name: image_bytes(np.zeros((4, 4)))})
    other = make_zip(tmp_path / "c.zip", {name: image_bytes(np.full((4, 4), 255))})
    assert len(load_omniglot([first, same])) == 1
    with pytest.raises(ValueError, match="differs from"):
        load_omniglot([first, other])


@needs_pillow
def test_omniglot_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.zip"):
        load_omniglot(tmp_path / "missing.zip")
    with pytest.raises(ValueError, match="paths is empty"):
        load_omniglot([])
    with pytest.raises(ValueError, match="not an Omniglot images archive"):
        load_omniglot(make_zip(tmp_path / "faces.zip", {"att_faces/s1/1.pgm": b"P5"}))
    broken = {"r/Alpha/character01/1_01.png": image_bytes(np.zeros((4, 4))),
              "r/Alpha/character01/1_02.png": image_bytes(np.zeros((4, 4)))[:30]}  # truncated
    with pytest.raises(ValueError, match="character01/1_02.png: not a readable image"):
        load_omniglot(make_zip(tmp_path / "broken.zip", broken))
    mixed = {"r/A/character01/1_01.png": image_bytes(np.zeros((4, 4))),
             "r/A/character01/1_02.png": image_bytes(np.zeros((5, 4)))}
    with pytest.raises(ValueError, match="1_02.png: image is"):
        load_omniglot(make_zip(tmp_path / "mixed.zip", mixed))
    (tmp_path / "text.zip").write_text("not a zip")
    with pytest.raises(ValueError, match="neither a folder nor a zip"):
        load_omniglot(tmp_path / "text.zip")
    good = make_zip(tmp_path / "good.zip", {"r/A/character01/1_01.png": image_bytes(np.zeros((4, 4)))})
    for size in ((0, 4), 28, (2.5, 3)):
        with pytest.raises(ValueError, match="size must be"):
            load_omniglot(good, size=size)
    damaged = bytearray(good.read_bytes())
    damaged[damaged.index(b"IHDR") + 8] ^= 0xFF  # a byte inside the stored PNG: the zip's CRC no longer matches
    (tmp_path / "damaged.zip").write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="member r/A/character01/1_01.png is damaged"):
        load_omniglot(tmp_path / "damaged.zip")


# ----- AT&T faces --------------------------------------------------------------------------------
@needs_pillow
def test_att_faces(data_root):
    path = data_root / "att_faces" / "att_faces.zip"
    faces = load_att_faces(path)
    assert faces.images.shape == (400, 1, 112, 92) and faces.images.dtype == np.float32
    assert faces.class_names == [f"s{n}" for n in range(1, 41)]
    assert (np.bincount(faces.labels) == 10).all()
    assert 0 <= faces.images.min() and faces.images.max() <= 1 and faces.images.std() > 0.1
    from PIL import Image

    with zipfile.ZipFile(path) as archive:  # s1/1.pgm is the first image, s40/10.pgm the last
        first = np.asarray(Image.open(io.BytesIO(archive.read("att_faces/s1/1.pgm"))), np.float32) / 255
        last = np.asarray(Image.open(io.BytesIO(archive.read("att_faces/s40/10.pgm"))), np.float32) / 255
    np.testing.assert_array_equal(faces.images[0, 0], first)
    np.testing.assert_array_equal(faces.images[-1, 0], last)
    small = load_att_faces(path, size=(56, 46))
    assert small.images.shape == (400, 1, 56, 46)
    np.testing.assert_allclose(small.images.mean(axis=(1, 2, 3)), faces.images.mean(axis=(1, 2, 3)), atol=0.01)


@needs_pillow
def test_att_faces_folder_and_bad_input(tmp_path):
    face = np.arange(12, dtype=np.uint8).reshape(4, 3) * 20
    files = {"att_faces/s2/1.pgm": image_bytes(face, "PPM"), "att_faces/s10/1.pgm": image_bytes(face + 1, "PPM"),
             "att_faces/README": b"credits"}
    faces = load_att_faces(write_folder(tmp_path / "folder", files))
    assert faces.class_names == ["s2", "s10"]  # by subject number, not by name
    np.testing.assert_array_equal(faces.images[0, 0], face / np.float32(255))
    np.testing.assert_array_equal(faces.images[1, 0], (face + 1) / np.float32(255))
    with pytest.raises(ValueError, match="not the AT&T faces archive"):
        load_att_faces(make_zip(tmp_path / "omniglot.zip", {"r/A/character01/1_01.png": image_bytes(face)}))
    with pytest.raises(ValueError, match="s1/1.pgm: not a readable image"):
        load_att_faces(make_zip(tmp_path / "broken.zip", {"att_faces/s1/1.pgm": b"P5\n92 112\n255\nshort"}))
    with pytest.raises(ValueError, match="there twice"):
        load_att_faces(make_zip(tmp_path / "twice.zip", {"a/s1/1.pgm": image_bytes(face, "PPM"),
                                                          "b/s1/1.pgm": image_bytes(face, "PPM")}))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_att_faces(tmp_path / "nowhere")


# ----- MNIST -------------------------------------------------------------------------------------
def write_idx(path, magic, array, compress=True):
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(header + np.asarray(array, np.uint8).tobytes())


@pytest.fixture
def mnist_folder(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (7, 28, 28)), rng.integers(0, 10, 7)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", 2051, images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 2049, labels)
    write_idx(tmp_path / "train-images-idx3-ubyte", 2051, images[:5], compress=False)  # unpacked works as well
    write_idx(tmp_path / "train-labels-idx1-ubyte", 2049, labels[:5], compress=False)
    return tmp_path, images, labels


def test_mnist_reads_gzipped_and_raw_idx_files(mnist_folder):
    folder, images, labels = mnist_folder
    test = load_mnist(folder, "test")
    assert test.images.shape == (7, 1, 28, 28) and test.images.dtype == np.float32
    np.testing.assert_array_equal(test.images[:, 0] * 255, images)
    np.testing.assert_array_equal(test.labels, labels)
    assert test.labels.dtype == np.int64 and test.class_names == [str(d) for d in range(10)]
    train = load_mnist(folder, "train")  # the unpacked files
    np.testing.assert_array_equal(train.images[:, 0] * 255, images[:5])


@needs_pillow
def test_mnist_resized(mnist_folder):
    folder, images, labels = mnist_folder
    train = load_mnist(folder, "train", size=(14, 14))
    assert train.images.shape == (5, 1, 14, 14)
    np.testing.assert_allclose(train.images.mean(axis=(1, 2, 3)), images[:5].mean(axis=(1, 2)) / 255, atol=0.02)


def test_mnist_bad_input(mnist_folder):
    folder, images, labels = mnist_folder
    with pytest.raises(ValueError, match="split must be"):
        load_mnist(folder, "validation")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_mnist(folder / "nope")
    write_idx(folder / "train-images-idx3-ubyte", 2049, images[:5], compress=False)  # the labels' magic number
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: magic number 2049, expected 2051"):
        load_mnist(folder, "train")
    write_idx(folder / "train-images-idx3-ubyte", 2051, images[:4], compress=False)
    with pytest.raises(ValueError, match="holds 4 images but .* holds 5 labels"):
        load_mnist(folder, "train")
    data = (folder / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(data[: len(data) // 2])  # a truncated download
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: cannot be read"):
        load_mnist(folder, "test")
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as f:  # header says 7 labels, 6 follow
        f.write((2049).to_bytes(4, "big") + (7).to_bytes(4, "big") + bytes(6))
    with pytest.raises(ValueError, match=r"header says shape \(7,\) \(7 bytes\) but 6 bytes follow"):
        load_mnist(folder, "test")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", 2049, np.full(7, 12))
    with pytest.raises(ValueError, match="labels must be digits 0-9, found 12"):
        load_mnist(folder, "test")
    (folder / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no train-images-idx3-ubyte or train-images-idx3-ubyte.gz"):
        load_mnist(folder / "empty", "train")


# ----- digits ------------------------------------------------------------------------------------
@needs_sklearn
def test_digits():
    from sklearn.datasets import load_digits as sklearn_load_digits

    digits = load_digits()
    assert digits.images.shape == (1797, 1, 8, 8) and digits.images.dtype == np.float32
    assert digits.images.min() == 0.0 and digits.images.max() == 1.0
    np.testing.assert_array_equal(digits.labels, sklearn_load_digits().target)
    np.testing.assert_array_equal(digits.images[:, 0] * 16, sklearn_load_digits().images)


# ----- LabelledImages ----------------------------------------------------------------------------
def labelled(labels):
    labels = np.asarray(labels, dtype=np.int64)
    images = np.arange(len(labels), dtype=np.float32).reshape(-1, 1, 1, 1)  # image i holds the value i
    return LabelledImages(images, labels, [f"c{c}" for c in range(labels.max() + 1)])


def test_split_classes_is_disjoint_complete_and_seeded():
    data = labelled(np.repeat(np.arange(10), 3))
    first, rest = data.split_classes(7, seed=3)
    assert len(first.classes) == 7 and len(rest.classes) == 3
    assert not set(first.labels) & set(rest.labels)
    assert sorted(np.concatenate([first.images, rest.images]).ravel()) == list(range(30))
    again, _ = data.split_classes(7, seed=3)
    np.testing.assert_array_equal(again.labels, first.labels)
    assert any(not np.array_equal(data.split_classes(7, seed=s)[0].classes, first.classes) for s in range(4, 10))
    assert len(data.split_classes(0.2)[0].classes) == 2  # a fraction of the classes
    assert first.class_names == data.class_names  # labels keep their meaning
    for bad in (0, 10, 0.01):
        with pytest.raises(ValueError, match="leaves one part empty"):
            data.split_classes(bad)


def test_select_classes_and_validation():
    data = labelled([0, 1, 2, 1, 0])
    np.testing.assert_array_equal(data.select_classes([0, 2]).images.ravel(), [0, 2, 4])
    with pytest.raises(ValueError, match="labels must have shape"):
        LabelledImages(np.zeros((3, 1, 2, 2), np.float32), np.zeros(2, np.int64), ["a"])
    with pytest.raises(ValueError, match="labels must lie in"):
        LabelledImages(np.zeros((2, 1, 2, 2), np.float32), np.array([0, 1]), ["a"])
    with pytest.raises(ValueError, match="images must have shape"):
        LabelledImages(np.zeros((2, 2, 2), np.float32), np.array([0, 0]), ["a"])
    with pytest.raises(ValueError, match="groups must have one entry per class"):
        LabelledImages(np.zeros((2, 1, 2, 2), np.float32), np.array([0, 0]), ["a"], groups=["x", "y"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=40), st.floats(0.05, 0.95), st.integers(0, 99))
def test_split_items_takes_a_share_of_every_class(labels, fraction, seed):
    data = labelled(labels)
    first, rest = data.split_items(fraction, seed)
    assert sorted(np.concatenate([first.images, rest.images]).ravel()) == list(range(len(labels)))
    counts = np.bincount(data.labels, minlength=6)
    got = np.bincount(first.labels, minlength=6)
    expected = np.where(counts > 0, np.maximum(1, np.round(fraction * counts)), 0)
    np.testing.assert_array_equal(got, expected)
    assert np.array_equal(first.labels, data.labels[first.images.ravel().astype(int)])  # images keep their labels
