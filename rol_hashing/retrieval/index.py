"""An exact Hamming index: brute-force popcount scan with stable top-k selection.

``HammingIndex`` holds N codes as uint64 words (N, ceil(bits/64)) in the layout of
``rol_hashing.retrieval.codes`` (most significant bit first), i.e. one 64-bit word per
64 bits of code and nothing else. ``search`` returns, per query, the k nearest items
ordered by (Hamming distance, insertion index): ties keep insertion order, exactly
as a stable sort of the distances would (SSDH's MATLAB ``sort``).

Backends (all give identical results; ``"auto"``, the default, is numba when installed):

- ``"numba"``: a fused scan (``rol_hashing.retrieval._scan``), parallel over queries.
  Each query keeps the exact top k of the items seen so far; its threshold d*
  (the k-th distance so far) only shrinks, so after a short start almost every item
  costs one vectorised xor + popcount + comparison, and the few closer items go to a
  small buffer. The start threshold comes from 8192 evenly spaced gallery items (a
  query whose estimate turns out too small is scanned again without it). The top k
  are then ordered by distance with a counting sort, ties in gallery order.
- ``"numpy"``: per batch of queries (sized so that the batch's distance matrix and
  results stay within ``max_batch_bytes``): distances ``bitwise_count(q ^ g)`` summed
  over words, in gallery chunks; per query d*, the smallest distance with
  #(dist <= d*) >= k, found by bisection over 0..bits with counting passes; the items
  with d < d* and the first ``k - #(d < d*)`` items with d == d*, in gallery order,
  ordered by distance with a stable counting sort.
- ``"faiss"`` keeps the codes in a ``faiss.IndexBinaryFlat`` (faiss-cpu is an optional
  extra): faiss's k-th distance gives d*, and a range search up to d* supplies the tied
  items, which are then taken in insertion order.

No per-query O(N log N) sort is done. Asking for more results than items is a
ValueError (k == N is allowed).

Index files are ``.npz`` (read with ``allow_pickle=False``) holding the format name,
``format_version``, ``bits`` and the codes packed as in ``np.packbits``
(``codes``: uint8 (N, ceil(bits/8))); they are written atomically.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from rol_hashing.errors import InputError, check_int
from rol_hashing.io import atomic_savez
from rol_hashing.retrieval.codes import (
    PathLike,
    check_bits,
    codes_to_words,
    num_bytes,
    num_words,
    read_npz,
    words_to_packed,
)

INDEX_FORMAT = "rol_hashing.hamming_index"
INDEX_FORMAT_VERSION = 1
BACKENDS = ("auto", "numba", "numpy", "faiss")

# Elements of the uint64 XOR scratch buffer (8 bytes each): small enough to stay in cache.
_XOR_CHUNK_ELEMENTS = 1 << 18


def numba_available() -> bool:
    """Whether the numba kernel (``backend="numba"``) can be used here."""
    try:
        import numba  # noqa: F401  (lazy: only asks whether the optional kernel can load)
    except ImportError:
        return False
    return True


def resolve_backend(backend: str) -> str:
    """``"auto"`` -> ``"numba"`` when numba imports, else ``"numpy"``; others unchanged."""
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "numba" if numba_available() else "numpy"
    if backend == "numba" and not numba_available():
        raise ImportError('HammingIndex(backend="numba") needs numba: pip install numba')
    return backend


def distance_dtype(bits: int) -> np.dtype:
    """Smallest unsigned dtype that holds distances 0..bits."""
    if bits <= np.iinfo(np.uint8).max:
        return np.dtype(np.uint8)
    if bits <= np.iinfo(np.uint16).max:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


def hamming_distances(query_words: np.ndarray, gallery_words: np.ndarray, bits: int) -> np.ndarray:
    """All distances between uint64 words (Q, W) and (N, W) -> (Q, N) smallest unsigned dtype.

    Works in gallery chunks so that the uint64 scratch stays small.
    """
    q = np.asarray(query_words, dtype=np.uint64)
    g = np.asarray(gallery_words, dtype=np.uint64)
    n_q, n_w = q.shape
    n_g = g.shape[0]
    out = np.empty((n_q, n_g), dtype=distance_dtype(bits))
    if n_q == 0 or n_g == 0:
        return out
    chunk = max(1, min(n_g, _XOR_CHUNK_ELEMENTS // n_q))
    xor = np.empty((n_q, chunk), dtype=np.uint64)
    count = np.empty((n_q, chunk), dtype=np.uint8) if n_w > 1 else None
    columns = [np.ascontiguousarray(g[:, w]) for w in range(n_w)] if n_w > 1 else [g[:, 0]]
    for start in range(0, n_g, chunk):
        stop = min(n_g, start + chunk)
        x = xor[:, : stop - start]
        o = out[:, start:stop]
        for w, column in enumerate(columns):
            np.bitwise_xor(q[:, w, None], column[None, start:stop], out=x)
            if w == 0:
                np.bitwise_count(x, out=o)
            else:
                c = np.bitwise_count(x, out=count[:, : stop - start])
                np.add(o, c, out=o)
    return out


def stable_top_k(distances: np.ndarray, k: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of one row of distances (N,), ties in index order.

    Returns (distances (k,), indices (k,)) ordered by (distance, index).
    """
    n = distances.shape[0]
    if k >= n:
        order = np.argsort(distances, kind="stable")  # radix (counting) sort for small ints
        return distances[order], order
    # d* = the smallest d with #(dist <= d) >= k, by bisection over 0..bits (counting passes)
    low, high = 0, bits
    while low < high:
        mid = (low + high) // 2
        if np.count_nonzero(distances <= mid) >= k:
            high = mid
        else:
            low = mid + 1
    candidates = np.flatnonzero(distances <= low)  # all items with d <= d*, gallery order
    cand_dist = distances[candidates]
    if candidates.size > k:  # keep d < d* and the first k - #(d < d*) items with d == d*
        tied = cand_dist == low
        n_less = candidates.size - np.count_nonzero(tied)
        keep = ~tied | (np.cumsum(tied) <= k - n_less)
        candidates, cand_dist = candidates[keep], cand_dist[keep]
    order = np.argsort(cand_dist, kind="stable")  # counting sort by distance
    return cand_dist[order], candidates[order]


