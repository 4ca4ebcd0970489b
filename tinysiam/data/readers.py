"""Readers for Omniglot, the AT&T (ORL) faces, MNIST and scikit-learn's digits.

Images are decoded with Pillow. Each reader takes the archive as published
(.zip) or the folder it unpacks to, and fails with a ValueError naming the
file when the archive is not the expected data set or an image is damaged.
"""
import gzip
import io
import re
import zipfile
from pathlib import Path

import numpy as np

from .datasets import LabelledImages


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading images needs Pillow: pip install tinysiam[data]") from None
    return Image


def iter_members(path, suffix):
    """(name, bytes) for every file ending in ``suffix`` in a zip archive or a folder, sorted by name."""
    path = Path(path)
    if path.is_dir():
        for file in sorted(path.rglob(f"*{suffix}")):
            yield file.relative_to(path).as_posix(), file.read_bytes()
    elif path.is_file():
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is neither a folder nor a zip archive")
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                if name.endswith(suffix) and not name.startswith("__MACOSX/"):
                    yield name, archive.read(name)
    else:
        raise FileNotFoundError(f"no such file or folder: {path}")


def decode_image(data, name, size=None):
    """Grayscale float32 (H, W) in [0, 1]; ``size=(H, W)`` resizes with antialiasing."""
    Image = _pillow()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image = image.convert("L")
            if size is not None:
                image = image.resize((size[1], size[0]), Image.Resampling.LANCZOS)
            return np.asarray(image, dtype=np.float32) / 255
    except (OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"{name}: not a readable image ({e})") from None


def load_omniglot(paths, size=None):
    """Omniglot images (``images_background*.zip``, ``images_evaluation.zip`` or their folders).

    Several archives may be given; the same image in two of them (the minimal
    sets small1 and small2 share Greek and Latin) is kept once. One class per
    (alphabet, character); ``groups`` holds each class's alphabet. Ink is 1.0 and
    paper 0.0 (the PNGs are black on white).
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    pattern = re.compile(r"(?:^|/)([^/]+)/(character\d+)/([^/]+\.png)$")
    found = {}
    for path in paths:
        count = 0
        for name, data in iter_members(path, ".png"):
            match = pattern.search(name)
            if match:
                found.setdefault(match.groups(), (name, data))
                count += 1
        if count == 0:
            raise ValueError(f"{path} is not an Omniglot images archive (no <Alphabet>/characterNN/*.png inside)")
    keys = sorted(found)
    class_keys = sorted({(alphabet, character) for alphabet, character, _ in keys})
    class_index = {key: i for i, key in enumerate(class_keys)}
    images = np.stack([1 - decode_image(found[k][1], found[k][0], size) for k in keys])
    labels = np.array([class_index[k[:2]] for k in keys], dtype=np.int64)
    return LabelledImages(images[:, None], labels, [f"{a}/{c}" for a, c in class_keys],
                          [a for a, _ in class_keys])


def load_att_faces(path, size=None):
    """The AT&T / ORL faces (``att_faces.zip`` or its folder): 40 subjects ``sN/M.pgm``, 112x92."""
    pattern = re.compile(r"(?:^|/)s(\d+)/(\d+)\.pgm$")
    items = []
    for name, data in iter_members(path, ".pgm"):
        match = pattern.search(name)
        if match:
            items.append((int(match.group(1)), int(match.group(2)), name, data))
    if not items:
        raise ValueError(f"{path} is not the AT&T faces archive (no sN/M.pgm inside)")
    items.sort()
    subjects = sorted({s for s, *_ in items})
    index = {s: i for i, s in enumerate(subjects)}
    images = np.stack([decode_image(data, name, size) for _, _, name, data in items])
    labels = np.array([index[s] for s, *_ in items], dtype=np.int64)
    return LabelledImages(images[:, None], labels, [f"s{s}" for s in subjects])


def _read_idx(path, magic):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if found != magic:
        raise ValueError(f"{path}: magic number {found}, expected {magic} (not an MNIST idx file of this kind)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} ({int(np.prod(shape))} bytes) but holds {body.size} bytes")
    return body.reshape(shape)


def _find(folder, stem):
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {stem}[.gz] in {folder}")


def load_mnist(folder, split="train", size=None):
    """MNIST from the four idx files (``train-images-idx3-ubyte[.gz]`` ...) in ``folder``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"), 2051)
    labels = _read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"), 2049)
    if len(images) != len(labels):
        raise ValueError(f"{folder}: {len(images)} {split} images but {len(labels)} labels")
    if size is not None:
        Image = _pillow()
        images = np.stack([np.asarray(Image.fromarray(im).resize((size[1], size[0]), Image.Resampling.LANCZOS))
                           for im in images])
    return LabelledImages((images / np.float32(255)).astype(np.float32)[:, None], labels.astype(np.int64),
                          [str(d) for d in range(10)])


def load_digits():
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes; no download)."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError("the digits data set needs scikit-learn: pip install tinysiam[data]") from None
    digits = sklearn_digits()
    images = (digits.images / 16).astype(np.float32)[:, None]
    return LabelledImages(images, digits.target.astype(np.int64), [str(d) for d in range(10)])
