"""Evaluation: metrics (ROC, AUC, EER, retrieval, N-way k-shot), Lake's one-shot protocol with its baselines,
verification on held-out classes (pairs, and fold by fold), dynamic time warping, plots."""
from . import dtw, metrics, oneshot, verification

__all__ = ["dtw", "metrics", "oneshot", "verification"]
