"""The AT&T (formerly ORL) Database of Faces, used by Chopra, Hadsell & LeCun 2005.

``att_faces.zip`` holds ``att_faces/sN/M.pgm``: 40 subjects (N = 1..40), 10
images each (M = 1..10), 112 rows x 92 columns, 8-bit grey.
"""
import re

import numpy as np

from .datasets import LabelledImages, decode_images, iter_members

_IMAGE = re.compile(r"(?:^|/)s(\d+)/(\d+)\.pgm$")


def load_att_faces(path, size=None):
    """The faces of ``att_faces.zip`` or its folder; one class per subject, named ``"sN"``.

    Images are ordered by subject number, then image number. ``size=(H, W)``
    resizes with Pillow at load time. A ``.pgm`` file outside the ``sN/M.pgm``
    layout, an image there twice, or two subjects sharing an image file (one
    person on both sides of a split) is a ValueError naming the files.
    """
    found, first_named = {}, {}  # (subject, image) -> (member name, bytes); bytes -> the first name holding them
    for name, data in iter_members(path, ".pgm"):
        match = _IMAGE.search(name)
        if match is None:
            raise ValueError(f"{path}: {name} is not at sN/M.pgm, the AT&T faces' layout (subject N, image M)")
        key = (int(match.group(1)), int(match.group(2)))
        if key in found:
            raise ValueError(f"{path}: s{key[0]}/{key[1]}.pgm is there twice ({found[key][0]} and {name})")
        if data in first_named:
            raise ValueError(f"{path}: {name} is the same file as {first_named[data]}: a subject held twice would "
                             "put one person in two classes")
        found[key], first_named[data] = (name, data), name
    if not found:
        raise ValueError(f"{path} is not the AT&T faces archive (no sN/M.pgm inside)")

    keys = sorted(found)
    subjects = sorted({subject for subject, _ in keys})
    index = {subject: i for i, subject in enumerate(subjects)}
    images = decode_images([found[key] for key in keys], size)
    labels = np.array([index[subject] for subject, _ in keys], dtype=np.int64)
    return LabelledImages(images, labels, [f"s{subject}" for subject in subjects])
