"""The Siamese toolkit: shared-weight twin and triplet networks, heads, distances, losses and mining.

``networks.py`` (TwinNetwork, TripletNetwork, KochHead, RelationModule),
``distances.py`` and ``losses.py`` (fused ops with hand-derived backward
passes), ``composed.py`` (the same formulas from primitive ops, to cross-check
them), ``mining.py`` (pair and triplet sampling) and ``text.py`` (a sentence
encoder over word ids and the relatedness heads). Built on ``tinysiam.engine``
and ``tinysiam.nn``.
"""
from . import composed, distances, losses, mining, networks, text
from .distances import cosine_distance, l1_distance, l2_distance, pairwise_distances, squared_l2_distance
from .losses import (
                     bce_with_logits,
                     chopra_energy_loss,
                     contrastive_linear_loss,
                     contrastive_loss,
                     expected_score,
                     kl_divergence_loss,
                     mse_loss,
                     nt_xent_loss,
                     score_distribution,
                     triplet_loss,
)
from .mining import PairSampler, TripletSampler, batch_hard_triplets, random_triplets, semi_hard_triplets
from .networks import KochHead, RelationModule, TripletNetwork, TwinNetwork
from .text import DistributionHead, ExpL1Head, TextConvTower, TextTwin, pad_batch

__all__ = ["KochHead", "PairSampler", "RelationModule", "TripletNetwork", "TripletSampler", "TwinNetwork",
           "batch_hard_triplets", "bce_with_logits", "chopra_energy_loss", "composed", "contrastive_linear_loss",
           "contrastive_loss", "cosine_distance", "distances", "l1_distance", "l2_distance", "losses", "mining",
           "mse_loss", "networks", "nt_xent_loss", "pairwise_distances", "random_triplets", "semi_hard_triplets",
           "squared_l2_distance", "triplet_loss"]
__all__ += ["DistributionHead", "ExpL1Head", "TextConvTower", "TextTwin", "expected_score", "kl_divergence_loss",
            "pad_batch", "score_distribution", "text"]