# numba's default threading layer (workqueue) must not run two parallel kernels at once.
_NUMBA_LOCK = threading.Lock()

# Gallery items sampled (evenly spaced) to estimate each query's k-th distance.
_PRIOR_SAMPLE = 8192

WordChunks = Callable[[], Iterator[tuple[int, np.ndarray]]]


def numba_top_k(
    q_words: np.ndarray,
    chunks: WordChunks,
    sample: np.ndarray | None,
    n_total: int,
    k: int,
    bits: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact stable top-k with the numba kernel (``rol_hashing.retrieval._scan``).

    Args:
        q_words: uint64 (Q, W) queries.
        chunks: returns a fresh iterator of (offset, gallery words transposed (W, n_c)
            C-contiguous), the chunks in gallery order covering all ``n_total`` items.
        sample: evenly spaced gallery words transposed (W, S) to bound each query's k-th
            distance beforehand, or None to scan without a bound.
        n_total: gallery size; k: results per query (<= n_total); bits: code length.

    Returns:
        distances int32 (Q, k) and indices int64 (Q, k), ordered by (distance, index).
    """
    # lazy: numba and its kernels take ~1 s to load; only the numba backend needs them
    import numba

    from rol_hashing.retrieval import _scan

    q_words = np.ascontiguousarray(q_words, dtype=np.uint64)
    n_q = q_words.shape[0]
    groups = max(1, min(n_q, numba.get_num_threads()))
    distances = np.empty((n_q, k), dtype=np.int32)
    indices = np.empty((n_q, k), dtype=np.int64)

    def run(rows: np.ndarray, prior: np.ndarray) -> None:
        q = q_words[rows]
        state = _scan.new_state(q.shape[0], k, bits, min(n_total, 2 * k))
        with _NUMBA_LOCK:
            for offset, g_t in chunks():
                _scan.scan(q, g_t, offset, k, groups, prior, *state)
        bound, n_le, _, cand_idx, cand_dist, n_cand = state
        dist = np.empty((q.shape[0], k), dtype=np.int32)
        idx = np.empty((q.shape[0], k), dtype=np.int64)
        _scan.finish(k, bound, cand_idx, cand_dist, n_cand, dist, idx)
        distances[rows], indices[rows] = dist, idx
        # a prior below the k-th distance (rare: it is an estimate) -> scan again without it
        missed = n_le < k
        if missed.any():
            run(rows[missed], np.full(int(missed.sum()), bits, dtype=np.int64))

    prior = np.full(n_q, bits, dtype=np.int64)
    if sample is not None and n_q:
        with _NUMBA_LOCK:
            _scan.prior_bound(q_words, sample, k, n_total, groups, prior)
    run(np.arange(n_q), prior)
    return distances, indices


def _sample_rows(n_total: int, k: int) -> np.ndarray | None:
    """Evenly spaced gallery rows for ``numba_top_k``'s prior, or None for small galleries."""
    if n_total < max(4 * _PRIOR_SAMPLE, 32 * k):
        return None
    return np.linspace(0, n_total - 1, _PRIOR_SAMPLE).astype(np.int64)


class HammingIndex:
    """Exact Hamming-distance k-NN over binary codes, ties broken by insertion order.

    Args:
        bits: code length.
        backend: ``"auto"`` (default: ``"numba"`` when numba is installed, else
            ``"numpy"``), ``"numba"``, ``"numpy"`` or ``"faiss"`` (needs ``pip install
            faiss-cpu``); all give identical results.
        max_batch_bytes: memory bound for one batch of queries (its (Q_b, N) distance
            matrix plus its (Q_b, k) results).

    Example:
        >>> index = HammingIndex(48)
        >>> index.add(gallery_codes)            # bool (N, 48) or packed uint8 (N, 6)
        >>> dist, idx = index.search(query_codes, k=1000)   # (Q, 1000) each
    """

    def __init__(self, bits: int, backend: str = "auto", max_batch_bytes: int = 32 << 20):
        self.bits = check_bits(bits)
        backend = resolve_backend(backend)
        if max_batch_bytes < 1:
            raise InputError(f"max_batch_bytes must be positive, got {max_batch_bytes}")
        self.backend = backend
        self.max_batch_bytes = int(max_batch_bytes)
        self._words = np.empty((0, num_words(self.bits)), dtype=np.uint64, order="F")
        self._faiss = _new_faiss_index(self.bits) if backend == "faiss" else None

    def __repr__(self) -> str:
        return f"HammingIndex(bits={self.bits}, ntotal={self.ntotal}, backend={self.backend!r})"

    def __len__(self) -> int:
        return self.ntotal

    @property
    def ntotal(self) -> int:
        """Number of codes added."""
        if self._faiss is not None:
            return int(self._faiss.ntotal)
        return int(self._words.shape[0])

    @property
    def words(self) -> np.ndarray:
        """The stored codes as uint64 words (N, ceil(bits/64)), read-only."""
        if self._faiss is not None:
            raw = self._faiss.reconstruct_n(0, self.ntotal).reshape(self.ntotal, -1)
            return codes_to_words(np.ascontiguousarray(raw[:, : num_bytes(self.bits)]), self.bits)
        view = self._words.view()
        view.flags.writeable = False
        return view

    def add(self, codes: np.ndarray) -> None:
        """Appends codes: bool (N, bits), packed uint8 (N, ceil(bits/8)) or uint64 words."""
        words = self._as_words(codes, "codes")
        if words.shape[0] == 0:
            return
        if self._faiss is not None:
            self._faiss.add(_faiss_bytes(words, self.bits))
        else:
            self._words = np.asfortranarray(np.concatenate([self._words, words]))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest codes of each query.

        Args:
            queries: bool (Q, bits), packed uint8 (Q, ceil(bits/8)) or uint64 words.
            k: results per query, 1 <= k <= ntotal.

        Returns:
            distances int32 (Q, k) and indices int64 (Q, k) (insertion order of ``add``),
            sorted by (distance, index).
        """
        q_words = self._as_words(queries, "queries")
        k = self._check_k(k)
        distances = np.empty((q_words.shape[0], k), dtype=np.int32)
        indices = np.empty((q_words.shape[0], k), dtype=np.int64)
        for start, dist, idx in self._iter_search(q_words, k):
            distances[start : start + dist.shape[0]] = dist
            indices[start : start + idx.shape[0]] = idx
        return distances, indices

    def iter_search(
        self, queries: np.ndarray, k: int
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """``search`` one batch of queries at a time, to bound memory when k is large.

        Yields:
            (start, distances int32 (Q_b, k), indices int64 (Q_b, k)) where ``start`` is
            the position of the batch's first query in ``queries``.
        """
        q_words = self._as_words(queries, "queries")
        k = self._check_k(k)
        return self._iter_search(q_words, k)

    def batch_size(self, k: int) -> int:
        """Queries per batch for k results: their scratch (numpy: (Q_b, N) distances;
        numba: candidate buffers of 2k) and their (Q_b, k) results fit."""
        if self.backend == "numba":
            per_query = min(self.ntotal, 2 * k) * 12 + (self.bits + 1) * 8 + k * 12
        else:
            per_query = self.ntotal * distance_dtype(self.bits).itemsize + k * 12
        return max(1, self.max_batch_bytes // max(1, per_query))

    def save(self, path: PathLike) -> None:
        """Writes the index to ``path`` (npz: format, version, bits, packed codes), atomically."""
        atomic_savez(
            path,
            format=np.array(INDEX_FORMAT),
            format_version=np.array(INDEX_FORMAT_VERSION),
            bits=np.array(self.bits),
            codes=words_to_packed(self.words, self.bits),
        )

    @classmethod
    def load(
        cls,
        path: PathLike,
        bits: int | None = None,
        backend: str = "auto",
        max_batch_bytes: int = 32 << 20,
    ) -> HammingIndex:
        """Reads an index written by ``save``.

        Raises ValueError if the file has another format or version, or if ``bits`` is
        given and differs from the stored code length.
        """
        data = read_npz(path, INDEX_FORMAT, INDEX_FORMAT_VERSION, ("bits", "codes"))
        stored_bits = int(data["bits"])
        if bits is not None and check_bits(bits) != stored_bits:
            raise InputError(
                f"{os.fspath(path)}: expected an index of {bits}-bit codes, "
                f"file holds {stored_bits}-bit codes"
            )
        index = cls(stored_bits, backend=backend, max_batch_bytes=max_batch_bytes)
        index.add(codes_to_words(data["codes"], stored_bits))
        return index

    # -- internals ---------------------------------------------------------------------

    def _as_words(self, codes: Any, what: str) -> np.ndarray:
        try:
            return codes_to_words(codes, self.bits)
        except ValueError as err:
            raise InputError(f"{what}: {err} (index of {self.bits}-bit codes)") from err

    def _check_k(self, k: Any) -> int:
        k = check_int(k, "k")
        if self.ntotal == 0:
            raise InputError("the index is empty: add codes before searching")
        if k > self.ntotal:
            raise InputError(f"k={k} is larger than the number of indexed codes ({self.ntotal})")
        return int(k)

    def _iter_search(
        self, q_words: np.ndarray, k: int
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        step = self.batch_size(k)
        search_batch = {
            "faiss": self._faiss_batch,
            "numba": self._numba_batch,
            "numpy": self._numpy_batch,
        }[self.backend]
        for start in range(0, q_words.shape[0], step):
            dist, idx = search_batch(q_words[start : start + step], k)
            yield start, dist, idx

    def _numba_batch(self, q_words: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        g_t = self._words.T  # (W, N), C-contiguous: the words are stored column-major
        rows = _sample_rows(self.ntotal, k)
        sample = None if rows is None else np.ascontiguousarray(g_t[:, rows])
        return numba_top_k(q_words, lambda: iter([(0, g_t)]), sample, self.ntotal, k, self.bits)

    def _numpy_batch(self, q_words: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        all_dist = hamming_distances(q_words, self._words, self.bits)
        distances = np.empty((q_words.shape[0], k), dtype=np.int32)
        indices = np.empty((q_words.shape[0], k), dtype=np.int64)
        for row in range(q_words.shape[0]):
            distances[row], indices[row] = stable_top_k(all_dist[row], k, self.bits)
        return distances, indices

    def _faiss_batch(self, q_words: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = _faiss_bytes(q_words, self.bits)
        knn_dist, _ = self._faiss.search(queries, k)
        kth = knn_dist[:, -1]
        distances = np.empty((queries.shape[0], k), dtype=np.int32)
        indices = np.empty((queries.shape[0], k), dtype=np.int64)
        # Every item closer than the k-th distance is among faiss's k results; the tied
        # ones may not be, so fetch all items with distance <= kth (range search is
        # strict: dis < radius) and keep the first k by (distance, index).
        for value in np.unique(kth):
            rows = np.flatnonzero(kth == value)
            lims, dist, idx = self._faiss.range_search(queries[rows], int(value) + 1)
            lims = lims.astype(np.int64)  # faiss gives size_t offsets
            owner = np.repeat(np.arange(rows.size), np.diff(lims))
            order = np.lexsort((idx, dist, owner))
            take = lims[:-1, None] + np.arange(k)[None, :]
            distances[rows] = dist[order][take]
            indices[rows] = idx[order][take]
        return distances, indices


def _faiss_bytes(words: np.ndarray, bits: int) -> np.ndarray:
    """Words -> packed uint8; packed codes are whole bytes, as faiss's d % 8 == 0 wants."""
    return np.ascontiguousarray(words_to_packed(words, bits))


def _new_faiss_index(bits: int) -> Any:
    try:
        import faiss  # lazy: an optional extra (pip install faiss-cpu)
    except ImportError as err:
        raise ImportError(
            'HammingIndex(backend="faiss") needs faiss: pip install faiss-cpu'
        ) from err
    return faiss.IndexBinaryFlat(8 * num_bytes(bits))
