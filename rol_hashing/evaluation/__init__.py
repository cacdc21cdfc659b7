"""Evaluation: MAP@k as SSDH's ``precision.m`` (readings §2), run evaluation, comparisons.

- ``map``: ``ranking_metrics``, ``mean_average_precision``, ``average_precisions``,
  ``precision_at_k`` (the exact definitions, tie rule and how they differ from other
  hashing repositories are in its docstring);
- ``evaluate``: ``evaluate_run`` (``metrics.json``/``metrics.md`` of a trained run);
- ``compare``: what the notebooks show (masks, per-query AP of two runs, top-k rows).

The relevance rule itself is ``rol_hashing.retrieval.relevance.Relevance`` (search uses
it too, and retrieval sits below evaluation).
"""

from rol_hashing.evaluation.map import (
    RankingMetrics,
    average_precisions,
    mean_average_precision,
    precision_at_k,
    ranking_metrics,
)

__all__ = [
    "RankingMetrics",
    "average_precisions",
    "mean_average_precision",
    "precision_at_k",
    "ranking_metrics",
]
