"""Every distance and loss again, composed from the engine's primitive ops.

These are slower than the fused ops in ``distances.py`` and ``losses.py`` but
need no hand-derived backward: autograd differentiates them op by op. The
tests check that both versions agree in value and gradient, and that both
agree with finite differences, so a mistake in a derivation cannot hide.

They are the textbook formulas, with no argument checks and no guard at zero:
they agree with the fused ops everywhere except where a norm is 0 (L2 distance
of identical rows, cosine or NT-Xent of a zero vector), where the composed
``sqrt`` has an infinite slope and the fused ops use their documented
subgradient or clamp. The tests show both sides of that difference.
"""
from ..engine import ops
from ..engine.backend import xp_of
from ..engine.tensor import Tensor


def _reduce(losses, reduction):
    if reduction == "none":
        return losses
    return losses.mean() if reduction == "mean" else losses.sum()


def _constant(values, like):
    """Labels (or a mask) as a constant tensor of ``like``'s dtype and device."""
    values = values.data if isinstance(values, Tensor) else values
    return Tensor(xp_of(like.data).asarray(values, dtype=like.dtype))


def l1_distance(a, b):
    return (a - b).abs().sum(axis=1)


def squared_l2_distance(a, b):
    return ((a - b) * (a - b)).sum(axis=1)


def l2_distance(a, b):
    return squared_l2_distance(a, b).sqrt()


def cosine_distance(a, b):
    return 1.0 - (a * b).sum(axis=1) / ((a * a).sum(axis=1).sqrt() * (b * b).sum(axis=1).sqrt())


DISTANCES = {"l1": l1_distance, "l2": l2_distance, "squared_l2": squared_l2_distance, "cosine": cosine_distance}


def contrastive_loss(d, same, margin=1.0, reduction="mean"):
    same = _constant(same, d)
    gap = (margin - d).relu()
    return _reduce(same * d * d * 0.5 + (1.0 - same) * gap * gap * 0.5, reduction)


def contrastive_linear_loss(d, same, margin=1.0, reduction="mean"):
    same = _constant(same, d)
    return _reduce(same * d + (1.0 - same) * (margin - d).relu(), reduction)


def chopra_energy_loss(e, same, q, reduction="mean"):
    same = _constant(same, e)
    return _reduce(same * (2.0 / q) * e * e + (1.0 - same) * (2.0 * q) * (e * (-2.77 / q)).exp(), reduction)


def bce_with_logits(z, same, reduction="mean"):
    y = _constant(same, z)
    return _reduce(z.relu() - z * y + (1.0 + (-z.abs()).exp()).log(), reduction)


def mse_loss(p, t, reduction="mean"):
    return _reduce(((p - t) * (p - t)).reshape(p.shape[0], -1).mean(axis=1), reduction)


def triplet_loss(a, p, n, margin=1.0, distance="l2", reduction="mean"):
    d = DISTANCES[distance]
    return _reduce((margin + d(a, p) - d(a, n)).relu(), reduction)


def nt_xent_loss(z1, z2, temperature=0.5, reduction="mean"):
    z = ops.concatenate([z1, z2])
    n2 = z.shape[0]
    xp = xp_of(z.data)
    u = z / (z * z).sum(axis=1, keepdims=True).sqrt()
    s = (u @ u.T) / temperature
    s = s + _constant(xp.diag(xp.full(n2, -xp.inf)), s)  # a view is not its own negative
    top = Tensor(s.data.max(axis=1, keepdims=True))  # a constant shift: log-sum-exp without overflow
    log_sum = (s - top).exp().sum(axis=1).log() + top.reshape(n2)
    rows = xp.arange(n2)
    return _reduce(log_sum - s[rows, (rows + n2 // 2) % n2], reduction)


def kl_divergence_loss(z, p, reduction="mean"):
    p = _constant(p, z)
    xp = xp_of(z.data)
    shifted = z - Tensor(z.data.max(axis=1, keepdims=True))  # a constant shift: log-softmax without overflow
    log_q = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    log_p = _constant(xp.log(xp.where(p.data > 0, p.data, 1)), z)  # 0 log 0 = 0
    return _reduce((p * (log_p - log_q)).sum(axis=1), reduction)
