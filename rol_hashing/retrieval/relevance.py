"""Relevance between a query and gallery items from their labels.

Two kinds of labels, the same for queries and gallery:

- class ids, integer (N,): relevant when the classes are equal;
- multi-hot (N, C) of 0/1 (bool, integer or float): relevant when at least one label
  is shared. A query without any label has no relevant item.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rol_hashing.errors import InputError
from rol_hashing.retrieval.codes import codes_to_words


class Relevance:
    """Checked query/gallery labels, answering "is gallery item j relevant to query i".

    Args:
        query_labels: (Q,) integer classes or (Q, C) multi-hot.
        gallery_labels: (N,) or (N, C), the same kind (and C) as the queries.
        num_queries, num_gallery: the expected row counts (from the codes).
    """

    def __init__(self, query_labels: Any, gallery_labels: Any, num_queries: int, num_gallery: int):
        q = _check_labels(query_labels, "query_labels", num_queries)
        g = _check_labels(gallery_labels, "gallery_labels", num_gallery)
        if q.ndim != g.ndim:
            kinds = {1: "class ids (N,)", 2: "multi-hot (N, C)"}
            raise InputError(
                f"query_labels are {kinds[q.ndim]} but gallery_labels are {kinds[g.ndim]}; "
                "both must be of the same kind"
            )
        self.multilabel = q.ndim == 2
        if self.multilabel:
            if q.shape[1] != g.shape[1]:
                raise InputError(
                    f"query_labels have {q.shape[1]} classes, gallery_labels {g.shape[1]}"
                )
            classes = q.shape[1]
            # One bit per class: relevance is a nonzero AND of the packed label words.
            self._query = codes_to_words(q.astype(bool), classes)
            self._gallery = codes_to_words(g.astype(bool), classes)
        else:
            # Dense class ids 0..U-1 (int32) for cheap gathers and comparisons.
            _, inverse = np.unique(np.concatenate([q, g]), return_inverse=True)
            inverse = inverse.astype(np.int32)
            self._query, self._gallery = inverse[: q.shape[0]], inverse[q.shape[0] :]

    def __call__(self, query_rows: slice | np.ndarray, gallery_indices: np.ndarray) -> np.ndarray:
        """Relevance bool (Q_b, k) of gallery items ``gallery_indices`` (Q_b, k) to the
        queries ``query_rows`` (a slice or Q_b indices)."""
        q = self._query[query_rows]
        g = self._gallery[gallery_indices]
        if not self.multilabel:
            return g == q[:, None]
        if q.shape[1] == 1:
            return (g[..., 0] & q[:, None, 0]) != 0
        return np.any((g & q[:, None, :]) != 0, axis=-1)


def _check_labels(labels: Any, name: str, rows: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim not in (1, 2):
        raise InputError(
            f"{name} must be class ids (N,) or multi-hot (N, C), got shape {arr.shape}"
        )
    if arr.shape[0] != rows:
        raise InputError(f"{name} has {arr.shape[0]} rows, expected {rows} (one per code)")
    if arr.ndim == 1:
        if not np.issubdtype(arr.dtype, np.integer):
            raise InputError(f"{name}: class ids (N,) must be integers, got dtype {arr.dtype}")
        return arr.astype(np.int64, copy=False)
    if arr.shape[1] < 1:
        raise InputError(f"{name}: multi-hot labels need at least one class, got {arr.shape}")
    if arr.dtype != np.bool_:
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise InputError(f"{name}: multi-hot labels must be 0/1, got dtype {arr.dtype}")
        if not np.all((arr == 0) | (arr == 1)):
            raise InputError(
                f"{name}: multi-hot labels (N, C) must hold only 0 and 1"
                + ("; for class ids pass a 1-D array" if arr.shape[1] == 1 else "")
            )
    return arr
