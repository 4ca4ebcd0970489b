"""The losses of the sources, each one fused op with a hand-derived backward.

Label convention everywhere: ``same = 1`` means the pair is of the same class,
``same = 0`` different. Each paper's own convention is mapped onto it in
docs/derivations.md, which also derives every gradient below step by step.

Every loss takes ``reduction``: "mean" (default), "sum" or "none" (one value
per sample); "sum" and "mean" sum or average those per-sample values (for MSE,
a sample's value is the mean over its elements: see ``mse_loss``). At a hinge's
corner, max(0, x) at x = 0, the derivative used is 0.
"""
import numpy as np

from ..engine.backend import to_numpy, xp_of
from ..engine.checks import check_float_tensor, check_number
from ..engine.debug import may_read
from ..engine.tensor import Function, Tensor
from .distances import check_embeddings, check_finite, clamped_norm, distance_op

REDUCTIONS = ("mean", "sum", "none")


class LossOp(Function):
    """Base of the losses: ``forward`` computes one loss per sample and returns ``reduce(losses)``;
    ``backward`` multiplies each sample's derivative by its share ``per_sample_grad(g)``."""

    def __init__(self, reduction="mean"):
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def reduce(self, losses):
        self.n = losses.shape[0]
        if self.reduction == "none":
            return losses
        return losses.mean() if self.reduction == "mean" else losses.sum()

    def per_sample_grad(self, g):
        """dL/d(loss_i): g itself for "none", g (or g / n for "mean") copied to every sample."""
        if self.reduction == "none":
            return g
        return xp_of(g).full(self.n, g / self.n if self.reduction == "mean" else g, dtype=g.dtype)


# ----- pair losses on a distance (or energy) per pair -----------------------------------------
class ContrastiveLoss(LossOp):
    """Hadsell, Chopra & LeCun 2006: L = same * D^2 / 2 + (1 - same) * max(0, m - D)^2 / 2.

    dL/dD = same * D - (1 - same) * max(0, m - D).  (docs/derivations.md#contrastive-loss)
    """

    def __init__(self, margin, reduction="mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, d, same):
        self.d, self.same = d, same
        self.gap = xp_of(d).maximum(self.margin - d, 0)
        return self.reduce(same * d * d / 2 + (1 - same) * self.gap * self.gap / 2)

    def backward(self, g):  # dL/dD = same * D - (1 - same) * max(0, m - D)
        return self.per_sample_grad(g) * (self.same * self.d - (1 - self.same) * self.gap), None


class ContrastiveLinearLoss(LossOp):
    """Lecture notes' linear form: L = same * D + (1 - same) * max(0, m - D).

    dL/dD = same - (1 - same) * [D < m].  (docs/derivations.md#linear-contrastive-loss)
    """

    def __init__(self, margin, reduction="mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, d, same):
        self.same = same
        self.inside = d < self.margin  # the hinge is active (D = m counts as inactive)
        return self.reduce(same * d + (1 - same) * xp_of(d).maximum(self.margin - d, 0))

    def backward(self, g):  # dL/dD = same - (1 - same) * [D < m]
        return self.per_sample_grad(g) * (self.same - (1 - self.same) * self.inside), None


class ChopraEnergyLoss(LossOp):
    """Chopra, Hadsell & LeCun 2005: L = same * (2/Q) E^2 + (1 - same) * 2 Q exp(-2.77 E / Q).

    dL/dE = same * 4 E / Q - (1 - same) * 5.54 exp(-2.77 E / Q).  (docs/derivations.md#chopra-energy-loss)
    """

    def __init__(self, q, reduction="mean"):
        super().__init__(reduction)
        self.q = q

    def forward(self, e, same):
        self.e, self.same = e, same
        self.decay = xp_of(e).exp(-2.77 * e / self.q)
        return self.reduce(same * (2 / self.q) * e * e + (1 - same) * 2 * self.q * self.decay)

    def backward(self, g):  # dL/dE = same * 4E/Q - (1 - same) * 5.54 exp(-2.77 E / Q)
        slope = self.same * 4 * self.e / self.q - (1 - self.same) * 5.54 * self.decay
        return self.per_sample_grad(g) * slope, None


class BCEWithLogitsLoss(LossOp):
    """Binary cross-entropy on logits z with target y = same:
    L = -y log sigmoid(z) - (1 - y) log(1 - sigmoid(z)) = max(z, 0) - z y + log(1 + exp(-|z|)).

    The right-hand form never overflows. dL/dz = sigmoid(z) - y.  (docs/derivations.md#binary-cross-entropy)
    """

    def forward(self, z, y):
        xp = xp_of(z)
        self.z, self.y = z, y
        return self.reduce(xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-abs(z))))

    def backward(self, g):  # dL/dz = sigmoid(z) - y
        xp = xp_of(g)
        sigmoid = xp.exp(-xp.logaddexp(0, -self.z))
        return self.per_sample_grad(g) * (sigmoid - self.y), None


