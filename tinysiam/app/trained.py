"""A trained checkpoint put to use: loading it, its identity, and image files as its input.

The commands that use a checkpoint (``verify``, ``index``, ``search``) share
this. A model takes grey images of its preset's size with values in [0, 1];
files are decoded and resized as the data readers do at training time
(``decode_images``: grey levels / 255, Lanczos resizing). ``invert`` turns
dark ink on a light background into ink = 1, as the Omniglot reader does; by
default, images are inverted when the checkpoint's data set stores its ink
inverted (``inverted_ink`` in ``tinysiam.data.registry``). Problems with the
user's files or options are ``UserError``s naming the argument.
"""
import hashlib
from pathlib import Path

import numpy as np

from ..data.datasets import decode_images
from ..data.registry import data_set
from .checkpoints import read_training_checkpoint
from .errors import UserError, blame
from .presets import get_preset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pbm", ".bmp", ".gif", ".tif", ".tiff", ".webp")
INVERT_HELP = ("invert the images (ink = 1), as the Omniglot reader does for training: for dark drawings on a "
               "light background (default: as the checkpoint's data set was read, e.g. inverted for Omniglot)")
METRIC_NAMES = {"l2": "L2", "l1": "L1", "cosine": "cosine"}


def load_trained(path, device="cpu"):
    """(model, config, meta) of a checkpoint (the model in eval mode); errors name ``--checkpoint``."""
    with blame(f"--checkpoint {path}"):
        checkpoint = read_training_checkpoint(path, device)
        model, config, meta = checkpoint.model(), checkpoint.config, checkpoint.meta
    if get_preset(config.preset).items == "sequences":
        raise UserError(f"--checkpoint {path}: its preset {config.preset!r} takes sequences, not the image files or "
                        "sentences this command reads")
    return model, config, meta


def score_meaning(kind):
    """A model's ``score_kind`` in words."""
    if kind == "koch_logit":
        return "the logit of Koch's head"
    if kind == "relation_score":
        return "the relation module's score, in [0, 1]"
    if kind == "relatedness":
        return "the relatedness Tai et al.'s head predicts, 1-5"
    return f"minus the {METRIC_NAMES[kind.removeprefix('neg_')]} distance between the embeddings"


def inverts(config, invert):
    """Whether images are inverted for this checkpoint: ``invert`` if the user said, else as its data set's were."""
    return data_set(config.data).inverted_ink if invert is None else invert


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
            "input_size": list(get_preset(config.preset).input_size or ()), "score": model.score_kind}


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
            raise UserError(f"{argument}: {path} is a folder, not an image file" if path.is_dir() else
                            f"{argument}: no such image file: {path}")
        with blame(argument):
            members.append((str(path), path.read_bytes()))
    with blame(argument):
        return decode_for_model(members, size, invert)
