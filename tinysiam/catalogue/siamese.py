"""Catalogue entries for the distances, losses, heads and Siamese wrappers."""
import numpy as np

from .. import losses, nn
from ..distances import cosine_distance, l1_distance, l2_distance, squared_l2_distance
from ..siamese import KochHead, RelationModule, TripletNetwork, TwinNetwork
from . import Check
from .layers import module_check


def checks(rng):
    n = rng.standard_normal
    same = np.array([1, 0, 1, 0, 0, 1])
    d = rng.uniform(0.1, 2.0, 6)
    d[1] = 1.3  # a different pair beyond the margin: its hinge is inactive
    entries = [
        Check("l1_distance", "distance", l1_distance, [n((5, 4)), n((5, 4))]),
        Check("l2_distance", "distance", l2_distance, [n((5, 4)), n((5, 4))]),
        Check("squared_l2_distance", "distance", squared_l2_distance, [n((5, 4)), n((5, 4))]),
        Check("cosine_distance", "distance", cosine_distance, [n((5, 4)), n((5, 4))]),
        Check("chopra_energy_loss q=4", "loss", lambda e: losses.chopra_energy_loss(e, same, q=4.0), [d]),
        Check("bce_with_logits", "loss", lambda z: losses.bce_with_logits(z, same), [n(6) * 3]),
        Check("bce_with_logits saturated +-40", "loss", lambda z: losses.bce_with_logits(z, same),
              [np.array([40.0, -40.0, -35.0, 35.0, 2.0, -3.0])]),
        Check("mse_loss", "loss", losses.mse_loss, [n((4, 3)), n((4, 3))]),
        Check("nt_xent_loss T=0.5", "loss", lambda a, b: losses.nt_xent_loss(a, b, 0.5), [n((4, 3)), n((4, 3))]),
        Check("nt_xent_loss T=0.1 none", "loss", lambda a, b: losses.nt_xent_loss(a, b, 0.1, reduction="none"),
              [n((3, 5)), n((3, 5))]),
    ]
    for reduction in ("mean", "sum", "none"):
        entries += [
            Check(f"contrastive_loss m=1 {reduction}", "loss",
                  lambda x, r=reduction: losses.contrastive_loss(x, same, 1.0, reduction=r), [d]),
            Check(f"contrastive_linear_loss m=1 {reduction}", "loss",
                  lambda x, r=reduction: losses.contrastive_linear_loss(x, same, 1.0, reduction=r), [d]),
        ]
    for distance in ("l2", "squared_l2", "l1", "cosine"):
        anchor = n((6, 3))
        # negatives alternately near the anchor (hinge active) and far from it (hinge inactive)
        spread = np.array([0.1, 3.0] * 3)[:, None]
        entries.append(Check(f"triplet_loss {distance} m=0.5", "loss",
                             lambda a, p, q, dist=distance: losses.triplet_loss(a, p, q, 0.5, dist),
                             [anchor, anchor + 0.5 * n((6, 3)), anchor + spread * n((6, 3))]))
    tower = nn.Sequential(nn.Linear(4, 3, rng=rng), nn.Tanh())
    entries += [
        module_check("KochHead(3)", "head", KochHead(3, rng=rng), [n((4, 3)), n((4, 3))]),
        module_check("RelationModule(2, hidden=3)", "head", RelationModule(2, hidden=3, rng=rng),
                     [n((3, 2, 2, 2)), n((3, 2, 2, 2))]),
        module_check("TwinNetwork(tower, KochHead)", "network", TwinNetwork(tower, KochHead(3, rng=rng)),
                     [n((4, 4)), n((4, 4))]),
        module_check("TripletNetwork(tower) -> triplet_loss", "network", _TripletWithLoss(TripletNetwork(tower)),
                     [n((3, 4)), n((3, 4)), n((3, 4))]),
    ]
    return entries


class _TripletWithLoss(nn.Module):
    """The triplet wrapper followed by its loss, so one scalar depends on all three branches."""

    def __init__(self, triplet):
        super().__init__()
        self.triplet = triplet

    def forward(self, a, p, q):
        return losses.triplet_loss(*self.triplet(a, p, q), margin=5.0)
