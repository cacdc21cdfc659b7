"""Retrieval metrics: MAP@k as SSDH's ``precision.m`` (SPEC section 2) and friends.

See ``rol_hashing.metrics.map`` for the exact definitions, the tie rule (gallery
order) and how they differ from other hashing repositories.
"""

from rol_hashing.metrics.map import (
    RankingMetrics,
    average_precisions,
    mean_average_precision,
    precision_at_k,
    ranking_metrics,
)
from rol_hashing.metrics.relevance import Relevance

__all__ = [
    "RankingMetrics",
    "Relevance",
    "average_precisions",
    "mean_average_precision",
    "precision_at_k",
    "ranking_metrics",
]
