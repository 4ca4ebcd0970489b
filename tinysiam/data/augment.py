"""Koch et al. 2015 affine distortions, vectorised over the batch (NumPy or CuPy arrays).

Every image gets its own map: rotation in [-10, 10] degrees, shear in
[-0.3, 0.3] along x and along y, scale in [0.8, 1.2] along x and along y, and
translation in [-2, 2] pixels along x and along y. Each of these seven
parameters is switched on independently with probability 1/2 (else it is the
identity value), as in the paper. The image is resampled bilinearly around its
centre; pixels that come from outside the image are 0. ``koch_ranges(strength)``
scales every range about the identity (0.5: half of each distortion).

Also here: random horizontal flips, and the one-pixel shifts that test-time
augmentation averages over.
"""
import numpy as np

from ..engine.backend import xp_of
from ..engine.checks import check_number

# Koch et al.'s ranges (low, high); the identity value of each is 0, except scale's, 1
KOCH_RANGES = {"rotation": (-10.0, 10.0), "shear": (-0.3, 0.3), "scale": (0.8, 1.2), "translation": (-2.0, 2.0)}


def koch_ranges(strength=1.0):
    """Koch's ranges scaled by ``strength`` about the identity: keyword arguments for ``affine_augment``."""
    check_number("strength", strength, low=0, low_included=False)
    identity = {"scale": 1.0}
    return {name: tuple(identity.get(name, 0.0) + strength * (bound - identity.get(name, 0.0)) for bound in bounds)
            for name, bounds in KOCH_RANGES.items()}


def affine_augment(images, rng, probability=0.5, rotation=KOCH_RANGES["rotation"], shear=KOCH_RANGES["shear"],
                   scale=KOCH_RANGES["scale"], translation=KOCH_RANGES["translation"]):
    """Distort a batch (N, C, H, W) with random Koch affine maps; ``rng`` is a ``numpy.random.Generator``.

    Each range is (low, high); rotation in degrees, translation in pixels. The
    result has the input's shape, dtype and array module.
    """
    matrices, shifts = random_affine(len(images), rng, probability, rotation, shear, scale, translation)
    return affine_warp(images, matrices, shifts)


def random_affine(n, rng, probability=0.5, rotation=KOCH_RANGES["rotation"], shear=KOCH_RANGES["shear"],
                  scale=KOCH_RANGES["scale"], translation=KOCH_RANGES["translation"]):
    """``n`` random maps: matrices (n, 2, 2) = rotation @ shear @ scale acting on (x, y), and shifts (n, 2)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not 0 <= probability <= 1:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    for name, (low, high) in (("rotation", rotation), ("shear", shear), ("scale", scale), ("translation", translation)):
        if low > high:
            raise ValueError(f"{name} must be a range (low, high) with low <= high, got {(low, high)}")
    if scale[0] <= 0:
        raise ValueError(f"scale must be positive, got {scale}")

    def draw(value_range, identity, count):
        """``count`` rows of n values: uniform in the range where switched on, ``identity`` elsewhere."""
        switched_on = rng.random((count, n)) < probability
        return np.where(switched_on, rng.uniform(*value_range, size=(count, n)), identity)

    (angle,) = np.radians(draw(rotation, 0.0, 1))
    shear_x, shear_y = draw(shear, 0.0, 2)
    scale_x, scale_y = draw(scale, 1.0, 2)
    shift_x, shift_y = draw(translation, 0.0, 2)
    cos, sin, ones, zeros = np.cos(angle), np.sin(angle), np.ones(n), np.zeros(n)
    rotations = _matrices(cos, -sin, sin, cos)
    shears = _matrices(ones, shear_x, shear_y, ones)
    scalings = _matrices(scale_x, zeros, zeros, scale_y)
    return rotations @ shears @ scalings, np.stack([shift_x, shift_y], axis=1)


def _matrices(a, b, c, d):
    """Per-item 2x2 matrices [[a, b], [c, d]] from four (n,) arrays."""
    return np.stack([a, b, c, d], axis=-1).reshape(-1, 2, 2)


def affine_warp(images, matrices, shifts):
    """Move each image (N, C, H, W) by its map p -> A p + t about the image centre.

    ``matrices`` (N, 2, 2) and ``shifts`` (N, 2) act on (x, y) = (column, row)
    coordinates; they are NumPy arrays even when ``images`` is on the GPU.
    """
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {images.shape}")
    if images.dtype.kind != "f":
        raise TypeError(f"images must be floating point, got dtype {images.dtype}")
    xp = xp_of(images)
    n, _, h, w = images.shape
    if np.shape(matrices) != (n, 2, 2) or np.shape(shifts) != (n, 2):
        raise ValueError(f"matrices must be ({n}, 2, 2) and shifts ({n}, 2), got {np.shape(matrices)} and "
                         f"{np.shape(shifts)}")
    inverse = xp.asarray(np.linalg.inv(matrices))[:, :, :, None, None]  # (N, 2, 2, 1, 1): broadcasts over pixels
    shifts = xp.asarray(shifts)

    # every output pixel p reads the source point A^-1 (p - centre - t) + centre
    cy, cx = (h - 1) / 2, (w - 1) / 2
    ys, xs = xp.meshgrid(xp.arange(h) - cy, xp.arange(w) - cx, indexing="ij")
    px = xs - shifts[:, 0, None, None]
    py = ys - shifts[:, 1, None, None]
    source_x = inverse[:, 0, 0] * px + inverse[:, 0, 1] * py + cx
    source_y = inverse[:, 1, 0] * px + inverse[:, 1, 1] * py + cy
    return bilinear_sample(images, source_y, source_x)


def bilinear_sample(images, source_y, source_x):
    """Sample images (N, C, H, W) at fractional points (N, H, W) (rows, columns); 0 outside the image."""
    xp = xp_of(images)
    n, _, h, w = images.shape
    y0, x0 = xp.floor(source_y), xp.floor(source_x)
    fy, fx = (source_y - y0).astype(images.dtype), (source_x - x0).astype(images.dtype)
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    channels_last = images.transpose(0, 2, 3, 1)  # gathering (N, H, W) points then gives (N, H, W, C)
    batch = xp.arange(n)[:, None, None]
    out = 0
    for dy, dx, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        y, x = y0 + dy, x0 + dx
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        pixels = channels_last[batch, xp.clip(y, 0, h - 1), xp.clip(x, 0, w - 1)]
        out = out + pixels * (weight * inside)[..., None]
    return xp.ascontiguousarray(out.transpose(0, 3, 1, 2))


def horizontal_flip(images, rng, probability=0.5):
    """Each image (N, C, H, W) mirrored left to right with ``probability``; one draw per image from ``rng``."""
    xp = xp_of(images)
    flipped = xp.asarray(rng.random(len(images)) < probability)[:, None, None, None]
    return xp.where(flipped, images[..., ::-1], images)


# the image and its four one-pixel shifts (rows, columns), which test-time augmentation averages over
ONE_PIXEL_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


def shifted(images, dy, dx):
    """Images (N, C, H, W) moved ``dy`` rows down and ``dx`` columns right; the uncovered border repeats the edge."""
    xp = xp_of(images)
    h, w = images.shape[2:]
    padded = xp.pad(images, ((0, 0), (0, 0), (max(dy, 0), max(-dy, 0)), (max(dx, 0), max(-dx, 0))), mode="edge")
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[:, :, top:top + h, left:left + w]
