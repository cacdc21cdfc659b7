"""MAP@k and friends, exactly as SSDH's ``precision.m`` (readings §2).

For each query, the whole gallery is ranked by Hamming distance to the query code,
**ties in gallery order** (MATLAB's ``sort`` is stable; here ``HammingIndex``, the
one ranking code path). With rel_j = 1 when the j-th ranked item is relevant (same
class; multi-hot: at least one shared label) and P@j = (rel_1 + ... + rel_j) / j::

    AP@k = sum_{j<=k} P@j * rel_j / (number of relevant items within the top k)
    AP@k = 0 if no relevant item is within the top k   (the query still counts)
    MAP@k = mean of AP@k over all queries
    precision@j (curve) = mean over queries of P@j, j = 1..k   (SSDH's precision_at_k)

How this differs from other hashing repositories, which disagree on this metric:

- ties are broken by gallery order, not by an unstable sort (``np.argsort`` default,
  ``torch.sort``), so results do not depend on the sort implementation;
- AP is normalised by the relevant items *within the top k*, not by all relevant
  items in the gallery (the latter gives smaller numbers);
- queries with no relevant item in the top k count with AP 0; they are not dropped
  (dropping them inflates MAP).

Also: ``map_full`` is the same AP over the whole ranking (k = N), and, within
Hamming radius r (2 by default), per query precision = relevant retrieved /
retrieved (0 when nothing is within the radius, as in SSDH's and DPSH's code) and
recall = relevant retrieved / relevant in the gallery (0 when the gallery holds
none), each averaged over all queries.

Codes: bool (N, bits), or packed uint8 (N, ceil(bits/8)) with ``bits=`` given.
Asking for ``top_k`` larger than the gallery is a ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rol_hashing.errors import InputError, check_int
from rol_hashing.retrieval.codes import codes_to_words
from rol_hashing.retrieval.index import HammingIndex
from rol_hashing.retrieval.relevance import Relevance


@dataclass(frozen=True)
class RankingMetrics:
    """Everything computed from one ranking pass (see the module docstring).

    Attributes:
        top_k: the k of MAP@k and of the precision curve.
        map_at_k: MAP@top_k.
        map_full: MAP over the whole ranking.
        precision_curve: (top_k,) mean precision at j = 1..top_k.
        radius: the Hamming radius of ``precision_radius`` / ``recall_radius``.
        precision_radius: mean precision within the radius (0 for empty retrievals).
        recall_radius: mean recall within the radius (0 for queries without relevant items).
        average_precision: (Q,) AP@top_k of each query.
        num_queries, num_gallery, bits: the sizes evaluated.
    """

    top_k: int
    map_at_k: float
    map_full: float
    precision_curve: np.ndarray
    radius: int
    precision_radius: float
    recall_radius: float
    average_precision: np.ndarray
    num_queries: int
    num_gallery: int
    bits: int

    def precision_at(self, k: int) -> float:
        """Mean precision at rank k (1 <= k <= top_k)."""
        if not 1 <= k <= self.top_k:
            raise InputError(f"k must be in 1..{self.top_k}, got {k}")
        return float(self.precision_curve[k - 1])

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (arrays as lists)."""
        return {
            "top_k": self.top_k,
            "map_at_k": self.map_at_k,
            "map_full": self.map_full,
            "precision_curve": self.precision_curve.tolist(),
            "radius": self.radius,
            "precision_radius": self.precision_radius,
            "recall_radius": self.recall_radius,
            "num_queries": self.num_queries,
            "num_gallery": self.num_gallery,
            "bits": self.bits,
        }


