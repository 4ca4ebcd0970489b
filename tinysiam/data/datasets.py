"""Labelled containers (images or sequences with class labels, class-disjoint splits) and what every reader shares.

The readers take an archive exactly as published (a .zip) or the folder it
unpacks to; ``iter_members`` walks both the same way, and ``decode_images``
turns the image files into one float32 array with Pillow.
"""
import io
import os
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class LabelledItems:
    """Items (N, ...) with int64 labels indexing ``class_names``, and class-disjoint or item-disjoint splits.

    ``groups`` is optional, one entry per class (e.g. the Omniglot alphabet of
    each character). ``names`` is optional, one entry per item: its identity in
    the source (e.g. "Alphabet/characterNN/XXXX_YY"), so that the same item can
    be found in another container. Subsets keep the original label values, so
    ``class_names`` and ``groups`` stay valid for every part. The subclasses say
    what the items are: ``LabelledImages`` (N, C, H, W), ``LabelledSequences`` (N, F, L).
    """
    items: np.ndarray
    labels: np.ndarray
    class_names: list
    groups: list = None
    names: list = None

    item_name = "items"  # what the subclass calls its items, in error messages
    item_axes = None  # e.g. "(N, C, H, W)": the shape the items must have, or None for any

    def __post_init__(self):
        if self.item_axes is not None and self.items.ndim != self.item_axes.count(",") + 1:
            raise ValueError(f"{self.item_name} must have shape {self.item_axes}, got {self.items.shape}")
        if self.labels.shape != (len(self.items),):
            raise ValueError(f"labels must have shape ({len(self.items)},), got {self.labels.shape}")
        if len(self.labels) and not 0 <= self.labels.min() <= self.labels.max() < len(self.class_names):
            raise ValueError(f"labels must lie in [0, {len(self.class_names)}) to index class_names, "
                             f"got [{self.labels.min()}, {self.labels.max()}]")
        if self.groups is not None and len(self.groups) != len(self.class_names):
            raise ValueError(f"groups must have one entry per class ({len(self.class_names)}), got {len(self.groups)}")
        if self.names is not None and len(self.names) != len(self.items):
            raise ValueError(f"names must have one entry per item ({len(self.items)}), got {len(self.names)}")

    def __len__(self):
        return len(self.labels)

    @property
    def classes(self):
        """The label values present, sorted."""
        return np.unique(self.labels)

    def subset(self, keep):
        """The items selected by a boolean mask or an index array."""
        names = None if self.names is None else np.asarray(self.names)[keep].tolist()
        return type(self)(self.items[keep], self.labels[keep], self.class_names, self.groups, names)

    def select_classes(self, classes):
        """The items whose label is in ``classes``."""
        return self.subset(np.isin(self.labels, classes))

    def select_groups(self, groups):
        """The items of the classes whose group (e.g. alphabet) is in ``groups``; each must be a known group."""
        if self.groups is None:
            raise ValueError("select_groups: this data set has no groups")
        groups = [groups] if isinstance(groups, str) else list(groups)
        unknown = sorted(set(groups) - set(self.groups))
        if unknown:
            raise ValueError(f"select_groups: unknown group(s) {unknown}; the groups are {sorted(set(self.groups))}")
        return self.select_classes(np.flatnonzero(np.isin(self.groups, list(groups))))

    def split_classes(self, first, seed=0):
        """Two class-disjoint parts: ``first`` classes drawn at random, and the rest.

        ``first`` is a count of classes, or a fraction of them when below 1.
        """
        classes = self.classes
        n_first = int(round(first * len(classes))) if first < 1 else int(first)
        if not 0 < n_first < len(classes):
            raise ValueError(f"first={first} leaves one part empty: there are {len(classes)} classes")
        chosen = np.random.default_rng(seed).choice(classes, size=n_first, replace=False)
        return self.select_classes(chosen), self.select_classes(np.setdiff1d(classes, chosen))

    def split_items(self, fraction, seed=0):
        """Two item-disjoint parts over the same classes: about ``fraction`` of each class (at least one) goes first."""
        if not 0 < fraction < 1:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        shuffled = np.random.default_rng(seed).permutation(len(self))
        by_class = shuffled[np.argsort(self.labels[shuffled], kind="stable")]  # classes contiguous, random inside
        _, starts, counts = np.unique(self.labels[by_class], return_index=True, return_counts=True)
        rank = np.arange(len(self)) - np.repeat(starts, counts)  # position of each item inside its class
        first = np.zeros(len(self), dtype=bool)
        first[by_class] = rank < np.maximum(1, np.round(fraction * counts)).repeat(counts)
        return self.subset(first), self.subset(~first)

    def align_to(self, names):
        """The items named ``names``, in that order (to pair each item with its counterpart in another container)."""
        if self.names is None:
            raise ValueError("align_to: this data set has no item names")
        index = {name: i for i, name in enumerate(self.names)}
        missing = [name for name in names if name not in index]
        if missing:
            raise ValueError(f"align_to: {len(missing)} name(s) not in this data set, e.g. {missing[:3]}")
        return self.subset(np.array([index[name] for name in names], dtype=np.int64))


