"""What defines a training run: ``TrainConfig``, the one place where its settings and their defaults live.

The command line's options are these fields (``--steps-per-epoch`` is ``steps_per_epoch``);
an option the user does not give takes the default written here. A checkpoint stores its
config, so a run can be resumed and a model rebuilt from the file alone.
"""
from dataclasses import asdict, dataclass, fields, replace

from ..data.registry import DATA_SETS, data_set
from ..engine.backend import DEVICES
from ..engine.checks import integer_problem, number_problem
from .presets import FEATURE_MAP_PRESETS, PRESETS

LOSSES = ("contrastive", "contrastive-linear", "chopra", "triplet", "koch", "nt-xent", "relation", "relatedness")
OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "cosine", "exponential")
VAL_SPLITS = ("classes", "alphabets")
# the distance trained embeddings are compared with: the one their loss shaped (L2 for the others)
METRICS = {"chopra": "l1", "nt-xent": "cosine"}
MAX_BATCH = 65536  # a larger batch is a typo, not a run (it would exhaust memory before the first step)
# settings a resumed run may change (applied from the next step and recorded in the checkpoint);
# every other one defines the run: changing it would make the resumed run a different one
CHANGEABLE_ON_RESUME = ("lr", "epochs", "device")


class ConfigError(ValueError):
    """A setting with a bad value; ``field`` names it (the command line shows it as ``--field-name``)."""

    def __init__(self, field, message):
        super().__init__(f"{field} {message}")
        self.field, self.message = field, message


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in every checkpoint."""

    data: str = "digits"
    preset: str = "digits"
    loss: str = "contrastive"
    optimizer: str = "adam"
    lr: float = 1e-3
    lr_schedule: str = "constant"  # cosine: down to 0 over the run; exponential: times lr_decay every epoch
    lr_decay: float = 0.99
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 10
    steps_per_epoch: int = 100
    batch: int = 64  # pairs per step; images per step for triplet, nt-xent and relation
    way: int = 5  # relation: classes per training episode
    shot: int = 1  # relation: support images per class (the other batch // way - shot are queries)
    margin: float = 1.0  # of the contrastive and triplet losses; Q, the energy scale, of Chopra's
    temperature: float = 0.5  # of NT-Xent
    augment: bool = False
    device: str = "cpu"
    seed: int = 0
    val_way: int = 5
    val_episodes: int = 200
    # the recipe's settings (docs/recipes.md); their defaults keep the plain set-up above
    per_class: int = 4  # triplet: images per class in a batch (K of P x K; P = batch // K classes)
    normalize: bool = False  # embeddings of unit length (an L2-normalising last layer)
    standardize: bool = False  # each image to mean 0, variance 1 (a first layer), e.g. for faces' lighting
    augment_strength: float = 1.0  # scales the ranges of the distortions (0.5: half of each)
    flip: bool = False  # mirror half of the training images left to right (faces, not characters)
    tta: bool = False  # an image's embedding is the mean over it and its four one-pixel shifts
    rotations: bool = False  # images: every training class also rotated by 90, 180 and 270 degrees, as 3 more classes
    val_split: str = "classes"  # omniglot, strokes: "alphabets" validates on whole held-out alphabets, within one each
    # per-layer settings (Koch et al. 2015); the layers are those with weights, the tower's, then the head's
    layer_lr_scale: tuple = ()  # each layer's rate is lr times its factor; empty: 1 for every layer
    layer_momentum: tuple = ()  # sgd: each layer's momentum; empty: momentum for every layer
    layer_weight_decay: tuple = ()  # each layer's L2 weight decay; empty: weight_decay for every layer
    momentum_ramp: int = 0  # sgd: epochs over which every layer's momentum rises linearly from 0.5 to its own
    patience: int = 0  # stop after this many epochs without a better validation accuracy (0: never stop early)

    def __post_init__(self):
        for name, allowed in (("data", tuple(DATA_SETS)), ("preset", tuple(PRESETS)), ("loss", LOSSES),
                              ("optimizer", OPTIMIZERS), ("lr_schedule", LR_SCHEDULES), ("device", DEVICES),
                              ("val_split", VAL_SPLITS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(name, f"must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        _number(self, "lr", low=0, low_included=False)
        _number(self, "margin", low=0, low_included=False)
        _number(self, "temperature", low=0, low_included=False)
        _number(self, "weight_decay", low=0)
        _number(self, "lr_decay", low=0, low_included=False)
        _number(self, "momentum", low=0, high=1)
        for name, low in (("epochs", 1), ("steps_per_epoch", 1), ("batch", 1), ("val_way", 2), ("val_episodes", 1),
                          ("seed", 0), ("way", 2), ("shot", 1)):
            _integer(self, name, low)
        if self.batch > MAX_BATCH:
            raise ConfigError("batch", f"must be at most {MAX_BATCH}, got {self.batch}")
        _integer(self, "per_class", 2)
        if self.loss == "triplet" and self.batch < 2 * self.per_class:
            raise ConfigError("batch", f"must be at least {2 * self.per_class} for the triplet loss (2 classes x "
                              f"{self.per_class} images), got {self.batch}")
        for name in ("augment", "normalize", "standardize", "flip", "tta", "rotations"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, f"must be True or False, got {getattr(self, name)!r}")
        # a strength of 5 would scale images by 1 - 0.2 x 5 = 0
        _number(self, "augment_strength", low=0, high=5, low_included=False)
        self._check_layer_settings()
        if self.val_split == "alphabets" and not data_set(self.data).alphabets:
            with_alphabets = ", ".join(name for name, d in DATA_SETS.items() if d.alphabets)
            raise ConfigError("val_split", f"'alphabets' needs a data set with alphabets ({with_alphabets}), "
                              f"got --data {self.data}")
        check_preset_fits(self.preset, self.data)
        items = data_set(self.data).items
        if self.rotations and data_set(self.data).rotated:
            raise ConfigError("rotations", f"would rotate --data {self.data}'s classes twice: they are rotations "
                              "already")
        size = PRESETS[self.preset].input_size
        if self.rotations and items == "images" and size[0] != size[1]:
            raise ConfigError("rotations", f"needs square images; the {self.preset} preset takes {size[0]}x{size[1]}")
        if items == "sequences":
            for name in ("flip", "tta", "rotations"):  # all move pixels
                if getattr(self, name):
                    raise ConfigError(name, f"works on images; --data {self.data} holds pen trajectories")
        if items == "sentences":
            for name in ("augment", "flip", "tta", "standardize", "normalize", "rotations"):
                if getattr(self, name):
                    raise ConfigError(name, f"has no meaning for sentences (--data {self.data})")
        if (self.loss == "relatedness") != (items == "sentences"):
            raise ConfigError("loss", f"{self.loss!r} does not fit --data {self.data}: sentence pairs with a "
                              "relatedness score train with --loss relatedness, and only they do")
        if self.normalize and self.preset in FEATURE_MAP_PRESETS:
            raise ConfigError("normalize", f"needs a flat embedding; {self.preset!r} outputs feature maps")
        if self.loss == "relation" and self.batch // self.way - self.shot < 1:
            raise ConfigError("batch", f"must hold way x (shot + at least one query) = {self.way * (self.shot + 1)} "
                              f"images for the relation loss, got {self.batch}")
        if (self.loss == "relation") != (self.preset in FEATURE_MAP_PRESETS):
            raise ConfigError("preset", f"{self.preset!r} does not fit the {self.loss} loss: the relation loss needs "
                              f"a tower that keeps feature maps ({', '.join(FEATURE_MAP_PRESETS)}), the others a "
                              "flat embedding")
        if self.loss == "nt-xent" and not self.augment:
            raise ConfigError("augment", "is needed by the nt-xent loss: its two views of an image are two "
                              "augmentations")

    def _check_layer_settings(self):
        for name, high in (("layer_lr_scale", None), ("layer_momentum", 1), ("layer_weight_decay", None)):
            values = getattr(self, name)
            if not isinstance(values, (tuple, list)):
                raise ConfigError(name, f"must be a list of numbers, one per layer, got {values!r}")
            for value in values:
                problem = number_problem(value, low=0, high=high)
                if problem:
                    raise ConfigError(name, f"{problem} in {list(values)!r}")
            setattr(self, name, tuple(float(v) for v in values))  # a checkpoint's JSON list compares equal again
        given = {name: len(getattr(self, name)) for name in ("layer_lr_scale", "layer_momentum", "layer_weight_decay")
                 if getattr(self, name)}
        if len(set(given.values())) > 1:
            counts = ", ".join(f"{name} {n}" for name, n in given.items())
            raise ConfigError(next(reversed(given)), f"must have one value per layer, as many as the other per-layer "
                              f"settings; got {counts} values")
        for name in ("momentum_ramp", "patience"):
            _integer(self, name, 0)
        for name in ("layer_momentum", "momentum_ramp"):
            if getattr(self, name) and self.optimizer != "sgd":
                raise ConfigError(name, f"needs optimizer sgd (the one with momentum), got {self.optimizer!r}")

    @property
    def metric(self):
        """"l1", "l2" or "cosine": how embeddings trained with this loss are compared."""
        return METRICS.get(self.loss, "l2")

    @classmethod
    def from_dict(cls, values):
        """A config from a checkpoint's stored dict; unknown keys (from other versions) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_dict(self):
        return asdict(self)


