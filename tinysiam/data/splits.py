"""Where each data set is found, and how it is split into classes to train on, validate on and test on.

The policy, one line per data set (test classes are never trained on):

- ``digits``: digits 0-4 train (80% of their images) and validate (the other 20%), 5-9 test;
- ``omniglot``: the background alphabets' characters, 85% train and 15% validate (with
  ``val_split="alphabets"``: whole alphabets, seeded, until they hold 15% of the characters,
  validate); the test is Lake's 20 runs (``tinysiam eval --protocol lake``);
- ``omniglot-demo``: the same, from the minimal background set embedded in the package
  (``bundle.py``; no data folder needed);
- ``strokes``: Omniglot's pen trajectories; the alphabets ``STROKES_TEST_ALPHABETS`` test, the
  others train and validate as ``omniglot``'s characters do (``val_split="alphabets"``: whole alphabets);
- ``faces``: 30 subjects train (25) and validate (5), 10 test;
- ``mnist``: digits 0-4 of the training file train (90%) and validate (10%), digits 5-9 of the test file test.
"""
import os
from pathlib import Path

import numpy as np

from .datasets import LabelledImages, pillow, resize

DATA_SETS = ("digits", "omniglot", "faces", "mnist", "omniglot-demo", "strokes")
SEQUENCE_DATA_SETS = ("strokes",)  # their items are sequences (features, length), not images
# the archives (or the folders they unpack to) of each data set, tried in this order
ARCHIVES = {
    "omniglot": ["images_background", "images_background_small1", "images_background_small2"],
    "strokes": ["strokes_background", "strokes_background_small1", "strokes_background_small2"],
    "lake": ["all_runs"],
    "faces": ["att_faces"],
}
SUBFOLDERS = ("", "omniglot", "att_faces", "mnist")  # where in the data folder to look
# the strokes' test alphabets: three of the eight in the two minimal sets (the rest train and validate),
# fixed before any setting was chosen (on validation alphabets only)
STROKES_TEST_ALPHABETS = ("Balinese", "Japanese_(katakana)", "Tagalog")


def data_root(data_dir=None):
    """The data folder: ``data_dir``, else $TINYSIAM_DATA; FileNotFoundError naming --data-dir if it is absent."""
    root = data_dir or os.environ.get("TINYSIAM_DATA")
    if not root:
        raise FileNotFoundError("--data-dir is needed for this data set (or set TINYSIAM_DATA)")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--data-dir {root} is not a folder")
    return root


def find_archives(root, names, what):
    """Each of ``names`` found in ``root`` or its data-set subfolders, as ``name.zip`` or as the unpacked folder.

    A zip is preferred over a folder of the same name (it is the file as published).
    With ``images_background`` (``strokes_background``) present, the two minimal sets are not added to it.
    """
    found = []
    for name in names:
        for candidate in (Path(root, sub, name + suffix) for suffix in (".zip", "") for sub in SUBFOLDERS):
            if candidate.is_file() if candidate.suffix == ".zip" else _is_unpacked_archive(candidate, name):
                found.append(candidate)
                break
        if found and name.endswith("_background"):  # the full set holds the minimal ones
            break
    if not found:
        wanted = " or ".join(f"{n}.zip (or its unpacked folder)" for n in names)
        raise FileNotFoundError(f"no {what} in {root} or its {', '.join(s + '/' for s in SUBFOLDERS if s)} "
                                f"folders: expected {wanted}")
    return found


def _is_unpacked_archive(path, name):
    """A folder named like the archive; att_faces/ also holds att_faces.zip on some machines, so it must hold sN/."""
    if not path.is_dir():
        return False
    return name != "att_faces" or any(path.glob("s[0-9]*"))


