"""MNIST from its four idx files, gzipped (as published) or not.

An idx file starts with a 4-byte big-endian magic number (2051 for the image
file, 2049 for the labels: bytes 0, 0, 0x08 for unsigned bytes, then the number
of dimensions), one 4-byte big-endian size per dimension, then the data.
"""
import gzip
import zlib
from pathlib import Path

import numpy as np

from .datasets import LabelledImages, pillow, resize

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def read_idx(path, magic):
    """The uint8 array in the idx file ``path`` (.gz or raw), checking its magic number and size."""
    path = Path(path)
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as error:  # a damaged or truncated gzip stream
        raise ValueError(f"{path}: cannot be read ({error})") from None
    found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if found != magic:
        raise ValueError(f"{path}: magic number {found}, expected {magic} (not an MNIST idx file of this kind)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes) but {max(len(data) - header, 0)} "
                         "bytes follow it")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find(folder, stem):
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {stem} or {stem}.gz in {folder}")


def load_mnist(folder, split="train", size=None):
    """MNIST's ``split`` ("train": 60000 images, or "test": 10000) from the idx files in ``folder``.

    Reads ``train-images-idx3-ubyte[.gz]`` and ``train-labels-idx1-ubyte[.gz]``
    (``t10k-...`` for the test split). ``size=(H, W)`` resizes with Pillow.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    prefix = "train" if split == "train" else "t10k"
    images_file = _find(folder, f"{prefix}-images-idx3-ubyte")
    labels_file = _find(folder, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_file, IMAGES_MAGIC), read_idx(labels_file, LABELS_MAGIC)  # (N, H, W), (N,)
    if len(images) != len(labels):
        raise ValueError(f"{images_file} holds {len(images)} images but {labels_file} holds {len(labels)} labels")
    if len(labels) and labels.max() > 9:
        raise ValueError(f"{labels_file}: labels must be digits 0-9, found {labels.max()}")
    if size is not None:
        Image = pillow()
        images = np.stack([np.asarray(resize(Image.fromarray(image), size)) for image in images])
    return LabelledImages(images[:, None] / np.float32(255), labels.astype(np.int64),
                          [str(digit) for digit in range(10)])
