"""Omniglot's pen trajectories (``strokes_background*.zip``): reader, fixed-length features, augmentation.

One text file per drawing, ``<root>/<Alphabet>/characterNN/XXXX_YY.txt``
beside the image of the same name. ``START`` opens the drawing; each stroke is
a run of ``x,y,t`` lines (motor coordinates, y pointing up, t in ms) closed by
``BREAK``. A ``START`` at the head of any stroke is accepted too.

A drawing becomes a fixed-length sequence (F, L) for a time-delay network
(Bromley et al. 1993): its strokes are joined by straight pen-up moves into one
path, resampled at L points evenly spaced along that path's length (the
recorded times hold pauses of minutes, so equal steps in time would waste most
points on the pauses), centred on its mean point and scaled to unit RMS radius.
The features at each step are ``FEATURES``: the position, the unit direction of
the path, and whether the pen is up there.
"""
import numpy as np

from ..engine.backend import xp_of
from ..engine.checks import check_number
from .datasets import LabelledSequences
from .omniglot import omniglot_labels, omniglot_members

FEATURES = ("x", "y", "dx", "dy", "pen_up")  # the channels of a sequence, in order
X, Y, DX, DY, PEN_UP = range(len(FEATURES))
# the distortions of ``augment_trajectories``: the largest of each (every one is 0 at the identity)
TRAJECTORY_RANGES = {"rotation": 10.0, "stretch": 0.15, "shear": 0.2, "warp": 0.3, "jitter": 0.02}


def trajectory_ranges(strength=1.0):
    """``TRAJECTORY_RANGES`` scaled by ``strength`` (0.5: half of each): keyword arguments for
    ``augment_trajectories``, as ``koch_ranges`` is for images."""
    check_number("strength", strength, low=0, low_included=False)
    return {name: strength * bound for name, bound in TRAJECTORY_RANGES.items()}


def parse_drawing(text, name):
    """The strokes of one drawing file: a list of (n, 3) float64 arrays of (x, y, t) rows.

    ``name`` is the file's name, for the errors: a point that is not three
    finite numbers, a stroke without its closing ``BREAK``, a ``BREAK`` that
    closes no point, and a drawing without points are each a ValueError that
    names the file and the line.
    """
    strokes, points, opened_at = [], [], None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line in ("", "START"):
            continue
        if line == "BREAK":
            if not points:
                raise ValueError(f"{name}, line {number}: BREAK closes a stroke without points")
            strokes.append(np.array(points))
            points = []
            continue
        fields = line.split(",")
        try:
            point = [float(field) for field in fields]
        except ValueError:
            point = []
        if len(point) != 3 or not np.isfinite(point).all():
            raise ValueError(f"{name}, line {number}: expected 'x,y,t' (three numbers), START or BREAK, got {line!r}")
        if not points:
            opened_at = number
        points.append(point)
    if points:
        raise ValueError(f"{name}, line {opened_at}: the stroke starting here has no closing BREAK")
    if not strokes:
        raise ValueError(f"{name}: the drawing holds no points")
    return strokes


def resample_path(strokes, length):
    """(xy (2, length), pen_up (length,)): ``length`` points evenly spaced along the drawing's path.

    The path runs through every stroke in order, the gap from the end of one
    stroke to the start of the next drawn as a straight pen-up move; a step is
    pen-up when it lies on such a move. A drawing whose path has no length
    (one dot) gives ``length`` copies of its point.
    """
    points = np.concatenate([s[:, :2] for s in strokes])
    pen_up = np.zeros(len(points) - 1, dtype=bool)  # of each segment from point i to point i + 1
    pen_up[np.cumsum([len(s) for s in strokes])[:-1] - 1] = True
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    moving = steps > 0  # zero-length segments (repeated points) carry no path
    points = np.concatenate([points[:1], points[1:][moving]])
    pen_up, arc = pen_up[moving], np.concatenate([[0.0], np.cumsum(steps[moving])])
    if arc[-1] == 0:
        return np.repeat(points[:1].T, length, axis=1), np.zeros(length, dtype=bool)
    at = np.linspace(0.0, arc[-1], length)
    xy = np.stack([np.interp(at, arc, points[:, 0]), np.interp(at, arc, points[:, 1])])
    segment = np.clip(np.searchsorted(arc, at, side="right") - 1, 0, len(pen_up) - 1)
    return xy, pen_up[segment]


def trajectory_features(xy, pen_up):
    """Sequences (N, 5, L) with the channels of ``FEATURES`` from paths xy (N, 2, L) and pen_up (N, L).

    Each path is centred on its mean point and scaled to unit RMS radius; the
    direction (dx, dy) at step t is the unit vector from point t to point t + 1
    (the last step repeats the one before; (0, 0) where the pen does not move).
    NumPy or CuPy arrays, whole batches at once.
    """
    xp = xp_of(xy)
    xy = xy - xy.mean(axis=2, keepdims=True)
    radius = xp.sqrt((xy ** 2).sum(axis=1).mean(axis=1))[:, None, None]
    xy = xy / xp.where(radius > 0, radius, 1)
    step = xp.diff(xy, axis=2)
    step = xp.concatenate([step, step[:, :, -1:]], axis=2)
    norm = xp.sqrt((step ** 2).sum(axis=1, keepdims=True))
    direction = step / xp.where(norm > 0, norm, 1)
    return xp.concatenate([xy, direction, pen_up[:, None].astype(xy.dtype)], axis=1).astype(np.float32)


