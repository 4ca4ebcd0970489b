"""Omniglot (Lake et al. 2015): ``images_background*.zip`` and ``images_evaluation.zip``.

Layout inside an archive: ``<root>/<Alphabet>/characterNN/XXXX_YY.png``, one
105x105 black-on-white PNG per drawing (XXXX the character's id, YY the drawer).
"""
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets import LabelledImages, decode_images, iter_members

_IMAGE = re.compile(r"(?:^|/)([^/]+)/(character\d+)/([^/]+\.png)$")


def load_omniglot(paths, size=None):
    """Omniglot images from one archive (zip or folder) or a list of them.

    Images are inverted so that ink is 1.0 and the background 0.0 (the PNGs
    are black ink on white). One class per (alphabet, character), named
    ``"Alphabet/characterNN"``; ``groups`` holds each class's alphabet. Classes
    are keyed by names, not by archive, so the two minimal sets ``small1`` and
    ``small2``, which both hold Greek and Latin, give each of those characters
    once: a drawing found in two archives under the same alphabet/character/file
    name is kept once if the two files are identical, and is an error if they
    differ. ``size=(H, W)`` resizes with Pillow at load time.
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise ValueError("paths is empty: give at least one Omniglot archive or folder")
    found = {}  # (alphabet, character, file) -> (member name, bytes)
    for path in paths:
        count = 0
        for name, data in iter_members(path, ".png"):
            match = _IMAGE.search(name)
            if match is None:
                continue
            count += 1
            key = match.groups()
            if key in found and found[key][1] != data:
                raise ValueError(f"{path}: {name} differs from {found[key][0]} read before; "
                                 "two different drawings under one alphabet/character/file name")
            found.setdefault(key, (name, data))
        if count == 0:
            raise ValueError(f"{path} is not an Omniglot images archive (no <Alphabet>/characterNN/*.png inside)")

    keys = sorted(found)
    class_keys = sorted({(alphabet, character) for alphabet, character, _ in keys})
    class_index = {key: i for i, key in enumerate(class_keys)}
    images = decode_images([found[key] for key in keys], size)
    np.subtract(1.0, images, out=images)  # ink = 1
    labels = np.array([class_index[key[:2]] for key in keys], dtype=np.int64)
    return LabelledImages(images, labels, [f"{a}/{c}" for a, c in class_keys], [a for a, _ in class_keys])


@dataclass
class LakeRun:
    """One of Lake et al.'s 20-way one-shot runs (``all_runs.zip``, or the demo bundle)."""
    name: str  # "run01"
    supports: np.ndarray  # (n_support, 1, H, W) float32, ink = 1.0, in classNN order
    queries: np.ndarray  # (n_query, 1, H, W), in itemNN order
    answers: np.ndarray  # (n_query,) int64: index of each query's true support image
