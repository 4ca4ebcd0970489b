"""Catalogue entries for the distances, losses, heads and Siamese wrappers (float64).

Inputs keep clear of the corners where a derivative does not exist (|x| at 0,
a hinge at exactly the margin): finite differences cannot judge those points,
and the tests check the values chosen there explicitly.
"""
import numpy as np

from ... import nn
from ...siamese import losses
from ...siamese.distances import cosine_distance, l1_distance, l2_distance, squared_l2_distance
from ...siamese.networks import KochHead, RelationModule, TripletNetwork, TwinNetwork
from . import Check
from .layers import module_check


def checks(rng):
    n = rng.standard_normal
    same = np.array([1, 0, 1, 0, 0, 1])
    d = rng.uniform(0.1, 2.0, 6)
    d[1] = 1.3  # a different pair beyond the margin of 1: its hinge is inactive
    entries = [
        Check("l1_distance", "distance", l1_distance, [n((5, 4)), n((5, 4))]),
        Check("l2_distance", "distance", l2_distance, [n((5, 4)), n((5, 4))]),
        Check("squared_l2_distance", "distance", squared_l2_distance, [n((5, 4)), n((5, 4))]),
        Check("cosine_distance", "distance", cosine_distance, [n((5, 4)), n((5, 4))]),
        Check("bce_with_logits saturated +-1e3", "loss", lambda z: losses.bce_with_logits(z, same),
              [np.array([1e3, -1e3, -900.0, 900.0, 2.0, -3.0])]),
        Check("nt_xent_loss T=0.1", "loss", lambda a, b: losses.nt_xent_loss(a, b, 0.1), [n((3, 5)), n((3, 5))]),
    ]
    anchor = n((6, 3))
    spread = np.array([0.1, 3.0] * 3)[:, None]  # negatives alternately near the anchor (hinge active) and far
    triplet = [anchor, anchor + 0.5 * n((6, 3)), anchor + spread * n((6, 3))]
    for distance in ("squared_l2", "l1", "cosine"):  # l2 comes with each reduction below
        entries.append(Check(f"triplet_loss {distance} m=0.5", "loss",
                             lambda a, p, q, dist=distance: losses.triplet_loss(a, p, q, 0.5, dist), triplet))
    for r in losses.REDUCTIONS:  # every loss once with each reduction
        entries += [
            Check(f"contrastive_loss m=1 {r}", "loss", lambda x, r=r: losses.contrastive_loss(x, same, 1.0, r), [d]),
            Check(f"contrastive_linear_loss m=1 {r}", "loss",
                  lambda x, r=r: losses.contrastive_linear_loss(x, same, 1.0, r), [d]),
            Check(f"chopra_energy_loss q=4 {r}", "loss",
                  lambda e, r=r: losses.chopra_energy_loss(e, same, 4.0, r), [d]),
            Check(f"bce_with_logits {r}", "loss", lambda z, r=r: losses.bce_with_logits(z, same, r), [n(6) * 3]),
            Check(f"mse_loss {r}", "loss", lambda p, t, r=r: losses.mse_loss(p, t, r), [n((4, 3)), n((4, 3))]),
            Check(f"triplet_loss l2 m=0.5 {r}", "loss",
                  lambda a, p, q, r=r: losses.triplet_loss(a, p, q, 0.5, "l2", r), triplet),
            Check(f"nt_xent_loss T=0.5 {r}", "loss", lambda a, b, r=r: losses.nt_xent_loss(a, b, 0.5, r),
                  [n((4, 3)), n((4, 3))]),
        ]
    tower = nn.Sequential(nn.Linear(4, 3, rng=rng), nn.Tanh())
    entries += [
        module_check("KochHead(3)", "head", KochHead(3, rng=rng), [n((4, 3)), n((4, 3))]),
        module_check("RelationModule(2, hidden=3)", "head", RelationModule(2, hidden=3, rng=rng),
                     [n((3, 2, 2, 2)), n((3, 2, 2, 2))]),
        module_check("TwinNetwork(tower, KochHead)", "network", TwinNetwork(tower, KochHead(3, rng=rng)),
                     [n((4, 4)), n((4, 4))]),
        module_check("TwinNetwork(tower) -> contrastive_loss(l2)", "network", _TwinWithLoss(TwinNetwork(tower)),
                     [n((4, 4)), n((4, 4))]),
        module_check("TripletNetwork(tower) -> triplet_loss", "network", _TripletWithLoss(TripletNetwork(tower)),
                     [n((3, 4)), n((3, 4)), n((3, 4))]),
    ]
    return entries


class _TwinWithLoss(nn.Module):
    """The twin without a head, followed by the contrastive loss on its embeddings' distance."""

    def __init__(self, twin):
        super().__init__()
        self.twin = twin

    def forward(self, x1, x2):
        # margin 5 keeps both hinges active: the tanh tower's embeddings lie closer than that
        return losses.contrastive_loss(l2_distance(*self.twin(x1, x2)), np.array([1, 0, 0, 1]), margin=5.0)


class _TripletWithLoss(nn.Module):
    """The triplet wrapper followed by its loss, so one scalar depends on all three branches."""

    def __init__(self, triplet):
        super().__init__()
        self.triplet = triplet

    def forward(self, a, p, q):
        return losses.triplet_loss(*self.triplet(a, p, q), margin=5.0)
