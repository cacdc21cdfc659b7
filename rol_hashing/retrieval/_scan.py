"""The numba kernel behind ``HammingIndex``: a fused popcount scan with a shrinking threshold.

Per query, the scan keeps the exact answer so far in a small state: ``bound``, the
smallest distance d with #(seen items with distance <= d) >= k (``bits`` until k items
were seen), a histogram of accepted distances, and a buffer of accepted (index, distance)
pairs in gallery order. An item is accepted only when its distance is below ``bound``
(or fewer than k items were seen), so after the first few thousand items almost every
item costs one xor, one popcount and one comparison; these run vectorised over blocks
of items, and only blocks whose minimum distance is below ``bound`` are looked at item
by item. The bound never grows, so every item of the final top k is accepted; an
item with d == bound arriving after k items with d <= bound can never be in the top k
(ties go by gallery order), which keeps the buffer at most 2k long between compactions.

``finish`` takes, per query, the items with d < d* and the first k - #(d < d*) items
with d == d* in gallery order, and orders them by distance with a counting sort: the
same results as a stable sort of all distances. The state survives between ``scan``
calls, so a gallery can be scanned chunk by chunk (``offset`` = index of the chunk's
first item) with exactly the same results.

Gallery words come transposed, (W, N) C-contiguous (so each word of all items is one
contiguous row); queries are (Q, W) uint64.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

# Items scanned per query before moving to the next query of the group: their words
# stay in L1/L2 while all queries of the group pass over them.
CHUNK = 4096
# Items whose minimum distance is checked at once against the bound.
BLOCK = 64


@intrinsic
def _popcount(typingctx, x):
    """LLVM's ctpop on an unsigned 64-bit integer (vpopcntq where the CPU has it)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return x(x), codegen