class MSELoss(LossOp):
    """Mean squared error per sample (Relation Network): L_i = mean_k (p_ik - t_ik)^2, then reduced over i.

    dL_i/dp = 2 (p - t) / K, dL_i/dt = -2 (p - t) / K.  (docs/derivations.md#mean-squared-error)
    """

    def forward(self, p, t):
        self.diff = p - t
        self.k = max(p[0].size, 1)
        return self.reduce((self.diff * self.diff).reshape(p.shape[0], -1).mean(axis=1))

    def backward(self, g):  # dL_i/dp = 2 (p - t) / K
        scale = self.per_sample_grad(g).reshape((-1,) + (1,) * (self.diff.ndim - 1))
        grad = 2 * scale * self.diff / self.k
        return grad, -grad


# ----- losses on embeddings -----------------------------------------------------------------------
class TripletLoss(LossOp):
    """Schroff et al. 2015 (FaceNet): L = max(0, m + d(a, p) - d(a, n)).

    Reuses the distance ops' own forward/backward: with active = [m + d(a,p) - d(a,n) > 0],
    dL/d(d(a,p)) = active and dL/d(d(a,n)) = -active.  (docs/derivations.md#triplet-loss)
    """

    def __init__(self, margin, distance="l2", reduction="mean"):
        super().__init__(reduction)
        self.margin = margin
        self.positive_distance, self.negative_distance = distance_op(distance), distance_op(distance)

    def forward(self, a, p, n):
        d_ap = self.positive_distance.forward(a, p)
        d_an = self.negative_distance.forward(a, n)
        hinge = self.margin + d_ap - d_an
        self.active = hinge > 0
        return self.reduce(hinge * self.active)

    def backward(self, g):  # chain rule through both distances, only where the hinge is active
        g_active = self.per_sample_grad(g) * self.active
        grad_a1, grad_p = self.positive_distance.backward(g_active)
        grad_a2, grad_n = self.negative_distance.backward(-g_active)
        return grad_a1 + grad_a2, grad_p, grad_n


