"""Every data set tinysiam trains on, with its facts in one table: what its items are, where its archives are,
how it is split, whether its ink is stored inverted, and how a model trained on it is tested.

The other layers ask this table (``data_set(name)``) rather than compare data-set names, so a data set added
here is trained, evaluated, verified and searched the same way as the others.
"""
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import splits
from .bundle import DEMO_BUNDLE

ITEM_KINDS = ("images", "sequences", "sentences")
# how a model trained on a data set is tested at the end of training (and by `tinysiam eval`)
TEST_PROTOCOLS = {
    "lake": "Lake's 20 runs, 20-way within-alphabet one-shot, next to MHD and raw pixels",
    "few-shot": "5- and 20-way, 1- and 5-shot episodes over the test classes, next to raw pixels",
    "held-out": "one-shot, verification and retrieval on held-out classes, next to raw pixels",
    "trajectories": "verification on held-out alphabets' pen trajectories, next to DTW and raw pixels",
    "relatedness": "Pearson's r, Spearman's rho and the MSE of the predicted relatedness of the test pairs, next to "
                   "TF-IDF, word-count and word-overlap baselines",
}


@dataclass(frozen=True)
class DataSet:
    name: str
    description: str  # what it is and how it is split, in one line
    items: str  # "images" (N, 1, H, W) in [0, 1], "sequences" (N, features, length), or "sentences" (pairs of them)
    native_size: tuple  # the items' size as published: (H, W); (features, None) for resampled trajectories; None
    test: str  # a key of TEST_PROTOCOLS
    split: Callable  # splits.*_split
    archives: tuple = ()  # the archives (or unpacked folders) looked for in the data folder; () = no data folder
    inverted_ink: bool = False  # dark ink on a light background, read inverted (ink = 1): so must new images be
    alphabets: bool = False  # classes belong to alphabets: validation can hold out whole ones, episodes stay in one
    all_classes: Callable = None  # splits.*_classes, for `tinysiam folds`; None: no k-fold protocol
    bundle: Path = None  # the file inside the package it is read from, if any
    rotated: bool = False  # its classes include rotated copies of each other already (no --rotations)

    def load_split(self, size, seed=0, data_dir=None, val_split="classes"):
        """(train, val, test) LabelledItems at ``size``: (H, W) for images, (features, length) for sequences; test
        may be None (the test is Lake's runs). ``val_split="alphabets"`` validates on whole alphabets."""
        return self.split(self, size, seed, data_dir, val_split)

    def sources(self, data_dir=None):
        """The files it reads: its archives found in the data folder, or the file inside the package."""
        if self.archives:
            return splits.find_archives(splits.data_root(data_dir), self.archives, f"--data {self.name}")
        return [self.bundle] if self.bundle else []

    def load_all_classes(self, size, data_dir=None):
        """Every class at ``size``, for protocols that make their own folds (``tinysiam folds``)."""
        if self.all_classes is None:
            folded = ", ".join(name for name, d in DATA_SETS.items() if d.all_classes is not None)
            raise ValueError(f"--data must be one of {folded} here (the data sets with a k-fold protocol), "
                             f"got {self.name!r}")
        return self.all_classes(self, size, data_dir)


DATA_SETS = {d.name: d for d in (
    DataSet("digits", "scikit-learn's 8x8 digits: 0-4 train (80% of their images) and validate (20%), 5-9 test",
            "images", (8, 8), "held-out", splits.digits_split, all_classes=splits.digits_classes),
    DataSet("omniglot", "Koch et al.'s protocol: Omniglot's 30 background alphabets train, the 10 evaluation "
            "alphabets that Lake's runs do not use validate; tested on Lake's 20 runs", "images", (105, 105), "lake",
            splits.koch_split, archives=splits.OMNIGLOT_FULL_ARCHIVES, inverted_ink=True, alphabets=True),
    DataSet("omniglot-minimal", "Omniglot's two minimal background sets (8 alphabets): 85% of their characters "
            "train, 15% validate (or whole alphabets); tested on Lake's 20 runs", "images", (105, 105), "lake",
            splits.omniglot_minimal_split, archives=splits.OMNIGLOT_MINIMAL_ARCHIVES, inverted_ink=True,
            alphabets=True),
    DataSet("omniglot-demo", "the minimal background sets inside the package, split as omniglot-minimal's; tested "
            "on Lake's 20 runs", "images", (105, 105), "lake", splits.omniglot_demo_split, inverted_ink=True,
            alphabets=True, bundle=DEMO_BUNDLE),
    DataSet("vinyals", "Vinyals et al.'s split of all 50 Omniglot alphabets: 1,028 characters train, 172 validate, "
            "423 test, each rotated by 0, 90, 180 and 270 degrees into four classes", "images", (105, 105),
            "few-shot", splits.vinyals_split, archives=splits.OMNIGLOT_FULL_ARCHIVES, inverted_ink=True,
            alphabets=True, rotated=True),
    DataSet("strokes", "Omniglot's pen trajectories: the alphabets Balinese, Japanese_(katakana) and Tagalog "
            "test, the others train and validate as omniglot's characters do", "sequences", (5, None),
            "trajectories", splits.strokes_split,
            archives=("strokes_background_small1", "strokes_background_small2"), alphabets=True),
    DataSet("strokes-images", "the images of the strokes' drawings, split alike; tested on the strokes' pairs",
            "images", (105, 105), "trajectories", splits.strokes_images_split,
            archives=splits.OMNIGLOT_MINIMAL_ARCHIVES, inverted_ink=True, alphabets=True),
    DataSet("faces", "the AT&T faces: 30 subjects train (25) and validate (5), 10 test", "images", (112, 92),
            "held-out", splits.faces_split, archives=("att_faces",), all_classes=splits.faces_classes),
    DataSet("sick", "SICK's sentence pairs (SemEval 2014 Task 1), each with a relatedness score from 1 to 5: its 4,500 "
            "training pairs train, its 500 trial pairs validate, its 4,927 test pairs test", "sentences", None,
            "relatedness", splits.sick_split, archives=("sick2014",)),
    DataSet("mnist", "MNIST idx files: digits 0-4 of the training file train (90%) and validate (10%), digits 5-9 "
            "of the test file test", "images", (28, 28), "held-out", splits.mnist_split),
)}


def data_set(name):
    """The registered data set ``name``; a ValueError naming --data for an unknown one."""
    if name not in DATA_SETS:
        raise ValueError(f"--data must be one of {', '.join(DATA_SETS)}, got {name!r}")
    return DATA_SETS[name]


def load_split(name, size, seed=0, data_dir=None, val_split="classes"):
    """``data_set(name).load_split(size, seed, data_dir, val_split)``."""
    return data_set(name).load_split(size, seed, data_dir, val_split)