def mean_average_precision(
    query_codes: np.ndarray,
    query_labels: np.ndarray,
    gallery_codes: np.ndarray,
    gallery_labels: np.ndarray,
    top_k: int = 1000,
    *,
    bits: int | None = None,
) -> float:
    """MAP@top_k as SSDH's ``precision.m``: stable Hamming ranking, AP over the
    relevant items within the top k, zero-hit queries counted as 0.

    Args:
        query_codes: bool (Q, bits) or packed uint8 (Q, ceil(bits/8)).
        query_labels: (Q,) integer classes or (Q, C) multi-hot.
        gallery_codes: bool (N, bits) or packed uint8 (N, ceil(bits/8)).
        gallery_labels: (N,) or (N, C), the same kind as the queries.
        top_k: ranks evaluated, 1 <= top_k <= N (the paper: 1000).
        bits: code length; needed for packed codes.

    Returns:
        MAP in [0, 1].
    """
    return float(
        average_precisions(
            query_codes, query_labels, gallery_codes, gallery_labels, top_k, bits=bits
        ).mean()
    )


def average_precisions(
    query_codes: np.ndarray,
    query_labels: np.ndarray,
    gallery_codes: np.ndarray,
    gallery_labels: np.ndarray,
    top_k: int = 1000,
    *,
    bits: int | None = None,
) -> np.ndarray:
    """AP@top_k of each query, float64 (Q,); arguments as ``mean_average_precision``."""
    index, queries, relevance = _prepare(
        query_codes, query_labels, gallery_codes, gallery_labels, top_k, bits
    )
    ap = np.empty(queries.shape[0], dtype=np.float64)
    for start, _, indices in index.iter_search(queries, top_k):
        rows = slice(start, start + indices.shape[0])
        ap[rows] = _average_precision(relevance(rows, indices))
    return ap


def precision_at_k(
    query_codes: np.ndarray,
    query_labels: np.ndarray,
    gallery_codes: np.ndarray,
    gallery_labels: np.ndarray,
    top_k: int = 1000,
    *,
    bits: int | None = None,
) -> np.ndarray:
    """Mean precision at ranks 1..top_k, float64 (top_k,) (SSDH's ``precision_at_k``).

    Arguments as ``mean_average_precision``; ``result[k - 1]`` is precision@k.
    """
    index, queries, relevance = _prepare(
        query_codes, query_labels, gallery_codes, gallery_labels, top_k, bits
    )
    hits_sum = np.zeros(top_k, dtype=np.int64)
    for start, _, indices in index.iter_search(queries, top_k):
        rel = relevance(slice(start, start + indices.shape[0]), indices)
        hits_sum += np.cumsum(rel, axis=1, dtype=np.int32).sum(axis=0)
    return hits_sum / (np.arange(1, top_k + 1) * queries.shape[0])


def ranking_metrics(
    query_codes: np.ndarray,
    query_labels: np.ndarray,
    gallery_codes: np.ndarray,
    gallery_labels: np.ndarray,
    top_k: int = 1000,
    radius: int = 2,
    *,
    bits: int | None = None,
) -> RankingMetrics:
    """MAP@top_k, MAP over the whole ranking, the precision curve and precision/recall
    within Hamming ``radius``, from one pass over the full ranking.

    Arguments as ``mean_average_precision``; ``radius`` >= 0.
    """
    radius = check_int(radius, "radius", minimum=0)
    index, queries, relevance = _prepare(
        query_codes, query_labels, gallery_codes, gallery_labels, top_k, bits
    )
    n_q, n_g = queries.shape[0], index.ntotal
    ap_k = np.empty(n_q, dtype=np.float64)
    ap_full = np.empty(n_q, dtype=np.float64)
    precision_r = np.empty(n_q, dtype=np.float64)
    recall_r = np.empty(n_q, dtype=np.float64)
    hits_sum = np.zeros(top_k, dtype=np.int64)
    for start, distances, indices in index.iter_search(queries, n_g):
        rows = slice(start, start + indices.shape[0])
        rel = relevance(rows, indices)
        hits = np.cumsum(rel, axis=1, dtype=np.int32)
        ap_k[rows] = _average_precision(rel[:, :top_k], hits[:, :top_k])
        ap_full[rows] = _average_precision(rel, hits)
        hits_sum += hits[:, :top_k].sum(axis=0)
        # Rankings are sorted by distance: the items within the radius come first.
        retrieved = np.count_nonzero(distances <= radius, axis=1)
        row_ids = np.arange(indices.shape[0])
        relevant_retrieved = np.where(retrieved > 0, hits[row_ids, np.maximum(retrieved - 1, 0)], 0)
        relevant_total = hits[:, -1]
        precision_r[rows] = _safe_ratio(relevant_retrieved, retrieved)
        recall_r[rows] = _safe_ratio(relevant_retrieved, relevant_total)
    return RankingMetrics(
        top_k=top_k,
        map_at_k=float(ap_k.mean()),
        map_full=float(ap_full.mean()),
        precision_curve=hits_sum / (np.arange(1, top_k + 1) * n_q),
        radius=int(radius),
        precision_radius=float(precision_r.mean()),
        recall_radius=float(recall_r.mean()),
        average_precision=ap_k,
        num_queries=n_q,
        num_gallery=n_g,
        bits=index.bits,
    )