@intrinsic
def _trailing_zeros(typingctx, x):
    """LLVM's cttz: the index of the lowest set bit (x != 0)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return x(x), codegen


def new_state(n_queries: int, k: int, bits: int, capacity: int) -> tuple[np.ndarray, ...]:
    """Fresh per-query scan state: bound, n_le (Q,); hist (Q, bits+1); buffers (Q, capacity)."""
    return (
        np.full(n_queries, bits, dtype=np.int64),
        np.zeros(n_queries, dtype=np.int64),
        np.zeros((n_queries, bits + 1), dtype=np.int64),
        np.empty((n_queries, capacity), dtype=np.int64),
        np.empty((n_queries, capacity), dtype=np.int32),
        np.zeros(n_queries, dtype=np.int64),
    )


@njit(cache=True, nogil=True)
def _compact(row_idx, row_dist, n, bound, n_less, k):
    """Keeps d < bound and the first k - n_less items with d == bound; returns the new length."""
    ties = k - n_less
    out = 0
    for i in range(n):
        d = row_dist[i]
        if d < bound or (d == bound and ties > 0):
            if d == bound:
                ties -= 1
            row_idx[out] = row_idx[i]
            row_dist[out] = d
            out += 1
    return out


@njit(cache=True, nogil=True)
def _block_distances(q, qi, g_t, b0, b1, acc):
    """acc[:b1-b0] = distances of items b0..b1-1 to query qi (vectorised); returns their min."""
    n_w = g_t.shape[0]
    L = b1 - b0
    qw = q[qi, 0]
    gb = g_t[0, b0:b1]
    for j in range(L):
        acc[j] = _popcount(gb[j] ^ qw)
    for w in range(1, n_w):
        qw = q[qi, w]
        gb = g_t[w, b0:b1]
        for j in range(L):
            acc[j] += _popcount(gb[j] ^ qw)
    m = np.uint64(0xFFFFFFFF)
    for j in range(L):
        m = min(m, acc[j])
    return m


@njit(parallel=True, cache=True, nogil=True)
def prior_bound(q, g_t, k, n_total, n_groups, out):
    """out[i] = a likely upper bound of query i's k-th distance, from the sample g_t (W, S).

    The smallest d with #(sample distances <= d) * n_total / S >= 2k (and >= 16 sample
    items): about twice k expected items with d <= out[i] in the whole gallery.
    """
    n_q = q.shape[0]
    s = g_t.shape[1]
    need = max(16.0, 2.0 * k * s / n_total)
    per_group = (n_q + n_groups - 1) // n_groups
    for grp in prange(n_groups):
        acc = np.empty(s, dtype=np.uint64)
        for qi in range(grp * per_group, min(n_q, (grp + 1) * per_group)):
            _block_distances(q, qi, g_t, 0, s, acc)
            hist = np.zeros(65 * g_t.shape[0], dtype=np.int64)
            for j in range(s):
                hist[acc[j]] += 1
            total = 0
            bound = hist.shape[0] - 1
            for d in range(hist.shape[0]):
                total += hist[d]
                if total >= need:
                    bound = d
                    break
            out[qi] = bound


@njit(parallel=True, cache=True, nogil=True)
def scan(q, g_t, offset, k, n_groups, prior, bound, n_le, hist, cand_idx, cand_dist, n_cand):
    """Scans gallery words g_t (W, N) for queries q (Q, W), updating the state in place.

    Items with distance > prior[i] are skipped for query i (``prior_bound``): the result
    is exact if at least k items within prior[i] were seen in all (n_le >= k at the end).
    """
    n_q = q.shape[0]
    n_w = g_t.shape[0]
    n = g_t.shape[1]
    cap = cand_idx.shape[1]
    big = np.uint64(hist.shape[1] + 1)  # above every distance
    per_group = (n_q + n_groups - 1) // n_groups
    for grp in prange(n_groups):
        q0 = grp * per_group
        q1 = min(n_q, q0 + per_group)
        acc = np.empty(BLOCK, dtype=np.uint64)
        for c0 in range(0, n, CHUNK):
            c1 = min(n, c0 + CHUNK)
            for qi in range(q0, q1):
                b = bound[qi]
                nle = n_le[qi]
                nc = n_cand[qi]
                cap_thr = np.uint64(prior[qi] + 1)
                thr = min(cap_thr, np.uint64(b) if nle >= k else big)
                for b0 in range(c0, c1, BLOCK):
                    b1 = min(c1, b0 + BLOCK)
                    if n_w == 1 and b1 - b0 == BLOCK:
                        # the block's smallest distance, vectorised (unsigned: LLVM
                        # vectorises the reduction); most blocks stop here
                        m = big
                        qw = q[qi, 0]
                        gb = g_t[0, b0:b1]
                        for j in range(BLOCK):
                            m = min(m, _popcount(gb[j] ^ qw))
                        if m >= thr:
                            continue
                    if _block_distances(q, qi, g_t, b0, b1, acc) >= thr:
                        continue
                    # the items below the threshold as a bit mask (vectorised), then one
                    # step per such item
                    mask = np.uint64(0)
                    for j in range(b1 - b0):
                        mask |= np.uint64(acc[j] < thr) << np.uint64(j)
                    while mask:
                        j = _trailing_zeros(mask)
                        mask &= mask - np.uint64(1)
                        if acc[j] >= thr:  # the threshold shrank meanwhile
                            continue
                        d = np.int64(acc[j])
                        if nc == cap:
                            nc = _compact(cand_idx[qi], cand_dist[qi], nc, b, nle - hist[qi, b], k)
                        cand_idx[qi, nc] = offset + b0 + j
                        cand_dist[qi, nc] = d
                        nc += 1
                        hist[qi, d] += 1
                        nle += 1
                        if nle >= k:
                            while nle - hist[qi, b] >= k:
                                nle -= hist[qi, b]
                                b -= 1
                            thr = min(cap_thr, np.uint64(b))
                bound[qi] = b
                n_le[qi] = nle
                n_cand[qi] = nc


@njit(parallel=True, cache=True, nogil=True)
def finish(k, bound, cand_idx, cand_dist, n_cand, out_dist, out_idx):
    """Writes the top k of each query, ordered by (distance, index), into out_* (Q, k)."""
    for qi in prange(bound.shape[0]):
        b = bound[qi]
        nc = n_cand[qi]
        pos = np.zeros(b + 2, dtype=np.int64)
        for i in range(nc):
            d = cand_dist[qi, i]
            if d < b:
                pos[d + 1] += 1
        n_less = 0
        for d in range(b + 1):
            n_less += pos[d + 1]
            pos[d + 1] = n_less
        ties = k - pos[b]
        for i in range(nc):
            d = cand_dist[qi, i]
            if d < b or (d == b and ties > 0):
                if d == b:
                    ties -= 1
                p = pos[d]
                out_dist[qi, p] = d
                out_idx[qi, p] = cand_idx[qi, i]
                pos[d] = p + 1
