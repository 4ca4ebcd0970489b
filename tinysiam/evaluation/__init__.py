"""Evaluation: metrics (ROC, AUC, EER, retrieval, N-way k-shot), Lake's one-shot protocol with its baselines, plots."""
from . import metrics, oneshot

__all__ = ["metrics", "oneshot"]