def check_preset_fits(preset, data):
    """A ConfigError naming --preset unless the preset's tower takes ``data``'s items (images or sequences)."""
    items = data_set(data).items
    if PRESETS[preset].items != items:
        fitting = ", ".join(name for name, p in PRESETS.items() if p.items == items)
        raise ConfigError("preset", f"{preset!r} takes {PRESETS[preset].items}, --data {data} holds {items}: choose a "
                          f"preset over {items} ({fitting})")


def _number(config, name, low, high=None, low_included=True):
    problem = number_problem(getattr(config, name), low, high, low_included)
    if problem:
        raise ConfigError(name, problem)


def _integer(config, name, low):
    problem = integer_problem(getattr(config, name), low)
    if problem:
        raise ConfigError(name, problem)


def resume_config(saved, given):
    """The config of a resumed run: ``saved`` (from the checkpoint) with the user's explicit ``given`` settings.

    Settings in CHANGEABLE_ON_RESUME are applied; any other that differs from the
    saved run is refused. Returns (config, changes) with changes {field: (old, new)}.
    """
    changes = {name: (getattr(saved, name), value) for name, value in given.items() if getattr(saved, name) != value}
    fixed = {name: change for name, change in changes.items() if name not in CHANGEABLE_ON_RESUME}
    if fixed:
        described = "; ".join(f"{name} was {old!r}, now {new!r}" for name, (old, new) in fixed.items())
        raise ConfigError(next(iter(fixed)), f"cannot change when resuming ({described}): start a new run "
                          f"in another --out, or --overwrite this one. Only {', '.join(CHANGEABLE_ON_RESUME)} "
                          "may change on --resume")
    return replace(saved, **{name: new for name, (_, new) in changes.items()}), changes