class NTXentLoss(LossOp):
    """NT-Xent / InfoNCE (SimCLR, Chen et al. 2020) over N positive pairs (z1_i, z2_i).

    The 2N views are L2-normalised, u = z / max(|z|, NORM_EPS); s_ij = u_i . u_j / T. For view i
    with partner p(i): L_i = -s_ip(i) + log sum_{j != i} exp(s_ij). With P = softmax over j != i,
    dL/ds_ij = P_ij - [j = p(i)]; then ds -> du -> dz. ``reduction="none"`` gives the 2N values
    L_i, z1's views first.  (docs/derivations.md#nt-xent)
    """

    def __init__(self, temperature, reduction="mean"):
        super().__init__(reduction)
        self.t = temperature

    def forward(self, z1, z2):
        xp = xp_of(z1)
        z = xp.concatenate([z1, z2])
        n2 = z.shape[0]
        norm, self.free = clamped_norm(z)
        self.norm = norm[:, None]
        self.u = z / self.norm
        s = self.u @ self.u.T / self.t
        s[xp.arange(n2), xp.arange(n2)] = -xp.inf  # a view is not its own negative
        self.partner = (xp.arange(n2) + n2 // 2) % n2
        top = s.max(axis=1, keepdims=True)  # subtracted before exp: no overflow for small T
        exp_s = xp.exp(s - top)
        self.softmax = exp_s / exp_s.sum(axis=1, keepdims=True)
        log_sum = xp.log(exp_s.sum(axis=1)) + top[:, 0]
        return self.reduce(log_sum - s[xp.arange(n2), self.partner])

    def backward(self, g):  # dL/ds = P - onehot(partner); s = u u^T / T; u = z / |z|
        xp = xp_of(g)
        n2 = self.u.shape[0]
        grad_s = self.softmax.copy()
        grad_s[xp.arange(n2), self.partner] -= 1
        grad_s *= self.per_sample_grad(g)[:, None]
        grad_u = (grad_s + grad_s.T) @ self.u / self.t  # s uses u twice: as row and as column
        # through the normalisation: du/dz removes the radial part (not where |z| is clamped), then divides by |z|
        radial = (grad_u * self.u).sum(axis=1, keepdims=True) * self.free[:, None]
        grad_z = (grad_u - self.u * radial) / self.norm
        return grad_z[: n2 // 2], grad_z[n2 // 2:]


# ----- a distribution over score levels (relatedness, Tai et al. 2015) ---------------------------------
class KLDivergenceLoss(LossOp):
    """KL(p || q) from a target distribution p to q = softmax(z) over K score levels, per sample:
    L_i = sum_k p_ik (log p_ik - log q_ik), with 0 log 0 = 0 (a sparse target is fine).

    Since sum_k p_ik = 1, dL_i/dz_ik = q_ik - p_ik.  (docs/derivations.md#kl-divergence-to-a-score-distribution)
    """

    def forward(self, z, p):
        xp = xp_of(z)
        shifted = z - z.max(axis=1, keepdims=True)  # softmax and its log without overflow
        log_q = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        self.q, self.p = xp.exp(log_q), p
        log_p = xp.log(xp.where(p > 0, p, 1))  # log 1 = 0 where p = 0: those terms vanish
        return self.reduce((p * (log_p - log_q)).sum(axis=1))

    def backward(self, g):  # dL_i/dz = softmax(z) - p
        return self.per_sample_grad(g)[:, None] * (self.q - self.p), None


# ----- checking arguments -------------------------------------------------------------------------------
def _values_and_labels(caller, values_name, values, same):
    """``values`` (N,) floating Tensor and ``same`` (N,) of 0/1, as a constant Tensor of values' dtype."""
    check_float_tensor(caller, values_name, values)
    if values.ndim != 1 or values.shape[0] == 0:
        raise ValueError(f"{caller}: {values_name} must be a non-empty (N,) tensor, got shape {values.shape}")
    check_finite(caller, values_name, values)
    xp = xp_of(values.data)
    labels = xp.asarray(same.data if isinstance(same, Tensor) else same)
    if labels.shape != values.shape:  # no broadcasting: (N,) against (N, 1) is a mistake
        raise ValueError(f"{caller}: same has shape {labels.shape} but {values_name} has shape {values.shape}")
    if may_read(labels) and not ((labels == 0) | (labels == 1)).all():
        bad = labels[(labels != 0) & (labels != 1)][:3].tolist()
        raise ValueError(f"{caller}: same must hold only 0 (different) and 1 (same), got values like {bad}")
    return Tensor(labels.astype(values.dtype))


def contrastive_loss(distance, same, margin=1.0, reduction="mean"):
    """Hadsell et al. 2006 contrastive loss on (N,) pair distances; see ``ContrastiveLoss``."""
    check_number("margin", margin, low=0, low_included=False)
    same = _values_and_labels("contrastive_loss", "distance", distance, same)
    return ContrastiveLoss(margin, reduction)(distance, same)


def contrastive_linear_loss(distance, same, margin=1.0, reduction="mean"):
    """Linear (hinge) contrastive loss of the lecture notes on (N,) distances; see ``ContrastiveLinearLoss``."""
    check_number("margin", margin, low=0, low_included=False)
    same = _values_and_labels("contrastive_linear_loss", "distance", distance, same)
    return ContrastiveLinearLoss(margin, reduction)(distance, same)


def chopra_energy_loss(energy, same, q, reduction="mean"):
    """Chopra et al. 2005 loss on (N,) energies E (L1 distances) bounded by Q; see ``ChopraEnergyLoss``."""
    check_number("q", q, low=0, low_included=False)
    same = _values_and_labels("chopra_energy_loss", "energy", energy, same)
    return ChopraEnergyLoss(q, reduction)(energy, same)


def bce_with_logits(logits, same, reduction="mean"):
    """Binary cross-entropy on (N,) logits (Koch et al. 2015 head); see ``BCEWithLogitsLoss``."""
    same = _values_and_labels("bce_with_logits", "logits", logits, same)
    return BCEWithLogitsLoss(reduction)(logits, same)


def mse_loss(prediction, target, reduction="mean"):
    """Mean squared error (Relation Networks: score vs 1 = same / 0 = different); see ``MSELoss``.

    ``prediction`` is an (N, ...) Tensor; ``target`` a Tensor of the same shape and dtype
    (it gets a gradient if it requires one) or an array of that shape, held constant.

    Each sample's loss is the mean over its K elements, as for every loss here one value
    per sample: "none" returns those N means, "mean" their mean (the mean over all N*K
    elements, the same as PyTorch's ``F.mse_loss``), and "sum" their sum, which is K times
    smaller than PyTorch's ``reduction="sum"`` (a sum over all N*K elements). For K = 1,
    one score per pair as in Relation Networks, the two agree.
    """
    check_float_tensor("mse_loss", "prediction", prediction)
    if not isinstance(target, Tensor):
        target = Tensor(xp_of(prediction.data).asarray(target, dtype=prediction.dtype))
    if prediction.shape != target.shape or prediction.ndim == 0 or prediction.shape[0] == 0:
        raise ValueError(f"mse_loss: prediction has shape {prediction.shape} and target {target.shape}; "
                         "they must be one non-empty (N, ...) shape")
    if target.dtype != prediction.dtype:
        raise TypeError(f"mse_loss: target has dtype {target.dtype}, prediction {prediction.dtype}")
    for name, t in (("prediction", prediction), ("target", target)):
        check_finite("mse_loss", name, t)
    return MSELoss(reduction)(prediction, target)


def triplet_loss(anchor, positive, negative, margin=1.0, distance="l2", reduction="mean"):
    """max(0, m + d(a, p) - d(a, n)) for (N, D) embeddings; see ``TripletLoss``."""
    check_number("margin", margin, low=0, low_included=False)
    check_embeddings("triplet_loss", anchor=anchor, positive=positive, negative=negative)
    return TripletLoss(margin, distance, reduction)(anchor, positive, negative)


def nt_xent_loss(z1, z2, temperature=0.5, reduction="mean"):
    """NT-Xent over N positive pairs (row i of z1 with row i of z2); see ``NTXentLoss``. Needs N >= 2."""
    check_number("temperature", temperature, low=0, low_included=False)
    check_embeddings("nt_xent_loss", z1=z1, z2=z2)
    smallest = 1 / float(np.finfo(z1.dtype).max)  # similarities / T reach 1 / T, which must stay finite
    if temperature < smallest:
        raise ValueError(f"nt_xent_loss: temperature {temperature} is too small for {z1.dtype} embeddings: "
                         f"1 / temperature overflows; it must be at least {smallest:.3g}")
    if z1.shape[0] < 2:
        raise ValueError(f"nt_xent_loss: needs at least 2 pairs (negatives come from the batch), got {z1.shape[0]}")
    return NTXentLoss(temperature, reduction)(z1, z2)


def kl_divergence_loss(logits, target, reduction="mean"):
    """KL divergence from ``target`` (N, K) distributions (rows >= 0 summing to 1, held constant) to
    softmax(``logits``) (N, K); see ``KLDivergenceLoss``. Tai et al. 2015's relatedness objective, with
    ``score_distribution`` giving the target."""
    check_float_tensor("kl_divergence_loss", "logits", logits)
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] < 2:
        raise ValueError(f"kl_divergence_loss: logits must be (N, K) with N >= 1 and K >= 2, got {logits.shape}")
    check_finite("kl_divergence_loss", "logits", logits)
    xp = xp_of(logits.data)
    p = xp.asarray(target.data if isinstance(target, Tensor) else target)
    if p.shape != logits.shape:
        raise ValueError(f"kl_divergence_loss: target has shape {p.shape} but logits {logits.shape}")
    if p.dtype.kind != "f":
        raise TypeError(f"kl_divergence_loss: target must be floating point (distributions), got dtype {p.dtype}")
    if may_read(p):
        sums = p.sum(axis=1)
        if not (p >= 0).all() or not xp.allclose(sums, 1, atol=1e-6):
            i = int(((p < 0).any(axis=1) | ~xp.isclose(sums, 1, atol=1e-6)).argmax())
            raise ValueError(f"kl_divergence_loss: target row {i} is not a distribution (needs values >= 0 "
                             f"summing to 1), got {p[i].tolist()}")
    return KLDivergenceLoss(reduction)(logits, Tensor(p.astype(logits.dtype)))


def score_distribution(scores, low=1, high=5):
    """Tai et al. 2015's sparse target: a score y in [low, high] as a distribution over the K = high - low + 1
    integer levels, p[floor(y)] = floor(y) - y + 1 and p[floor(y) + 1] = y - floor(y), so that
    sum_k p_k * level_k = y. Returns an (N, K) float64 NumPy array."""
    check_number("low", low)
    y = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or not np.isfinite(y).all() or (y < low).any() or (y > high).any():
        outside = y.reshape(-1)[~((y.reshape(-1) >= low) & (y.reshape(-1) <= high))][:3].tolist()
        raise ValueError(f"score_distribution: scores must be an (N,) array of numbers in [{low}, {high}], "
                         f"got shape {y.shape}" + (f", values like {outside}" if outside else ""))
    levels = int(high - low) + 1
    position = y - low  # 0 .. K - 1
    below = np.minimum(np.floor(position).astype(int), levels - 2)  # y = high: all mass on the top level
    above_share = position - below
    p = np.zeros((len(y), levels))
    p[np.arange(len(y)), below] = 1 - above_share
    p[np.arange(len(y)), below + 1] = above_share
    return p


def expected_score(logits, low=1):
    """sum_k softmax(logits)_k * level_k: the score a distribution over levels low, low + 1, ... predicts
    (a NumPy array; no gradient)."""
    z = to_numpy(logits.data if isinstance(logits, Tensor) else logits).astype(np.float64)
    q = np.exp(z - z.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    return q @ (low + np.arange(z.shape[1]))