def load_split(data, size, seed=0, data_dir=None, val_split="classes"):
    """(train, val, test) LabelledImages of ``data`` (one of DATA_SETS) at ``size=(H, W)``; test may be None.

    For ``strokes`` they are LabelledSequences and ``size`` is (features, length) (only the length is chosen).
    ``val_split="alphabets"`` (Omniglot only) validates on whole alphabets instead of a share of the characters.
    """
    from . import load_demo_background, load_mnist, load_omniglot, load_omniglot_strokes

    if data not in DATA_SETS:
        raise ValueError(f"--data must be one of {DATA_SETS}, got {data!r}")
    if data == "omniglot-demo":
        return (*split_omniglot(load_demo_background(size), seed, val_split), None)
    if data == "digits":
        everything = load_all_classes("digits", size)
        train, test = everything.select_classes(np.arange(5)), everything.select_classes(np.arange(5, 10))
        train, val = train.split_items(0.8, seed)  # 10 classes only: validate on unseen images of seen classes
        return train, val, test
    root = data_root(data_dir)
    if data == "omniglot":
        archives = find_archives(root, ARCHIVES["omniglot"], "Omniglot background set")
        return (*split_omniglot(load_omniglot(archives, size=size), seed, val_split), None)
    if data == "strokes":
        archives = find_archives(root, ARCHIVES["strokes"], "Omniglot strokes set")
        strokes = load_omniglot_strokes(archives, length=size[1])
        missing = sorted(set(STROKES_TEST_ALPHABETS) - set(strokes.groups))
        if missing:
            raise ValueError(f"the strokes in {', '.join(map(str, archives))} lack the test alphabets {missing}; "
                             "both minimal sets (or the full background set) are needed")
        test = strokes.select_groups(STROKES_TEST_ALPHABETS)
        rest = strokes.select_groups(sorted(set(strokes.groups) - set(STROKES_TEST_ALPHABETS)))
        return (*split_omniglot(rest, seed, val_split), test)
    if data == "faces":
        train, test = load_all_classes("faces", size, data_dir).split_classes(30, seed)
        train, val = train.split_classes(25, seed)
        return train, val, test
    mnist_dir = _mnist_folder(root)
    mnist = load_mnist(mnist_dir, "train", size=size)
    train, val = mnist.select_classes(np.arange(5)).split_items(0.9, seed)
    return train, val, load_mnist(mnist_dir, "test", size=size).select_classes(np.arange(5, 10))


FOLD_DATA_SETS = ("faces", "digits")  # the data sets that k-fold protocols split (tinysiam folds)


def load_all_classes(data, size, data_dir=None):
    """Every class of ``data`` (one of FOLD_DATA_SETS) at ``size=(H, W)``, for protocols that make their own folds."""
    from . import load_att_faces, load_digits

    if data not in FOLD_DATA_SETS:
        raise ValueError(f"--data must be one of {', '.join(FOLD_DATA_SETS)} here, got {data!r}")
    if data == "digits":
        return resized(load_digits(), size)
    return load_att_faces(find_archives(data_root(data_dir), ARCHIVES["faces"], "AT&T faces")[0], size=size)


def split_omniglot(background, seed, val_split="classes", val_share=0.15):
    """(train, val) of Omniglot's background characters: ``val_share`` of the characters validate.

    "classes" draws them at random; "alphabets" takes whole alphabets in a seeded order until
    they hold ``val_share`` of the characters, so that validation, like Lake's runs, meets
    alphabets never trained on.
    """
    if val_split == "classes":
        return background.split_classes(1 - val_share, seed)
    if val_split != "alphabets":
        raise ValueError(f"val_split must be 'classes' or 'alphabets', got {val_split!r}")
    alphabet_of = np.asarray(background.groups)[background.classes]
    alphabets = np.random.default_rng(seed).permutation(np.unique(alphabet_of))
    held_out = np.cumsum([np.sum(alphabet_of == a) for a in alphabets]) < val_share * len(alphabet_of)
    val_alphabets = alphabets[:np.argmin(held_out) + 1]  # up to the first that reaches the share
    val_classes = background.classes[np.isin(alphabet_of, val_alphabets)]
    return background.select_classes(np.setdiff1d(background.classes, val_classes)), \
        background.select_classes(val_classes)


def drawing_images(names, size, data_dir=None):
    """The images of the Omniglot drawings ``names`` ("Alphabet/characterNN/XXXX_YY"), in that order, at
    ``size=(H, W)``: the pictures of pen trajectories, from the image archives in the data folder."""
    from . import load_omniglot

    archives = find_archives(data_root(data_dir), ARCHIVES["omniglot"], "Omniglot background set")
    return load_omniglot(archives, size=size).align_to(names)


def _mnist_folder(root):
    for sub in SUBFOLDERS:
        if any(Path(root, sub).glob("train-images-idx3-ubyte*")):
            return Path(root, sub)
    raise FileNotFoundError(f"no MNIST idx files (train-images-idx3-ubyte[.gz]) in {root} or its mnist/ folder")


def resized(part, size):
    """``part`` with its images resized to ``size=(H, W)`` (Lanczos, as the readers do); itself if already that size."""
    if part.images.shape[2:] == tuple(size):
        return part
    Image = pillow()
    images = np.stack([np.asarray(resize(Image.fromarray(image[0]), size)) for image in part.images])
    return LabelledImages(images[:, None].astype(np.float32), part.labels, part.class_names, part.groups)
