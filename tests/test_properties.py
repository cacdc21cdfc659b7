"""Property tests (hypothesis): packing, ``HammingIndex.search`` and MAP@k on random inputs.

Code lengths 1..128, galleries of 1..300 items, heavy ties (a handful of distinct
codes) and k at the edges (1, N, random; k > N is refused). References are plain
Python loops written here.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rol_hashing.errors import InputError
from rol_hashing.evaluation.map import average_precisions, mean_average_precision
from rol_hashing.retrieval.codes import (
    codes_to_words,
    pack_codes,
    unpack_codes,
    words_to_codes,
    words_to_packed,
)
from rol_hashing.retrieval.index import HammingIndex

PROPERTY = settings(max_examples=60, deadline=None)


@st.composite
def code_sets(draw, max_gallery: int = 300, max_queries: int = 6) -> dict:
    """Random gallery and queries; ``distinct`` small gives ties everywhere."""
    bits = draw(st.integers(1, 128))
    n = draw(st.integers(1, max_gallery))
    q = draw(st.integers(1, max_queries))
    distinct = draw(st.sampled_from([1, 2, 3, 5, None]))  # None: every code random
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if distinct is None:
        gallery = rng.random((n, bits)) > 0.5
    else:
        pool = rng.random((distinct, bits)) > 0.5
        gallery = pool[rng.integers(0, distinct, n)]
    queries = rng.random((q, bits)) > 0.5
    if distinct is not None and q > 1:
        queries[0] = gallery[0]  # a query equal to gallery codes (distance 0 ties)
    k_kind = draw(st.sampled_from(["one", "all", "random"]))
    k = {"one": 1, "all": n, "random": draw(st.integers(1, n))}[k_kind]
    return {"bits": bits, "gallery": gallery, "queries": queries, "k": k, "rng": rng}


def as_int(row: np.ndarray) -> int:
    return int("".join("1" if b else "0" for b in row), 2)


def brute_force(queries: np.ndarray, gallery: np.ndarray, k: int) -> tuple[list, list]:
    """Distances and indices of the k nearest, by a stable sort over a Python loop."""
    g = [as_int(row) for row in gallery]
    all_d, all_i = [], []
    for row in queries:
        q = as_int(row)
        dist = [bin(q ^ x).count("1") for x in g]
        order = sorted(range(len(g)), key=lambda j: dist[j])[:k]
        all_d.append([dist[j] for j in order])
        all_i.append(order)
    return all_d, all_i


def loop_average_precision(
    queries: np.ndarray, q_labels: list, gallery: np.ndarray, g_labels: list, k: int
) -> list[float]:
    """AP@k per query: stable ranking, AP over the hits within the top k, 0 without hits."""
    _, rankings = brute_force(queries, gallery, len(gallery))
    out = []
    for i, ranking in enumerate(rankings):
        hits, total = 0, 0.0
        for rank, j in enumerate(ranking[:k], start=1):
            if q_labels[i] == g_labels[j]:
                hits += 1
                total += hits / rank
        out.append(total / hits if hits else 0.0)
    return out


@PROPERTY
@given(bits=st.integers(1, 128), n=st.integers(0, 40), seed=st.integers(0, 2**32 - 1))
def test_pack_unpack_and_words_round_trip(bits, n, seed):
    codes = np.random.default_rng(seed).random((n, bits)) > 0.5
    packed = pack_codes(codes)
    assert packed.dtype == np.uint8 and packed.shape == (n, (bits + 7) // 8)
    np.testing.assert_array_equal(unpack_codes(packed, bits), codes)
    words = codes_to_words(codes)
    assert words.dtype == np.uint64 and words.shape == (n, (bits + 63) // 64)
    np.testing.assert_array_equal(words_to_codes(words, bits), codes)
    np.testing.assert_array_equal(words_to_packed(words, bits), packed)
    np.testing.assert_array_equal(codes_to_words(packed, bits), words)


@PROPERTY
@given(data=code_sets(), backend=st.sampled_from(["numpy", "auto"]))
def test_search_equals_stable_brute_force(data, backend):
    index = HammingIndex(data["bits"], backend=backend)
    index.add(data["gallery"])
    dist, idx = index.search(data["queries"], data["k"])
    want_d, want_i = brute_force(data["queries"], data["gallery"], data["k"])
    assert dist.tolist() == want_d
    assert idx.tolist() == want_i


@PROPERTY
@given(data=code_sets(), extra=st.integers(1, 5))
def test_k_above_the_gallery_size_is_refused(data, extra):
    n = len(data["gallery"])
    index = HammingIndex(data["bits"])
    index.add(data["gallery"])
    with pytest.raises(InputError, match="larger than the number of indexed codes"):
        index.search(data["queries"], n + extra)
    labels = np.zeros(n, dtype=np.int64)
    with pytest.raises(InputError, match="larger than the gallery"):
        mean_average_precision(
            data["queries"], np.zeros(len(data["queries"]), np.int64), data["gallery"], labels,
            top_k=n + extra,
        )  # fmt: skip


@PROPERTY
@given(data=code_sets(), classes=st.integers(1, 4))
def test_map_at_k_equals_a_loop_reference(data, classes):
    rng = data["rng"]
    g_labels = rng.integers(0, classes, len(data["gallery"]))
    q_labels = rng.integers(0, classes, len(data["queries"]))
    args = (data["queries"], q_labels, data["gallery"], g_labels)
    want = loop_average_precision(
        data["queries"], q_labels.tolist(), data["gallery"], g_labels.tolist(), data["k"]
    )
    got = average_precisions(*args, top_k=data["k"])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert mean_average_precision(*args, top_k=data["k"]) == pytest.approx(
        sum(want) / len(want), rel=1e-12, abs=1e-15
    )
    packed = mean_average_precision(
        pack_codes(data["queries"]), q_labels, pack_codes(data["gallery"]), g_labels,
        top_k=data["k"], bits=data["bits"],
    )  # fmt: skip
    assert packed == pytest.approx(sum(want) / len(want), rel=1e-12, abs=1e-15)
