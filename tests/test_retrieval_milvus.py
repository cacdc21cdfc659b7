"""Milvus export (optional extra): same distances and, where ties allow, same items as ours."""

from __future__ import annotations

import numpy as np
import pytest

from rol_hashing.retrieval import HammingIndex, pack_codes

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from rol_hashing.errors import InputError
from rol_hashing.retrieval.milvus import export_to_milvus, milvus_search  # noqa: E402


@pytest.mark.parametrize("bits", (12, 48))
def test_milvus_lite_gives_our_results(tmp_path, bits):
    rng = np.random.default_rng(bits)
    gallery = rng.random((2000, bits)) > 0.5
    queries = np.concatenate([rng.random((20, bits)) > 0.5, gallery[:2]])
    ids = np.array([f"img{i:05d}" for i in range(2000)])
    uri = str(tmp_path / "codes.db")
    client = export_to_milvus(pack_codes(gallery), ids, uri, "gallery", bits=bits)
    with pytest.raises(InputError, match="exists"):
        export_to_milvus(gallery, ids, client, "gallery")
    k = 50
    dist, rows, found_ids = milvus_search(client, "gallery", queries, k)
    index = HammingIndex(bits)
    index.add(gallery)
    ref_dist, ref_idx = index.search(queries, k)
    np.testing.assert_array_equal(dist, ref_dist)
    np.testing.assert_array_equal(found_ids, ids[rows])
    true_dist = (queries[:, None, :] != gallery[rows]).sum(-1)
    np.testing.assert_array_equal(dist, true_dist)  # each reported distance is right
    for q in range(len(queries)):
        closer = ref_dist[q] < ref_dist[q, -1]  # strictly before the last tie: same set
        assert set(rows[q][closer]) == set(ref_idx[q][closer])
    client.close()
