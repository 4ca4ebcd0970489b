"""Evaluation: metrics (ROC, AUC, EER, retrieval, N-way k-shot), Lake's one-shot protocol with its baselines,
k-fold pair verification, plots."""
from . import metrics, oneshot, verification

__all__ = ["metrics", "oneshot", "verification"]
