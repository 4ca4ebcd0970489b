"""Named tower architectures, chosen by name on the command line.

Each preset builds the shared tower of a Siamese network for a fixed input
size; the images are resized to that size when the data is loaded. The
sequence preset ``tdnn`` takes pen trajectories (features, length) instead,
as made by ``tinysiam.data.strokes``.
"""
from dataclasses import dataclass

from .. import nn
from ..siamese.text import TextConvTower


@dataclass(frozen=True)
class Preset:
    name: str
    input_size: tuple  # (H, W) the images are resized to; (features, length) of the sequences for "tdnn"; None
    embedding_size: int
    description: str
    items: str = "images"  # what the tower takes: a data set's ``items`` (tinysiam.data.registry)

    def build(self, rng=None, **sizes):
        """The tower; a tower over sentences also needs ``vocab_size``, the ids of its vocabulary."""
        return _BUILDERS[self.name](rng, **sizes)


def _conv_block(c_in, c_out, rng, batch_norm=True):
    """3x3 conv (same padding), batch norm, ReLU, 2x2 max-pool: halves H and W."""
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1, rng=rng)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    return layers + [nn.ReLU(), nn.MaxPool2d(2)]


def _digits(rng):
    # 8x8 -> 4x4 -> 2x2, then a 64-d embedding
    return nn.Sequential(*_conv_block(1, 32, rng), *_conv_block(32, 64, rng), nn.Flatten(),
                         nn.Linear(64 * 2 * 2, 64, rng=rng))


def _four_blocks(rng, flat_size, embedding_size):
    return nn.Sequential(*_conv_block(1, 64, rng), *_conv_block(64, 64, rng), *_conv_block(64, 64, rng),
                         *_conv_block(64, 64, rng), nn.Flatten(), nn.Linear(flat_size, embedding_size, rng=rng))


def _mini(rng):
    # the benchmark's small net: 28x28 -> 26 -> 13 -> 11 -> 5
    return nn.Sequential(nn.Conv2d(1, 32, 3, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 5 * 5, 128, rng=rng))


def _relation28(rng):
    # Sung et al. 2018's Omniglot embedding: 28x28 -> 26 -> 13 -> 11 -> 5, then two blocks that keep 5x5
    conv = dict(rng=rng)
    return nn.Sequential(nn.Conv2d(1, 64, 3, **conv), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(64, 64, 3, **conv), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(64, 64, 3, padding=1, **conv), nn.BatchNorm2d(64), nn.ReLU(),
                         nn.Conv2d(64, 64, 3, padding=1, **conv), nn.BatchNorm2d(64), nn.ReLU())


def _koch(rng):
    # Koch et al. 2015: 105x105 -> 96 -> 48 -> 42 -> 21 -> 18 -> 9 -> 6, 4096-d sigmoid features
    init = dict(init="koch", rng=rng)
    return nn.Sequential(nn.Conv2d(1, 64, 10, **init), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(64, 128, 7, **init), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(128, 128, 4, **init), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(128, 256, 4, **init), nn.ReLU(), nn.Flatten(),
                         nn.Linear(256 * 6 * 6, 4096, **init), nn.Sigmoid())


def _tdnn(rng, features=5, length=128, width=64):
    """After Bromley et al. 1993: 1-D convolutions over the pen trajectory, then the mean over time.

    (5, 128) -> 32 x 64 -> 64 x 32 -> 64 x 16 (dilated) -> 128 x 16, averaged
    over the 16 steps -> 64-d. Each of the last 16 steps sees 52 input steps.
    Tanh, as in the paper's net: with ReLUs, batch-hard triplet training shrank
    the embeddings towards one point and the last layer's units died (a third of
    the seeds collapsed for good); tanh units never stop passing gradient.
    """
    return nn.Sequential(nn.Conv1d(features, width // 2, 5, padding=2, rng=rng), nn.Tanh(), nn.MaxPool1d(2),
                         nn.Conv1d(width // 2, width, 5, padding=2, rng=rng), nn.Tanh(), nn.MaxPool1d(2),
                         nn.Conv1d(width, width, 3, padding=2, dilation=2, rng=rng), nn.Tanh(), nn.MaxPool1d(2),
                         nn.Conv1d(width, 2 * width, 3, padding=1, rng=rng), nn.Tanh(),
                         nn.AvgPool1d(length // 8), nn.Flatten(), nn.Linear(2 * width, 64, rng=rng))


PRESETS = {
    "digits": Preset("digits", (8, 8), 64, "2 conv blocks for scikit-learn's 8x8 digits (seconds per epoch)"),
    "mini": Preset("mini", (28, 28), 128, "the benchmark's small net: 2 conv layers at 28x28, 128-d"),
    "omniglot28": Preset("omniglot28", (28, 28), 64, "4 conv blocks of 64 channels at 28x28, 64-d (CPU-sized)"),
    "faces": Preset("faces", (56, 46), 128, "4 conv blocks of 64 channels at 56x46, 128-d (AT&T faces)"),
    "koch": Preset("koch", (105, 105), 4096, "Koch et al. 2015 at 105x105, 4096-d sigmoid features"),
    "relation28": Preset("relation28", (28, 28), 64, "Sung et al. 2018's embedding at 28x28: 64 feature maps of 5x5 "
                         "(for --loss relation; embedding_size counts channels)"),
    "tdnn": Preset("tdnn", (5, 128), 64, "after Bromley et al. 1993: 4 conv layers over pen trajectories of 5 "
                   "features x 128 steps, mean over time, 64-d", items="sequences"),
    "text-conv": Preset("text-conv", None, 600, "a time-delay net over word ids: 150-d word vectors, 1-D convolutions "
                        "of widths 1, 2, 3 (100 channels each), max and mean over each sentence: 600-d",
                        items="sentences"),
}
FEATURE_MAP_PRESETS = ("relation28",)  # towers that output (N, C, H, W) feature maps, for a relation module
_BUILDERS = {
    "digits": _digits,
    "mini": _mini,
    "omniglot28": lambda rng: _four_blocks(rng, 64 * 1 * 1, 64),  # 28 -> 14 -> 7 -> 3 -> 1
    "faces": lambda rng: _four_blocks(rng, 64 * 3 * 2, 128),  # 56x46 -> 28x23 -> 14x11 -> 7x5 -> 3x2
    "koch": _koch,
    "relation28": _relation28,
    "tdnn": _tdnn,
    "text-conv": lambda rng, vocab_size: TextConvTower(vocab_size, rng=rng),  # its defaults: docs/sick.md
}


def get_preset(name):
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]
