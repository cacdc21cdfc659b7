"""Exact Hamming search over a gallery larger than memory: a memory-mapped packed file.

The file is a plain ``.npy`` of packed codes, uint8 (N, ceil(bits/8)) (``np.packbits``
order, as ``rol_hashing.retrieval.codes``), i.e. ceil(bits/8) bytes per code. Write it
with ``save_packed`` (or fill ``np.lib.format.open_memmap(path, "w+", np.uint8, (N, B))``
piece by piece for a gallery that never fits in memory). ``MappedHammingIndex`` reads
it with ``np.load(mmap_mode="r")`` and scans it in chunks of ``chunk_items`` codes, so
memory holds one chunk's words at a time; results are exactly ``HammingIndex``'s (ties
by gallery order):

- numba backend: the scan state of each query carries over from chunk to chunk;
- numpy backend: each chunk's stable top k, merged by (distance, index).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from rol_hashing.errors import InputError, check_int, one_line
from rol_hashing.io import atomic_open
from rol_hashing.retrieval.codes import (
    PathLike,
    check_bits,
    codes_to_words,
    num_bytes,
    words_to_packed,
)
from rol_hashing.retrieval.index import HammingIndex, _sample_rows, numba_top_k, resolve_backend


def save_packed(path: PathLike, codes: np.ndarray, bits: int | None = None) -> None:
    """Writes codes (bool (N, bits), packed uint8 or uint64 words) as a packed ``.npy``.

    The file appears atomically (a temporary file in the same folder, then ``os.replace``).
    """
    words = codes_to_words(codes, bits)
    bits = int(np.asarray(codes).shape[1]) if bits is None else check_bits(bits)
    packed = words_to_packed(words, bits)
    with atomic_open(path, "wb", make_parents=False) as f:
        np.lib.format.write_array(f, packed, allow_pickle=False)


class MappedHammingIndex:
    """``HammingIndex.search`` over a memory-mapped packed ``.npy`` file, chunk by chunk.

    Args:
        path: the packed codes file, uint8 (N, ceil(bits/8)).
        bits: code length (the file holds bytes only).
        chunk_items: codes read and converted per chunk (memory: 8 * ceil(bits/64) bytes
            per code of a chunk).
        backend: ``"auto"``, ``"numba"`` or ``"numpy"``.
        max_batch_bytes: memory bound for one batch of queries' scratch and results.

    Example:
        >>> save_packed("gallery.npy", gallery_codes)          # bool (N, 48)
        >>> index = MappedHammingIndex("gallery.npy", bits=48)
        >>> dist, idx = index.search(query_codes, k=1000)      # (Q, 1000) each
    """

    def __init__(
        self,
        path: PathLike,
        bits: int,
        chunk_items: int = 1 << 22,
        backend: str = "auto",
        max_batch_bytes: int = 32 << 20,
    ):
        self.bits = check_bits(bits)
        self.backend = resolve_backend(backend)
        if self.backend == "faiss":
            raise InputError("MappedHammingIndex supports the numba and numpy backends")
        if chunk_items < 1:
            raise InputError(f"chunk_items must be positive, got {chunk_items}")
        self.path = os.fspath(path)
        self.chunk_items = int(chunk_items)
        self.max_batch_bytes = int(max_batch_bytes)
        try:  # a header declaring more than the file holds, or no .npy at all
            codes = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise
        except (ValueError, OSError, EOFError) as err:
            raise InputError(
                f"{self.path}: not a readable packed codes .npy file ({one_line(err)})"
            ) from None
        if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != num_bytes(self.bits):
            raise InputError(
                f"{self.path}: expected packed uint8 codes (N, {num_bytes(self.bits)}) of "
                f"{self.bits}-bit codes, found {codes.dtype} {codes.shape}"
            )
        self._codes = codes

    def __repr__(self) -> str:
        return (
            f"MappedHammingIndex({self.path!r}, bits={self.bits}, ntotal={self.ntotal}, "
            f"backend={self.backend!r})"
        )

    def __len__(self) -> int:
        return self.ntotal

    @property
    def ntotal(self) -> int:
        """Number of codes in the file."""
        return int(self._codes.shape[0])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """As ``HammingIndex.search``: int32 distances and int64 indices (Q, k)."""
        helper = HammingIndex(self.bits, backend=self.backend)
        q_words = helper._as_words(queries, "queries")
        if self.ntotal == 0:
            raise InputError("the index is empty: the file holds no codes")
        k = check_int(k, "k")
        if k > self.ntotal:
            raise InputError(f"k={k} is larger than the number of indexed codes ({self.ntotal})")
        k = int(k)
        n_q = q_words.shape[0]
        distances = np.empty((n_q, k), dtype=np.int32)
        indices = np.empty((n_q, k), dtype=np.int64)
        step = self._batch_size(k)
        for start in range(0, n_q, step):
            rows = slice(start, start + step)
            if self.backend == "numba":
                distances[rows], indices[rows] = self._numba_batch(q_words[rows], k)
            else:
                distances[rows], indices[rows] = self._numpy_batch(q_words[rows], k)
        return distances, indices

    # -- internals ---------------------------------------------------------------------

    def _batch_size(self, k: int) -> int:
        if self.backend == "numba":
            per_query = min(self.ntotal, 2 * k) * 12 + (self.bits + 1) * 8 + k * 12
        else:  # one chunk's distances, and the running and per-chunk top k
            per_query = min(self.ntotal, self.chunk_items) * 4 + k * 36
        return max(1, self.max_batch_bytes // per_query)

    def _chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(offset, words (n_c, W)) for each chunk, in gallery order."""
        for start in range(0, self.ntotal, self.chunk_items):
            packed = np.asarray(self._codes[start : start + self.chunk_items])
            yield start, codes_to_words(packed, self.bits)

    def _numba_batch(self, q_words: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = self.ntotal
        sample = None
        rows = _sample_rows(n, k)
        if rows is not None:
            sample = np.ascontiguousarray(codes_to_words(self._codes[rows], self.bits).T)

        def chunks() -> Iterator[tuple[int, np.ndarray]]:
            for start, words in self._chunks():
                yield start, np.ascontiguousarray(words.T)

        return numba_top_k(q_words, chunks, sample, n, k, self.bits)

    def _numpy_batch(self, q_words: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        best_d = np.empty((q_words.shape[0], 0), dtype=np.int32)
        best_i = np.empty((q_words.shape[0], 0), dtype=np.int64)
        for start, words in self._chunks():
            chunk = HammingIndex(self.bits, backend="numpy", max_batch_bytes=self.max_batch_bytes)
            chunk.add(words)
            d, i = chunk.search(q_words, min(k, chunk.ntotal))
            best_d, best_i = merge_top_k(best_d, best_i, d, i + start, k)
        return best_d, best_i


def merge_top_k(
    dist_a: np.ndarray, idx_a: np.ndarray, dist_b: np.ndarray, idx_b: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first k of two (Q, k_a) and (Q, k_b) result sets by (distance, index)."""
    dist = np.concatenate([dist_a, dist_b], axis=1)
    idx = np.concatenate([idx_a, idx_b], axis=1)
    order = np.lexsort((idx, dist), axis=1)[:, :k]
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)
