"""The compute floor of Hamming search: xor + popcount + add over all pairs (numba)."""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from rol_hashing.retrieval._scan import _popcount

_CHUNK = 4096


@njit(parallel=True)
def popcount_pairs(q: np.ndarray, g_t: np.ndarray) -> int:
    """Sum of popcount(q_i ^ g_j) over all queries q (Q, W) and codes g_t (W, N)."""
    n_q, n_w = q.shape
    n = g_t.shape[1]
    groups = min(n_q, numba.get_num_threads())
    per = (n_q + groups - 1) // groups
    total = 0
    for grp in prange(groups):
        s = np.uint64(0)
        for c0 in range(0, n, _CHUNK):
            c1 = min(n, c0 + _CHUNK)
            for qi in range(grp * per, min(n_q, (grp + 1) * per)):
                for w in range(n_w):
                    qw = q[qi, w]
                    gw = g_t[w, c0:c1]
                    for j in range(c1 - c0):
                        s += _popcount(gw[j] ^ qw)
        total += s
    return total