class LabelledImages(LabelledItems):
    """Images (N, C, H, W) float32 in [0, 1] with labels; ``.images`` is the array."""

    item_name, item_axes = "images", "(N, C, H, W)"

    def __init__(self, images, labels, class_names, groups=None, names=None):
        super().__init__(images, labels, class_names, groups, names)

    @property
    def images(self):
        return self.items


class LabelledSequences(LabelledItems):
    """Sequences (N, F, L) float32 (F features at each of L steps) with labels; ``.sequences`` is the array."""

    item_name, item_axes = "sequences", "(N, F, L)"

    def __init__(self, sequences, labels, class_names, groups=None, names=None):
        super().__init__(sequences, labels, class_names, groups, names)

    @property
    def sequences(self):
        return self.items


def iter_members(path, suffix):
    """Yield (name, bytes) for each file ending in ``suffix`` inside a zip archive or a folder.

    Names use "/" and are relative to the archive or folder root, so both forms
    give the same names. Members are sorted by name; macOS metadata is skipped.
    """
    path = Path(path)
    if path.is_dir():
        names = sorted(Path(root, f).relative_to(path).as_posix()
                       for root, _, files in os.walk(path) for f in files if f.endswith(suffix))
        for name in names:
            if not _is_macos_metadata(name):
                yield name, (path / name).read_bytes()
    elif path.is_file():
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is neither a folder nor a zip archive")
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:  # damaged directory
            raise ValueError(f"{path}: damaged zip archive ({error})") from None
        with archive:
            for name in sorted(archive.namelist()):
                if name.endswith(suffix) and not _is_macos_metadata(name):
                    try:
                        data = archive.read(name)
                    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:
                        raise ValueError(f"{path}: member {name} is damaged ({error})") from None
                    except NotImplementedError as error:  # a compression method Python's zipfile cannot read
                        raise ValueError(f"{path}: member {name} cannot be read here ({error}); unpack the "
                                         "archive with another tool and point at the folder") from None
                    yield name, data
    else:
        raise FileNotFoundError(f"no such file or folder: {path}")


def _is_macos_metadata(name):
    return name.startswith("__MACOSX/") or name.rsplit("/", 1)[-1].startswith("._")


def pillow():
    """The Pillow Image module, or an ImportError that says how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading images needs Pillow: pip install tinysiam[data]") from None
    return Image


def resize(image, size):
    """A Pillow image resized to ``size=(H, W)`` with Lanczos filtering (antialiased when shrinking)."""
    Image = pillow()
    if np.shape(size) != (2,) or not all(isinstance(n, (int, np.integer)) and n > 0 for n in size):
        raise ValueError(f"size must be (H, W), two positive integers, got {size!r}")
    height, width = size
    return image.resize((width, height), Image.Resampling.LANCZOS)


def decode_images(members, size=None):
    """Decode (name, bytes) image files into float32 (N, 1, H, W) in [0, 1] (grey levels / 255).

    All images must share one shape unless ``size=(H, W)`` resizes them. A file
    Pillow cannot read, or one declaring more pixels than Pillow's decompression-bomb
    limit (``PIL.Image.MAX_IMAGE_PIXELS``), gives a ValueError naming it.
    """
    Image = pillow()
    images = None
    for i, (name, data) in enumerate(members):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)  # bounded: refuse, don't just warn
                with Image.open(io.BytesIO(data)) as image:
                    grey = image.convert("L")  # also forces the full decode, so damage shows here
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ValueError(f"{name}: image too large to decode safely ({error})") from None
        except (OSError, SyntaxError, ValueError) as error:  # what Pillow raises for unreadable files
            raise ValueError(f"{name}: not a readable image ({error})") from None
        pixels = np.asarray(grey if size is None else resize(grey, size), dtype=np.float32)
        if images is None:  # allocate once: Omniglot at full size is large
            images = np.empty((len(members), 1) + pixels.shape, dtype=np.float32)
        elif pixels.shape != images.shape[2:]:
            raise ValueError(f"{name}: image is {pixels.shape}, the ones before are {images.shape[2:]} "
                             "(pass size=(H, W) to resize them all)")
        images[i, 0] = pixels
    if images is None:
        raise ValueError("no images to decode")
    images /= 255
    return images
