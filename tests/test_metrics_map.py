"""MAP@k as SSDH's precision.m: hand-computed answers, a plain-loop reference, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from rol_hashing.errors import InputError
from rol_hashing.evaluation import (
    average_precisions,
    mean_average_precision,
    precision_at_k,
    ranking_metrics,
)
from rol_hashing.retrieval import pack_codes


def bits_of(*rows: str) -> np.ndarray:
    return np.array([[c == "1" for c in r] for r in rows], dtype=bool)


# Gallery of six 4-bit codes and their classes.
GALLERY = bits_of("0000", "0001", "0011", "0001", "1111", "0000")
GALLERY_LABELS = np.array([0, 1, 0, 0, 1, 1])
# q0 = 0000, class 0: distances 0 1 2 1 4 0 -> stable ranking 0 5 1 3 2 4,
#   rel 1 0 0 1 1 0.
#   AP@4 = (P@1 + P@4) / 2 = (1 + 2/4) / 2 = 0.75
#     (an unstable sort putting item 5 first would give rel 0 1 0 1: AP 0.5;
#      normalising by all 3 relevant items would give 0.5).
#   AP over the whole ranking = (1 + 2/4 + 3/5) / 3 = 0.7.
#   radius 2: 5 retrieved (all but item 4), 3 relevant -> P 3/5, R 3/3.
# q1 = 1111, class 2: no relevant item anywhere -> AP 0, still counted.
#   radius 2: items 4 (d 0) and 2 (d 2) retrieved, none relevant -> P 0, R 0.
# q2 = 0011, class 1: distances 2 1 0 1 2 2 -> ranking 2 1 3 0 4 5, rel 0 1 0 0 1 1.
#   AP@4 = P@2 / 1 = 0.5; AP full = (1/2 + 2/5 + 3/6) / 3 = 1.4 / 3.
#   radius 2: all 6 retrieved, 3 relevant -> P 1/2, R 1.
QUERIES = bits_of("0000", "1111", "0011")
QUERY_LABELS = np.array([0, 2, 1])


def test_map_at_4_known_answer():
    ap = average_precisions(QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS, top_k=4)
    np.testing.assert_allclose(ap, [0.75, 0.0, 0.5])
    value = mean_average_precision(QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS, top_k=4)
    assert value == pytest.approx(1.25 / 3)  # the zero-hit query q1 counts


def test_precision_curve_known_answer():
    # hits: q0 1 1 1 2, q1 0 0 0 0, q2 0 1 1 1 -> P@j averaged over the 3 queries
    curve = precision_at_k(QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS, top_k=4)
    expected = np.array([1 + 0 + 0, (1 + 1) / 2, (1 + 1) / 3, (2 + 1) / 4]) / 3
    np.testing.assert_allclose(curve, expected)


def test_ranking_metrics_known_answer():
    m = ranking_metrics(QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS, top_k=4, radius=2)
    assert m.map_at_k == pytest.approx(1.25 / 3)
    assert m.map_full == pytest.approx((0.7 + 0 + 1.4 / 3) / 3)
    assert m.precision_radius == pytest.approx((3 / 5 + 0 + 1 / 2) / 3)
    assert m.recall_radius == pytest.approx((1 + 0 + 1) / 3)
    assert m.precision_at(4) == pytest.approx((2 + 1) / 4 / 3)
    np.testing.assert_allclose(m.average_precision, [0.75, 0.0, 0.5])
    assert (m.num_queries, m.num_gallery, m.bits, m.top_k) == (3, 6, 4, 4)
    assert m.as_dict()["map_at_k"] == m.map_at_k


def test_relevant_items_below_the_top_k_do_not_count():
    # q = 1111, class 0: ranking 4 2 1 3 0 5 (distances 0 2 3 3 4 4); item 4 is class 1.
    # Top 1 holds no relevant item: AP@1 = 0, although three class-0 items exist.
    q = bits_of("1111")
    assert mean_average_precision(q, [0], GALLERY, GALLERY_LABELS, top_k=1) == 0.0
    # top 2: rel 0 1 -> AP = P@2 / 1 = 0.5
    assert mean_average_precision(q, [0], GALLERY, GALLERY_LABELS, top_k=2) == 0.5


def test_multilabel_known_answer():
    gallery = bits_of("00", "00", "01", "11")
    gallery_labels = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1], [0, 0, 0]])
    queries = bits_of("00", "11")
    query_labels = np.array([[0, 1, 0], [1, 0, 1]], dtype=bool)
    # q0: ranking 0 1 2 3, shares a label only with item 1: rel 0 1 0 -> AP@3 = 1/2.
    # q1: distances 2 2 1 0 -> ranking 3 2 0 1; item 3 has no label: rel 0 1 1
    #     -> AP@3 = (1/2 + 2/3) / 2 = 7/12.
    ap = average_precisions(queries, query_labels, gallery, gallery_labels, top_k=3)
    np.testing.assert_allclose(ap, [0.5, 7 / 12])
    value = mean_average_precision(queries, query_labels, gallery, gallery_labels, top_k=3)
    assert value == pytest.approx(13 / 24)
    float_labels = gallery_labels.astype(np.float32)
    assert mean_average_precision(
        queries, query_labels.astype(np.int64), gallery, float_labels, top_k=3
    ) == pytest.approx(13 / 24)


def test_packed_codes_give_the_same_answer():
    packed = mean_average_precision(
        pack_codes(QUERIES), QUERY_LABELS, pack_codes(GALLERY), GALLERY_LABELS, top_k=4, bits=4
    )
    assert packed == pytest.approx(1.25 / 3)


# -- a plain-loop reference, as SSDH's precision.m, on codes full of ties -------------


def reference_metrics(q_codes, q_labels, g_codes, g_labels, top_k, radius, multilabel):
    """One query at a time, one item at a time, as precision.m (MATLAB sort is stable)."""
    g_ints = [int("".join("1" if b else "0" for b in row), 2) for row in g_codes]
    q_ints = [int("".join("1" if b else "0" for b in row), 2) for row in q_codes]

    def relevant(i, j):
        if multilabel:
            return any(a and b for a, b in zip(q_labels[i], g_labels[j], strict=True))
        return q_labels[i] == g_labels[j]

    ap_k, ap_full, prec_r, rec_r = [], [], [], []
    sum_tp = [0] * top_k
    for i, q in enumerate(q_ints):
        dist = [bin(q ^ g).count("1") for g in g_ints]
        ranking = sorted(range(len(g_ints)), key=lambda j: dist[j])  # stable
        rel = [1 if relevant(i, j) else 0 for j in ranking]
        for k, store in ((top_k, ap_k), (len(rel), ap_full)):
            hits, total = 0, 0.0
            for j in range(k):
                if rel[j]:
                    hits += 1
                    total += hits / (j + 1)
            store.append(total / hits if hits else 0.0)
        hits = 0
        for j in range(top_k):
            hits += rel[j]
            sum_tp[j] += hits
        retrieved = [j for j in range(len(rel)) if dist[ranking[j]] <= radius]
        rel_retrieved = sum(rel[j] for j in retrieved)
        prec_r.append(rel_retrieved / len(retrieved) if retrieved else 0.0)
        rec_r.append(rel_retrieved / sum(rel) if sum(rel) else 0.0)
    n = len(q_ints)
    curve = [sum_tp[j] / ((j + 1) * n) for j in range(top_k)]
    mean = sum(ap_k) / n, sum(ap_full) / n, sum(prec_r) / n, sum(rec_r) / n
    return ap_k, mean, curve


@pytest.mark.parametrize("multilabel", (False, True))
def test_against_plain_loop_reference_on_12_bit_codes(multilabel):
    rng = np.random.default_rng(12)
    bits, n_gallery, n_query, top_k = 12, 5000, 50, 1000
    # few distinct codes -> ties everywhere (5000 items over <= 4096 codes, 0..12 distances)
    g_codes = rng.random((n_gallery, bits)) > 0.5
    q_codes = rng.random((n_query, bits)) > 0.5
    if multilabel:
        g_labels = rng.random((n_gallery, 5)) < 0.2
        q_labels = rng.random((n_query, 5)) < 0.2
    else:
        g_labels = rng.integers(0, 10, n_gallery)
        q_labels = rng.integers(0, 10, n_query)
    ap_k, (map_k, map_full, p_r, r_r), curve = reference_metrics(
        q_codes, q_labels.tolist(), g_codes, g_labels.tolist(), top_k, 2, multilabel
    )
    args = (q_codes, q_labels, g_codes, g_labels)
    np.testing.assert_allclose(average_precisions(*args, top_k=top_k), ap_k, rtol=1e-12)
    assert mean_average_precision(*args, top_k=top_k) == pytest.approx(map_k, rel=1e-12)
    np.testing.assert_allclose(precision_at_k(*args, top_k=top_k), curve, rtol=1e-12)
    m = ranking_metrics(*args, top_k=top_k, radius=2)
    assert m.map_at_k == pytest.approx(map_k, rel=1e-12)
    assert m.map_full == pytest.approx(map_full, rel=1e-12)
    assert m.precision_radius == pytest.approx(p_r, rel=1e-12)
    assert m.recall_radius == pytest.approx(r_r, rel=1e-12)
    np.testing.assert_allclose(m.precision_curve, curve, rtol=1e-12)
    assert 0 < map_k < 1 and 0 < p_r < 1


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"query_codes": bits_of("000", "111", "001")}, "query_codes: expected codes of 4 bits"),
        ({"gallery_codes": GALLERY[:0], "gallery_labels": GALLERY_LABELS[:0]}, "empty"),
        ({"top_k": 7}, r"top_k=7 is larger than the gallery \(6 items\)"),
        ({"top_k": 0}, "top_k must be a positive integer"),
        ({"query_labels": np.array([0, 1])}, "query_labels has 2 rows, expected 3"),
        ({"query_labels": np.zeros((3, 2, 1), int)}, r"class ids \(N,\) or multi-hot"),
        ({"query_labels": np.array([0.0, 1.0, 2.0])}, "must be integers"),
        ({"query_labels": np.eye(3, 4, dtype=bool)}, "query_labels are multi-hot"),
        ({"gallery_labels": np.full((6, 1), 3)}, "only 0 and 1; for class ids pass a 1-D"),
        ({"gallery_codes": GALLERY.astype(np.uint8)}, "need bits"),
        ({"query_codes": QUERIES.astype(np.float64)}, "binarize"),
    ],
)
def test_bad_input_is_a_clear_value_error(change, message):
    args = {
        "query_codes": QUERIES,
        "query_labels": QUERY_LABELS,
        "gallery_codes": GALLERY,
        "gallery_labels": GALLERY_LABELS,
        "top_k": 4,
    }
    args.update(change)
    with pytest.raises(InputError, match=message):
        mean_average_precision(**args)
    with pytest.raises(InputError, match=message):
        ranking_metrics(**args)


def test_multilabel_class_count_mismatch():
    with pytest.raises(InputError, match="query_labels have 3 classes, gallery_labels 4"):
        mean_average_precision(
            QUERIES, np.eye(3, dtype=int), GALLERY, np.eye(6, 4, dtype=int), top_k=2
        )


def test_chance_precision_is_the_mean_relevant_fraction():
    from rol_hashing.evaluation.map import chance_precision

    # query 0 (class 1): 2 of 4 relevant; query 1 (class 2): 1 of 4
    assert chance_precision(np.array([1, 2]), np.array([1, 1, 2, 3])) == pytest.approx(0.375)
    multi_q = np.array([[1, 0, 1]])
    multi_g = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1]])
    assert chance_precision(multi_q, multi_g, chunk=1) == pytest.approx(0.75)
