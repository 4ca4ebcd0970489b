"""Where a data set's archives are found, and how each data set is split into classes to train on, validate on
and test on (test classes are never trained on).

``registry.py`` says, per data set, which split it uses and describes it in one line. Each ``*_split``
function takes (data_set, size, seed, data_dir, val_split) and returns (train, val, test), test None where
the test is a protocol of its own (Lake's runs); each ``*_classes`` function returns every class, for
protocols that make their own folds.
"""
import os
from pathlib import Path

import numpy as np

from .datasets import LabelledImages, pillow, resize

SUBFOLDERS = ("", "omniglot", "att_faces", "mnist")  # where in the data folder to look
# Lake's 20 runs and the image archives of Omniglot's drawings (for the strokes' pixel baseline)
LAKE_ARCHIVES = ("all_runs",)
OMNIGLOT_FULL_ARCHIVES = ("images_background", "images_evaluation")  # 30 + 20 alphabets, 964 + 659 characters
OMNIGLOT_MINIMAL_ARCHIVES = ("images_background_small1", "images_background_small2")  # 8 of the 30 alphabets
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
    """Every one of ``names`` in ``root`` or its data-set subfolders, as ``name.zip`` or as the unpacked folder;
    a FileNotFoundError naming ``what`` and the ones missing. A zip is preferred over a folder of the same name
    (it is the file as published)."""
    found, missing = [], []
    for name in names:
        candidates = (Path(root, sub, name + suffix) for suffix in (".zip", "") for sub in SUBFOLDERS)
        path = next((c for c in candidates if (c.is_file() if c.suffix == ".zip" else _is_unpacked_archive(c, name))),
                    None)
        (found if path else missing).append(path or name)
    if missing:
        wanted = " and ".join(f"{name}.zip (or its unpacked folder)" for name in missing)
        raise FileNotFoundError(f"{what} needs {wanted} in {root} or its "
                                f"{', '.join(s + '/' for s in SUBFOLDERS if s)} folders")
    return found


def _is_unpacked_archive(path, name):
    """A folder named like the archive; att_faces/ also holds att_faces.zip on some machines, so it must hold sN/."""
    if not path.is_dir():
        return False
    return name != "att_faces" or any(path.glob("s[0-9]*"))


def digits_split(data_set, size, seed, data_dir, val_split):
    everything = digits_classes(data_set, size)
    train, test = everything.select_classes(np.arange(5)), everything.select_classes(np.arange(5, 10))
    train, val = train.split_items(0.8, seed)  # 10 classes only: validate on unseen images of seen classes
    return train, val, test


def koch_split(data_set, size, seed, data_dir, val_split):
    """Koch et al.'s protocol: the 30 background alphabets train, the 10 evaluation alphabets that Lake's runs
    do not use validate; the test is Lake's runs (the other 10 evaluation alphabets are not even read)."""
    from . import load_omniglot, omniglot_protocols

    background, evaluation = find_archives(data_root(data_dir), data_set.archives, f"--data {data_set.name}")
    # each archive must hold its alphabets; a partial one is named with the alphabets it lacks
    background = load_omniglot(background, size, omniglot_protocols.BACKGROUND_ALPHABETS)
    validation = load_omniglot(evaluation, size, omniglot_protocols.KOCH_VALIDATION_ALPHABETS)
    return (*omniglot_protocols.koch_split(background, validation), None)


def vinyals_split(data_set, size, seed, data_dir, val_split):
    """Vinyals et al.'s split of all 50 alphabets: 1,028 / 172 / 423 characters, each rotated four times."""
    from . import load_omniglot, omniglot_protocols

    background, evaluation = find_archives(data_root(data_dir), data_set.archives, f"--data {data_set.name}")
    return omniglot_protocols.vinyals_split(load_omniglot(background, size, omniglot_protocols.BACKGROUND_ALPHABETS),
                                            load_omniglot(evaluation, size, omniglot_protocols.EVALUATION_ALPHABETS))


def omniglot_minimal_split(data_set, size, seed, data_dir, val_split):
    from . import load_omniglot

    archives = find_archives(data_root(data_dir), data_set.archives, f"--data {data_set.name}")
    return (*split_omniglot(load_omniglot(archives, size=size), seed, val_split), None)


def omniglot_demo_split(data_set, size, seed, data_dir, val_split):
    from . import load_demo_background

    return (*split_omniglot(load_demo_background(size), seed, val_split), None)


def strokes_split(data_set, size, seed, data_dir, val_split):
    """``size`` is (features, length): only the length is chosen."""
    from . import load_omniglot_strokes

    archives = find_archives(data_root(data_dir), data_set.archives, f"--data {data_set.name}")
    strokes = load_omniglot_strokes(archives, length=size[1])
    missing = sorted(set(STROKES_TEST_ALPHABETS) - set(strokes.groups))
    if missing:
        raise ValueError(f"the strokes in {', '.join(map(str, archives))} lack the test alphabets {missing}")
    test = strokes.select_groups(STROKES_TEST_ALPHABETS)
    rest = strokes.select_groups(sorted(set(strokes.groups) - set(STROKES_TEST_ALPHABETS)))
    return (*split_omniglot(rest, seed, val_split), test)


def strokes_images_split(data_set, size, seed, data_dir, val_split):
    """The strokes' split, trained and validated on the drawings' images; tested on the trajectories."""
    from .registry import data_set as registered

    train, val, test = registered("strokes").load_split((None, 128), seed, data_dir, val_split)
    return drawing_images(train.names, size, data_dir), drawing_images(val.names, size, data_dir), test


def faces_split(data_set, size, seed, data_dir, val_split):
    train, test = faces_classes(data_set, size, data_dir).split_classes(30, seed)
    train, val = train.split_classes(25, seed)
    return train, val, test


def mnist_split(data_set, size, seed, data_dir, val_split):
    from . import load_mnist

    mnist_dir = _mnist_folder(data_root(data_dir))
    mnist = load_mnist(mnist_dir, "train", size=size)
    train, val = mnist.select_classes(np.arange(5)).split_items(0.9, seed)
    return train, val, load_mnist(mnist_dir, "test", size=size).select_classes(np.arange(5, 10))


def sick_split(data_set, size, seed, data_dir, val_split):
    """SICK's own parts: (train, trial, test) ``SickPairs``; ``size`` and ``seed`` choose nothing here."""
    from .sick import load_sick

    folder = find_archives(data_root(data_dir), data_set.archives, f"--data {data_set.name}")[0]
    pairs = load_sick(folder)
    return pairs["train"], pairs["trial"], pairs["test"]


def digits_classes(data_set, size, data_dir=None):
    """Every class of scikit-learn's digits at ``size``, for protocols that make their own folds."""
    from . import load_digits

    return resized(load_digits(), size)


def faces_classes(data_set, size, data_dir=None):
    """Every subject of the AT&T faces at ``size``, for protocols that make their own folds."""
    from . import load_att_faces

    return load_att_faces(find_archives(data_root(data_dir), data_set.archives, f"--data {data_set.name}")[0],
                          size=size)


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

    archives = find_archives(data_root(data_dir), OMNIGLOT_MINIMAL_ARCHIVES, "the strokes' drawings")
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