def drawings_to_sequences(drawings, length=64):
    """Sequences (N, 5, length) float32 of a list of drawings (each a list of (n, 3) stroke arrays)."""
    if not isinstance(length, (int, np.integer)) or length < 2:
        raise ValueError(f"length must be an integer >= 2 (steps per sequence), got {length!r}")
    paths = [resample_path(strokes, length) for strokes in drawings]
    return trajectory_features(np.stack([xy for xy, _ in paths]), np.stack([pen for _, pen in paths]))


def load_omniglot_strokes(paths, length=64):
    """Omniglot pen trajectories from one archive (zip or folder) or a list of them, as ``LabelledSequences``.

    Sequences (N, 5, length) float32 with the channels of ``FEATURES``; classes,
    ``groups`` (alphabets) and ``names`` ("Alphabet/characterNN/XXXX_YY") as in
    ``load_omniglot``, so ``images.align_to(strokes.names)`` pairs each
    trajectory with its image. Drawings in two archives (Greek and Latin in
    ``small1`` and ``small2``) are kept once.
    """
    found = omniglot_members(paths, ".txt", "strokes")
    keys = sorted(found)
    drawings = []
    for key in keys:
        name, data = found[key]
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError as error:
            raise ValueError(f"{name}: not a text file of strokes ({error})") from None
        drawings.append(parse_drawing(text, name))
    return LabelledSequences(drawings_to_sequences(drawings, length), *omniglot_labels(keys))


def augment_trajectories(sequences, rng, rotation=TRAJECTORY_RANGES["rotation"], stretch=TRAJECTORY_RANGES["stretch"],
                         shear=TRAJECTORY_RANGES["shear"], warp=TRAJECTORY_RANGES["warp"],
                         jitter=TRAJECTORY_RANGES["jitter"]):
    """Random distortions of a batch of sequences (N, 5, L) as made by ``trajectory_features``, one per sequence.

    Each path gets a random linear map (rotation by up to ``rotation``
    degrees, independent x and y scaling by a factor in [1 - stretch, 1 + stretch],
    shear up to ``shear``), a random smooth warp of its steps (the local pace
    along the path varies by up to a factor exp(+-warp)), and Gaussian noise of
    standard deviation ``jitter`` on each point; the features are then computed
    again from the new path. ``rng`` is a ``numpy.random.Generator``; NumPy or
    CuPy batches.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if sequences.ndim != 3 or sequences.shape[1] != len(FEATURES) or sequences.shape[2] < 2:
        raise ValueError(f"sequences must be (N, {len(FEATURES)}, L) with the channels {FEATURES} and at least 2 "
                         f"steps, got shape {sequences.shape}")
    for name, value in (("rotation", rotation), ("stretch", stretch), ("shear", shear), ("warp", warp),
                        ("jitter", jitter)):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
    if stretch >= 1:
        raise ValueError(f"stretch must be below 1 (a scale factor in [1 - stretch, 1 + stretch]), got {stretch}")
    xp = xp_of(sequences)
    n, _, length = sequences.shape
    angle = np.radians(rng.uniform(-rotation, rotation, n))
    scale_x, scale_y = rng.uniform(1 - stretch, 1 + stretch, (2, n))
    shear_x = rng.uniform(-shear, shear, n)
    cos, sin = np.cos(angle), np.sin(angle)
    # rotation @ shear @ scaling, per sequence: (n, 2, 2) acting on column vectors (x, y)
    maps = np.stack([cos * scale_x, (cos * shear_x - sin) * scale_y,
                     sin * scale_x, (sin * shear_x + cos) * scale_y], axis=1).reshape(n, 2, 2)
    xy = xp.asarray(maps, dtype=sequences.dtype) @ sequences[:, X:Y + 1]
    at = xp.asarray(_random_warp(n, length, warp, rng))
    xy, pen_up = _sample_steps(xy, at), _sample_steps(sequences[:, PEN_UP:PEN_UP + 1], xp.rint(at))[:, 0]
    xy = xy + xp.asarray(rng.normal(0.0, jitter, xy.shape), dtype=xy.dtype)
    return trajectory_features(xy, pen_up > 0.5).astype(sequences.dtype)


def _random_warp(n, length, warp, rng, knots=4):
    """(n, length) increasing step positions from 0 to length - 1: a pace exp(u) with u drawn in
    [-warp, warp] at ``knots`` evenly spaced points and linear between them, integrated."""
    knot_pace = np.exp(rng.uniform(-warp, warp, (n, knots)))
    where = np.linspace(0, knots - 1, length)
    left = np.minimum(where.astype(int), knots - 2)
    fraction = where - left
    pace = knot_pace[:, left] * (1 - fraction) + knot_pace[:, left + 1] * fraction
    position = np.concatenate([np.zeros((n, 1)), np.cumsum(pace[:, :-1], axis=1)], axis=1)
    return position / position[:, -1:] * (length - 1)


def _sample_steps(values, at):
    """values (N, C, L) read at fractional steps ``at`` (N, L'), linearly between neighbouring steps."""
    xp = xp_of(values)
    below = xp.clip(xp.floor(at).astype(np.int64), 0, values.shape[2] - 2)
    fraction = (at - below)[:, None].astype(values.dtype)
    index = xp.broadcast_to(below[:, None], (values.shape[0], values.shape[1], at.shape[1]))
    return (xp.take_along_axis(values, index, axis=2) * (1 - fraction)
            + xp.take_along_axis(values, index + 1, axis=2) * fraction)
