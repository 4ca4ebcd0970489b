"""A trained checkpoint put to use: loading it, its identity, and image files as its input.

The commands that use a checkpoint (``verify``, ``index``, ``search``) share
this. A model takes grey images of its preset's size with values in [0, 1];
files are decoded and resized as the data readers do at training time
(``decode_images``: grey levels / 255, Lanczos resizing). ``invert`` turns
dark ink on a light background into ink = 1, as the Omniglot reader does.
"""
import hashlib
from pathlib import Path

import numpy as np

from ..data.datasets import decode_images
from ..serialization import read_checkpoint_meta
from .presets import get_preset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pbm", ".bmp", ".gif", ".tif", ".tiff", ".webp")
INVERT_HELP = ("dark drawings on a light background (Omniglot's PNGs): invert them so that ink is 1, "
               "as the Omniglot reader does for training")


def load_trained(path, device="cpu"):
    """(model, config, meta) of a checkpoint; errors name ``--checkpoint``."""
    from .training import load_model

    try:
        meta = read_checkpoint_meta(path)
        model, config = load_model(path, device)
    except (FileNotFoundError, ValueError) as error:
        raise type(error)(f"--checkpoint: {error}") from None
    return model, config, meta


def score_kind(model):
    """What ``model.pair_scores`` returns: "neg_l2" (minus the L2 distance) or "koch_logit" (Koch's head)."""
    return "neg_l2" if model.head is None else "koch_logit"


def weights_digest(model):
    """SHA-256 of every parameter and buffer (names, dtypes, shapes, values): two checkpoints embed alike iff equal."""
    digest = hashlib.sha256()
    for name, array in sorted(model.state_dict().items()):
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def checkpoint_identity(path, model, config):
    """What an index records about the checkpoint that made its embeddings (JSON-able)."""
    return {"path": str(Path(path).resolve()), "weights_sha256": weights_digest(model), "preset": config.preset,
            "input_size": list(get_preset(config.preset).input_size), "score": score_kind(model)}


def decode_for_model(members, size, invert):
    """(name, bytes) image files as a model's input: float32 (N, 1, H, W) of ``size``, in [0, 1]."""
    images = decode_images(members, size)
    if invert:
        np.subtract(1.0, images, out=images)
    return images


def read_image_files(paths, size, invert, argument):
    """The image files at ``paths`` as a model's input; errors name the command-line ``argument``."""
    members = []
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"{argument}: {path} is a folder, not an image file" if path.is_dir() else
                                    f"{argument}: no such image file: {path}")
        members.append((str(path), path.read_bytes()))
    try:
        return decode_for_model(members, size, invert)
    except ValueError as error:
        raise ValueError(f"{argument}: {error}") from None
