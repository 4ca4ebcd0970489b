"""Reading a training checkpoint: one reader, the same checks and the same errors for every path that opens one.

``eval``, ``--resume``, ``verify``, ``index``, ``search`` and the API's ``load_model``
all go through ``read_training_checkpoint``. It refuses, with a ValueError naming the
file and what is wrong (the command line prints it as one line and exits with status 2):
a file that is no readable ``.npz`` (damaged, truncated, a ``.npy`` array under a
``.npz`` name), metadata without a valid config, and, for resuming, progress fields
of the wrong kind (``history``, ``epoch``, ``step``, ...). ``model()`` and
``restore()`` refuse weights or optimizer state that do not fit the config's model,
and weights holding NaN or Inf. The file is only read, never changed.
"""
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.sick import Vocabulary
from ..serialization import checkpoint_entries, read_checkpoint
from .config import ConfigError, TrainConfig

# what resuming reads, and what each must be
PROGRESS = {"history": "a list of per-epoch rows", "epoch": "an integer >= 0", "step": "an integer >= 0",
            "epoch_losses": "a list of numbers", "epoch_seconds": "a number >= 0", "best_accuracy": "a number",
            "changes": "a list", "rng": "the state of a random generator"}


@dataclass
class TrainingCheckpoint:
    path: Path
    config: TrainConfig  # the run's settings, with the device it is read onto (or trained on)
    meta: dict  # everything the file's metadata holds (config, history, calibration, ...)
    arrays: dict  # "model/<name>" and "optim/<name>" entries

    def model(self):
        """The trained model on ``config.device``, in eval mode; ValueError if the weights do not fit or diverged."""
        from .model import SiameseModel

        try:  # a sentence model reads its words with the vocabulary it trained with
            vocabulary = Vocabulary.from_dict(self.meta["vocabulary"]) if "vocabulary" in self.meta else None
            model = SiameseModel(self.config, vocabulary=vocabulary)
        except ValueError as error:
            raise ValueError(f"{self.path}: {error}") from None
        self._load(model, "model/", "model")
        for name, p in model.named_parameters():
            if not np.isfinite(p.data).all():
                raise ValueError(f"{self.path}: the weights {name} hold NaN or Inf (the run diverged); use an "
                                 "earlier checkpoint")
        return model.to(self.config.device).eval()

    def restore(self, model, optimizer):
        """Load the weights and the optimizer state into a run's ``model`` and ``optimizer``; returns the progress
        (``PROGRESS``'s fields). Nothing is changed unless everything fits."""
        progress = self.progress()
        if not checkpoint_entries(self.arrays, "optim/"):
            raise ValueError(f"{self.path} holds no optimizer state (it was saved without an optimizer)")
        self._load(model, "model/", "model")
        self._load(optimizer, "optim/", "optimizer")
        return progress

    def progress(self):
        """The fields a resumed run continues from, each checked; ValueError naming the first that is wrong."""
        for name, what in PROGRESS.items():
            if name not in self.meta:
                raise ValueError(f"{self.path}: the metadata has no {name!r}: not a checkpoint a run can resume from")
            if not _is(name, self.meta[name]):
                raise ValueError(f"{self.path}: the metadata's {name!r} must be {what}, got {self.meta[name]!r:.80}")
        return {name: self.meta[name] for name in PROGRESS}

    def _load(self, target, prefix, what):
        try:
            target.load_state_dict(checkpoint_entries(self.arrays, prefix))
        except (ValueError, TypeError) as error:
            raise ValueError(f"{self.path} does not fit the {what} of its own config ({self.config.preset} preset, "
                             f"{self.config.loss} loss): {error}") from None


def _is(name, value):
    """Whether ``value`` has the kind ``PROGRESS[name]`` says."""
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if name in ("epoch", "step"):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if name == "epoch_seconds":
        return number and math.isfinite(value) and value >= 0
    if name == "best_accuracy":
        return number
    if name == "epoch_losses":
        return isinstance(value, list) and all(isinstance(v, numbers.Real) for v in value)
    if name == "history":
        return isinstance(value, list) and all(isinstance(row, dict) for row in value)
    if name == "rng":
        try:
            np.random.default_rng().bit_generator.state = value
        except (TypeError, ValueError, KeyError):
            return False
        return True
    return isinstance(value, list)


def read_training_checkpoint(path, device="cpu"):
    """The checkpoint at ``path`` (written by ``tinysiam train``), its config set to ``device`` (None: the device
    it trained on); ValueError naming the file for anything that is not a readable training checkpoint."""
    path = Path(path)
    arrays, meta = read_checkpoint(path)
    if not isinstance(meta.get("config"), dict):
        raise ValueError(f"{path} is not a training checkpoint: its metadata has no 'config' "
                         "(models saved with tinysiam.save hold weights only)")
    try:
        config = TrainConfig.from_dict({**meta["config"], **({} if device is None else {"device": device})})
    except (ConfigError, TypeError) as error:
        raise ValueError(f"{path}: the checkpoint's config is not valid: {error}") from None
    return TrainingCheckpoint(path, config, meta, arrays)
