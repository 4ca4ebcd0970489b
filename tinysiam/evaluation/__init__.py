"""Evaluation: metrics (ROC, AUC, EER, retrieval, N-way k-shot), Lake's one-shot protocol with its baselines,
verification on held-out classes (pairs, and fold by fold), dynamic time warping, plots, and sentence relatedness
(SICK's Pearson, Spearman and MSE with the lexical baselines)."""
from . import dtw, metrics, oneshot, relatedness, verification

__all__ = ["dtw", "metrics", "oneshot", "relatedness", "verification"]
