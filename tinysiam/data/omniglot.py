"""Omniglot (Lake et al. 2015): ``images_background*.zip`` and ``images_evaluation.zip``.

Layout inside an archive: ``<root>/<Alphabet>/characterNN/XXXX_YY.png``, one
105x105 black-on-white PNG per drawing (XXXX the character's id, YY the drawer).
"""
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets import LabelledImages, decode_images, iter_members

_DRAWING = r"(?:^|/)([^/]+)/(character\d+)/([^/]+){}$"  # alphabet, character, file


def load_omniglot(paths, size=None, alphabets=None):
    """Omniglot images from one archive (zip or folder) or a list of them.

    Images are inverted so that ink is 1.0 and the background 0.0 (the PNGs
    are black ink on white). One class per (alphabet, character), named
    ``"Alphabet/characterNN"``; ``groups`` holds each class's alphabet. Classes
    are keyed by names, not by archive, so the two minimal sets ``small1`` and
    ``small2``, which both hold Greek and Latin, give each of those characters
    once: a drawing found in two archives under the same alphabet/character/file
    name is kept once if the two files are identical, and is an error if they
    differ. ``names`` gives each drawing as "Alphabet/characterNN/XXXX_YY", the
    name its pen trajectory has in the strokes archives. ``size=(H, W)`` resizes
    with Pillow at load time. ``alphabets`` keeps only those (each must be there):
    the others are not even decoded.
    """
    found = omniglot_members(paths, ".png", "images")
    keys = sorted(found)
    if alphabets is not None:
        missing = sorted(set(alphabets) - {alphabet for alphabet, _, _ in keys})
        if missing:
            raise ValueError(f"{', '.join(map(str, [paths] if isinstance(paths, (str, Path)) else paths))} lack "
                             f"the alphabets {missing}")
        keys = [key for key in keys if key[0] in set(alphabets)]
    images = decode_images([found[key] for key in keys], size)
    np.subtract(1.0, images, out=images)  # ink = 1
    return LabelledImages(images, *omniglot_labels(keys))


def omniglot_members(paths, suffix, kind):
    """{(alphabet, character, file): (member name, bytes)} of the ``suffix`` files of Omniglot archives.

    A drawing found in two archives is kept once if the two files are
    identical, and is an error if they differ. ``kind`` names the archives in
    errors ("images", "strokes").
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise ValueError(f"paths is empty: give at least one Omniglot {kind} archive or folder")
    pattern = re.compile(_DRAWING.format(re.escape(suffix)))
    found = {}
    for path in paths:
        count = 0
        for name, data in iter_members(path, suffix):
            match = pattern.search(name)
            if match is None:
                continue
            count += 1
            key = match.groups()
            if key in found and found[key][1] != data:
                raise ValueError(f"{path}: {name} differs from {found[key][0]} read before; "
                                 "two different drawings under one alphabet/character/file name")
            found.setdefault(key, (name, data))
        if count == 0:
            raise ValueError(f"{path} is not an Omniglot {kind} archive (no <Alphabet>/characterNN/*{suffix} inside)")
    return found


def omniglot_labels(keys):
    """(labels, class_names, groups, names) of sorted (alphabet, character, file) keys: one class per character."""
    class_keys = sorted({(alphabet, character) for alphabet, character, _ in keys})
    class_index = {key: i for i, key in enumerate(class_keys)}
    labels = np.array([class_index[key[:2]] for key in keys], dtype=np.int64)
    names = [f"{a}/{c}/{Path(f).stem}" for a, c, f in keys]
    return labels, [f"{a}/{c}" for a, c in class_keys], [a for a, _ in class_keys], names


@dataclass
class LakeRun:
    """One of Lake et al.'s 20-way one-shot runs (``all_runs.zip``, or the demo bundle)."""
    name: str  # "run01"
    supports: np.ndarray  # (n_support, 1, H, W) float32, ink = 1.0, in classNN order
    queries: np.ndarray  # (n_query, 1, H, W), in itemNN order
    answers: np.ndarray  # (n_query,) int64: index of each query's true support image
