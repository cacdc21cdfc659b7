"""Hamming top-k search: ours against faiss-cpu and the matrix-product approach, one run.

For each gallery size: uniform random codes of ``bits`` bits, ``queries`` random
queries, top ``k``. Methods:

- ``ours``: ``HammingIndex`` (default backend: numba when installed);
- ``ours-numpy``: ``HammingIndex(backend="numpy")``, the fallback without numba;
- ``faiss-default``: ``faiss.IndexBinaryFlat(bits)`` as created;
- ``faiss-64``: its fastest form here: codes zero-padded to 64 bits, ``use_heap=False``;
- ``matmul``: codes as +-1 floats, distances from one matrix product, then a stable
  ``argsort`` per query (most hashing repositories; theirs usually is not stable).

Every method's distances and indices are compared with ours (same items, same order,
ties by gallery order). Slow methods time fewer queries (the table says how many);
times are per query. ``floor`` is the compute floor: xor + popcount + add over every
(query, code) pair with all cores, from which ``fraction`` = floor / ours.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import Timing, ms, time_repeats
from rol_hashing.retrieval import HammingIndex
from rol_hashing.retrieval.codes import num_bytes

METHODS = ("ours", "ours-numpy", "faiss-default", "faiss-64", "matmul")


def random_packed(n: int, bits: int, seed: int) -> np.ndarray:
    """Uniform random packed codes uint8 (n, ceil(bits/8)), padding bits zero."""
    rng = np.random.default_rng(seed)
    packed = rng.integers(0, 256, size=(n, num_bytes(bits)), dtype=np.uint8)
    pad = 8 * num_bytes(bits) - bits
    packed[:, -1] &= np.uint8((0xFF << pad) & 0xFF)
    return packed


def queries_for(method: str, n: int, queries: int) -> int:
    """How many queries each method times (slow ones fewer, to keep the run short)."""
    if method in ("ours", "faiss-64"):
        share = 1.0 if method == "ours" or n <= 2_000_000 else 0.2
    elif method == "matmul":
        share = 0.2 if n <= 100_000 else (0.02 if n <= 2_000_000 else 0.004)
    else:
        share = 1.0 if n <= 100_000 else (0.2 if n <= 2_000_000 else 0.04)
    return max(1, min(queries, round(queries * share)))


def _faiss(bits: int, gallery: np.ndarray, padded: bool) -> Callable[[np.ndarray, int], Any]:
    import faiss

    faiss.omp_set_num_threads(len(os.sched_getaffinity(0)))
    if padded:
        width = 8 * ((bits + 63) // 64)
        index = faiss.IndexBinaryFlat(8 * width)
        index.use_heap = False
        index.add(_pad(gallery, width))
        return lambda q, k: index.search(_pad(q, width), k)
    index = faiss.IndexBinaryFlat(8 * gallery.shape[1])
    index.add(gallery)
    return lambda q, k: index.search(q, k)


def _pad(packed: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((packed.shape[0], width), dtype=np.uint8)
    out[:, : packed.shape[1]] = packed
    return out


def _matmul(bits: int, gallery: np.ndarray) -> Callable[[np.ndarray, int], Any]:
    signs = np.unpackbits(gallery, axis=1, count=bits).astype(np.float32) * 2 - 1

    def search(q: np.ndarray, k: int, batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
        qs = np.unpackbits(q, axis=1, count=bits).astype(np.float32) * 2 - 1
        dist, idx = [], []
        for start in range(0, len(qs), batch):
            d = (bits - qs[start : start + batch] @ signs.T) / 2  # (Q_b, N)
            order = np.argsort(d, axis=1, kind="stable")[:, :k]
            dist.append(np.take_along_axis(d, order, axis=1).astype(np.int32))
            idx.append(order)
        return np.concatenate(dist), np.concatenate(idx)

    return search


def popcount_floor(bits: int, n: int, queries: int, repeats: int) -> Timing:
    """Seconds per query to xor + popcount + add every (query, code) pair (all cores)."""
    from benchmarks._floor import popcount_pairs

    rng = np.random.default_rng(1)
    words = (bits + 63) // 64
    g_t = rng.integers(0, 2**63, size=(words, n), dtype=np.uint64)
    q = rng.integers(0, 2**63, size=(queries, words), dtype=np.uint64)
    popcount_pairs(q[:2], g_t[:, :4096])  # compile
    timing, _ = time_repeats(lambda: popcount_pairs(q, g_t), repeats, per=queries)
    return timing


def run(
    sizes: tuple[int, ...],
    bits: int = 48,
    queries: int = 1000,
    k: int = 1000,
    repeats: int = 3,
    methods: tuple[str, ...] = METHODS,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """One row per (size, method): ms per query (min, median), queries timed, equality."""
    rows = []
    for n in sizes:
        gallery = random_packed(n, bits, seed=n)
        q_all = random_packed(queries, bits, seed=n + 1)
        floor = popcount_floor(bits, n, min(queries, 200), repeats)
        log(f"N={n}: popcount floor {ms(floor.min)} ms/query")
        reference = None
        for method in methods:
            try:
                if method in ("ours", "ours-numpy"):
                    index = HammingIndex(bits, backend="auto" if method == "ours" else "numpy")
                    index.add(gallery)
                    search = index.search
                elif method == "faiss-default":
                    search = _faiss(bits, gallery, padded=False)
                elif method == "faiss-64":
                    search = _faiss(bits, gallery, padded=True)
                else:
                    search = _matmul(bits, gallery)
            except ImportError as err:
                log(f"N={n} {method}: skipped ({err})")
                continue
            nq = queries_for(method, n, queries)
            q = q_all[:nq]
            search(q[:1], k)  # warm up (compilation, threads)
            timing, (dist, idx) = time_repeats(lambda q=q, s=search: s(q, k), repeats, per=nq)
            if method == "ours":
                reference = (np.asarray(dist), np.asarray(idx))
                same = "reference"
            elif reference is None:
                same = "?"
            else:
                ok_d = np.array_equal(np.asarray(dist, np.int64), reference[0][:nq])
                ok_i = np.array_equal(np.asarray(idx, np.int64), reference[1][:nq])
                same = "yes" if ok_d and ok_i else ("distances only" if ok_d else "NO")
            row = {
                "gallery": n,
                "method": method,
                "queries": nq,
                "repeats": repeats,
                "min_ms": timing.min * 1e3,
                "median_ms": timing.median * 1e3,
                "same": same,
                "floor_ms": floor.min * 1e3,
            }
            rows.append(row)
            log(
                f"N={n} {method}: {ms(timing.min)} ms/query (median {ms(timing.median)}), "
                f"{nq} queries, same as ours: {same}"
            )
            del search
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per size, each method's ms/query, its ratio to ours, equality."""
    lines = [
        "| gallery | method | ms/query min | ms/query median | ours faster by | queries "
        "| same result as ours |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for n in sorted({r["gallery"] for r in rows}):
        group = [r for r in rows if r["gallery"] == n]
        ours = next((r for r in group if r["method"] == "ours"), None)
        for r in group:
            ratio = f"{r['min_ms'] / ours['min_ms']:.1f}x" if ours and r is not ours else ""
            lines.append(
                f"| {n:,} | {r['method']} | {r['min_ms']:.3g} | {r['median_ms']:.3g} | {ratio} "
                f"| {r['queries']} | {r['same']} |"
            )
        if group:
            floor = group[0]["floor_ms"]
            frac = f" = {floor / ours['min_ms']:.0%} of ours" if ours else ""
            lines.append(f"| {n:,} | popcount floor | {floor:.3g} | | | | compute floor{frac} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[59_000, 1_000_000])
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    args = parser.parse_args()
    rows = run(
        tuple(args.sizes), args.bits, args.queries, args.k, args.repeats, tuple(args.methods)
    )
    print(table(rows))


if __name__ == "__main__":
    main()