def _average_precision(rel: np.ndarray, hits: np.ndarray | None = None) -> np.ndarray:
    """AP per row of a relevance matrix (Q_b, k): sum_j P@j rel_j / sum_j rel_j, 0 if none."""
    if hits is None:
        hits = np.cumsum(rel, axis=1, dtype=np.int32)
    rows, cols = np.nonzero(rel)
    precision_at_hits = hits[rows, cols] / (cols + 1.0)
    total = np.bincount(rows, weights=precision_at_hits, minlength=rel.shape[0])
    return _safe_ratio(total, hits[:, -1])


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    out = np.zeros(np.shape(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=np.asarray(denominator) > 0)
    return out


def _prepare(
    query_codes: Any,
    query_labels: Any,
    gallery_codes: Any,
    gallery_labels: Any,
    top_k: Any,
    bits: int | None,
) -> tuple[HammingIndex, np.ndarray, Relevance]:
    """Checks the inputs; returns the gallery index, the query words and the relevance."""
    try:
        gallery_words = codes_to_words(gallery_codes, bits)
    except ValueError as err:
        raise InputError(f"gallery_codes: {err}") from err
    if bits is None:
        bits = int(np.shape(gallery_codes)[1])
    try:
        query_words = codes_to_words(query_codes, bits)
    except ValueError as err:
        raise InputError(f"query_codes: {err} (the gallery codes have {bits} bits)") from err
    if gallery_words.shape[0] == 0:
        raise InputError("the gallery is empty")
    if query_words.shape[0] == 0:
        raise InputError("there are no queries")
    top_k = check_int(top_k, "top_k")
    if top_k > gallery_words.shape[0]:
        raise InputError(
            f"top_k={top_k} is larger than the gallery ({gallery_words.shape[0]} items)"
        )
    relevance = Relevance(
        query_labels, gallery_labels, query_words.shape[0], gallery_words.shape[0]
    )
    index = HammingIndex(bits)
    index.add(gallery_words)
    return index, query_words, relevance


def chance_precision(
    query_labels: np.ndarray, gallery_labels: np.ndarray, chunk: int = 256
) -> float:
    """The MAP of a random ranking, in expectation: the mean over queries of the fraction
    of the gallery relevant to the query (same class; multi-hot: a shared label)."""
    q, g = len(query_labels), len(gallery_labels)
    if q == 0 or g == 0:
        raise InputError("chance_precision needs at least one query and one gallery item")
    relevance = Relevance(query_labels, gallery_labels, q, g)
    every = np.arange(g)
    total = 0.0
    for start in range(0, q, chunk):
        rows = slice(start, min(start + chunk, q))
        n = rows.stop - rows.start
        total += float(relevance(rows, np.broadcast_to(every, (n, g))).mean(axis=1).sum())
    return total / q
