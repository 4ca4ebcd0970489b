"""Koch et al. 2015 affine distortions, vectorised over the batch (NumPy or CuPy).

Each image gets its own rotation, shear, scale and translation; each of the
four components is switched on independently with probability 1/2 (else it is
the identity). The image is resampled bilinearly around its centre; pixels
that come from outside the image are 0.
"""
import numpy as np

from ..backend import xp_of


def affine_augment(images, rng, probability=0.5, max_rotation=10.0, max_shear=0.3, scale=(0.8, 1.2),
                   max_translation=2.0):
    """Distort a batch (N, C, H, W); ``rng`` is a numpy Generator. Angles in degrees, shifts in pixels."""
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    if not 0 <= probability <= 1:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    xp = xp_of(images)
    n, _, h, w = images.shape

    def component(low, high, identity, count=1):
        """Random values where the component is on, the identity value elsewhere."""
        on = rng.random((count, n)) < probability
        return np.where(on, rng.uniform(low, high, (count, n)), identity)

    (angle,) = np.radians(component(-max_rotation, max_rotation, 0.0))
    shear_x, shear_y = component(-max_shear, max_shear, 0.0, count=2)
    scale_x, scale_y = component(scale[0], scale[1], 1.0, count=2)
    shift_x, shift_y = component(-max_translation, max_translation, 0.0, count=2)

    # forward map: rotation @ shear @ scale, per image (n, 2, 2), acting on (x, y) about the centre
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shear = np.stack([np.stack([np.ones(n), shear_x], -1), np.stack([shear_y, np.ones(n)], -1)], -2)
    scaling = np.stack([np.stack([scale_x, np.zeros(n)], -1), np.stack([np.zeros(n), scale_y], -1)], -2)
    inverse = xp.asarray(np.linalg.inv(rotation @ shear @ scaling))

    # for every output pixel, the source point it comes from: inverse @ (p - centre - shift) + centre
    cy, cx = (h - 1) / 2, (w - 1) / 2
    ys, xs = xp.meshgrid(xp.arange(h, dtype=np.float64) - cy, xp.arange(w, dtype=np.float64) - cx, indexing="ij")
    px = xs[None] - xp.asarray(shift_x)[:, None, None]
    py = ys[None] - xp.asarray(shift_y)[:, None, None]
    src_x = inverse[:, 0, 0, None, None] * px + inverse[:, 0, 1, None, None] * py + cx
    src_y = inverse[:, 1, 0, None, None] * px + inverse[:, 1, 1, None, None] * py + cy
    return _bilinear(images, src_y, src_x).astype(images.dtype, copy=False)


def _bilinear(images, src_y, src_x):
    """Sample images (N, C, H, W) at fractional points (N, H, W), 0 outside."""
    xp = xp_of(images)
    n, _, h, w = images.shape
    y0, x0 = xp.floor(src_y).astype(np.int64), xp.floor(src_x).astype(np.int64)
    wy, wx = src_y - y0, src_x - x0
    batch = xp.arange(n)[:, None, None]
    out = 0
    for dy, dx, weight in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx), (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
        y, x = y0 + dy, x0 + dx
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        pixels = images[batch, :, xp.clip(y, 0, h - 1), xp.clip(x, 0, w - 1)]  # (N, H, W, C)
        out = out + pixels * (weight * inside)[..., None]
    return out.transpose(0, 3, 1, 2)
