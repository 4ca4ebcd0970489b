"""The demo bundle: Omniglot's minimal background set and Lake's 20 runs, shipped inside the package.

``demo/omniglot_demo.npz`` holds every drawing of ``images_background_small1.zip``
and ``images_background_small2.zip`` (4840 drawings of 242 characters: Greek
and Latin, which are in both, once) and the 800 images of ``all_runs.zip``
with its answer keys, at their full 105x105 size, one bit per pixel: the
Omniglot PNGs are 1-bit, so nothing is lost, and the loaders return exactly
what ``load_omniglot`` and ``load_lake_runs`` return for the archives, at any
``size``. It is made by ``scripts/build_demo_bundle.py`` (see
docs/demo_bundle.md); the loaders check its sha256 first. Omniglot is MIT
licensed by Brenden Lake: ``demo/LICENSE-omniglot``.

Entries (all numeric or unicode arrays, read without pickle); bits are
``np.packbits`` of an image's 105 x 105 pixels in row-major order, 1 = ink:
- ``background_bits`` (4840, 1379) uint8, ``background_labels`` (4840,) int64,
  ``class_names`` (242,) "Alphabet/characterNN", ``class_alphabets`` (242,);
- ``run_names`` (20,) "runNN", ``run_supports`` (20, 20, 1379) uint8 (classNN order),
  ``run_queries`` (20, 20, 1379) uint8 (itemNN order), ``run_answers`` (20, 20) int64;
- ``image_shape`` (2,) int64: 105, 105.
"""
from pathlib import Path

import numpy as np

from ..serialization import read_npz
from .datasets import LabelledImages, pillow, resize
from .download import file_checksum
from .omniglot import LakeRun

DEMO_BUNDLE = Path(__file__).with_name("demo") / "omniglot_demo.npz"
DEMO_BUNDLE_SHA256 = "3c416d1f4c7eb9e275aa1b527b9993f3aede94f90d07cee6c734bcb532e64e07"


def read_demo_bundle(path=DEMO_BUNDLE):
    """The bundle's entries (name -> array), after checking that the file's sha256 is ``DEMO_BUNDLE_SHA256``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"demo bundle not found: {path} (rebuild it with scripts/build_demo_bundle.py)")
    got = file_checksum(path, "sha256")
    if got != DEMO_BUNDLE_SHA256:
        raise ValueError(f"demo bundle {path} has sha256 {got}, expected {DEMO_BUNDLE_SHA256}: the file is damaged or "
                         "was rebuilt without updating DEMO_BUNDLE_SHA256")
    return read_npz(path)


def load_demo_background(size=None, path=DEMO_BUNDLE):
    """The minimal background set as ``load_omniglot([small1, small2], size)`` returns it (ink = 1.0)."""
    entries = read_demo_bundle(path)
    images = unpack_images(entries["background_bits"], entries["image_shape"], size)
    return LabelledImages(images, entries["background_labels"].astype(np.int64), entries["class_names"].tolist(),
                          entries["class_alphabets"].tolist())


def load_demo_runs(size=None, path=DEMO_BUNDLE):
    """Lake's 20 runs as ``load_lake_runs(all_runs.zip, size)`` returns them: a list of ``LakeRun``."""
    entries = read_demo_bundle(path)
    shape = entries["image_shape"]
    return [LakeRun(str(name), unpack_images(supports, shape, size), unpack_images(queries, shape, size),
                    answers.astype(np.int64))
            for name, supports, queries, answers in zip(entries["run_names"], entries["run_supports"],
                                                        entries["run_queries"], entries["run_answers"])]


def pack_images(images):
    """Binary images (N, 1, H, W), ink = 1.0, as packed bits (N, ceil(H * W / 8)) uint8."""
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (N, 1, H, W), got {images.shape}")
    if not np.isin(images, (0, 1)).all():
        raise ValueError("images must be binary (0 or 1) to be stored one bit per pixel")
    return np.packbits(images.reshape(len(images), -1).astype(bool), axis=1)


def unpack_images(bits, shape, size=None):
    """Packed bits (N, B) back to float32 (N, 1, H, W), ink = 1.0, resized to ``size=(H, W)`` if given.

    Resizing goes through the same steps as the archive readers (a grey image,
    black ink on white, resized by ``resize``, divided by 255, inverted), so the
    result is the same to the bit.
    """
    height, width = (int(n) for n in shape)
    ink = np.unpackbits(bits, axis=1, count=height * width).reshape(len(bits), 1, height, width)
    if size is None:
        return ink.astype(np.float32)
    Image = pillow()
    grey = (1 - ink) * np.uint8(255)
    images = np.stack([np.asarray(resize(Image.fromarray(g[0]), size), dtype=np.float32) for g in grey])[:, None]
    images /= 255
    np.subtract(1.0, images, out=images)
    return images
