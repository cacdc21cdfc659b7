"""HammingIndex: exact, stable top-k against a brute-force stable argsort; files; errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

import rol_hashing.retrieval.index as index_module
from rol_hashing.errors import InputError
from rol_hashing.io import atomic_savez
from rol_hashing.retrieval import (
    HammingIndex,
    MappedHammingIndex,
    codes_to_words,
    hamming_distances,
    pack_codes,
    save_packed,
)
from rol_hashing.retrieval.index import INDEX_FORMAT, stable_top_k


def random_codes(n: int, bits: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, bits)) > 0.5


def brute_force(queries: np.ndarray, gallery: np.ndarray, k: int):
    """Distances from unpacked bits, ranked by np.argsort(kind="stable")."""
    dist = (queries[:, None, :] != gallery[None, :, :]).sum(axis=-1)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, order, axis=1), order


@pytest.mark.parametrize("bits", (1, 7, 12, 48, 64, 65, 128))
def test_search_equals_stable_brute_force(bits):
    n = 257
    gallery = random_codes(n, bits, seed=bits)
    queries = random_codes(19, bits, seed=1000 + bits)
    queries[0] = gallery[5]  # an exact match
    index = HammingIndex(bits)
    index.add(gallery)
    for k in (1, 2, 37, n - 1, n):
        dist, idx = index.search(queries, k)
        ref_dist, ref_idx = brute_force(queries, gallery, k)
        assert dist.dtype == np.int32 and idx.dtype == np.int64
        assert dist.shape == idx.shape == (19, k)
        np.testing.assert_array_equal(idx, ref_idx, err_msg=f"bits={bits} k={k}")
        np.testing.assert_array_equal(dist, ref_dist)


def test_ties_keep_insertion_order():
    gallery = np.array([[1, 1], [0, 0], [1, 0], [0, 0], [0, 1], [0, 0]], dtype=bool)
    index = HammingIndex(2)
    index.add(gallery)
    dist, idx = index.search(np.array([[0, 0]], dtype=bool), 5)
    # distance 0: items 1, 3, 5; distance 1: items 2, 4 (then 0 at distance 2, cut)
    np.testing.assert_array_equal(idx, [[1, 3, 5, 2, 4]])
    np.testing.assert_array_equal(dist, [[0, 0, 0, 1, 1]])
    _, idx = index.search(np.array([[0, 0]], dtype=bool), 2)  # k cuts inside the tie
    np.testing.assert_array_equal(idx, [[1, 3]])


def test_batches_chunks_and_incremental_adds_give_the_same_result(monkeypatch):
    bits = 70
    gallery = random_codes(300, bits, seed=3)
    queries = random_codes(25, bits, seed=4)
    ref_dist, ref_idx = brute_force(queries, gallery, 40)
    monkeypatch.setattr(index_module, "_XOR_CHUNK_ELEMENTS", 64)  # many gallery chunks
    index = HammingIndex(bits, max_batch_bytes=1)  # one query per batch
    assert index.batch_size(40) == 1
    index.add(gallery[:100])
    index.add(pack_codes(gallery[100:101]))
    index.add(codes_to_words(gallery[101:]))
    index.add(np.zeros((0, bits), dtype=bool))
    assert len(index) == index.ntotal == 300
    dist, idx = index.search(pack_codes(queries), 40)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(dist, ref_dist)
    starts = [start for start, _, _ in index.iter_search(queries, 40)]
    assert starts == list(range(25))


def test_hamming_distances_match_bit_count():
    for bits in (9, 200, 300):  # uint8 and uint16 distances
        g, q = random_codes(50, bits, 1), random_codes(6, bits, 2)
        d = hamming_distances(codes_to_words(q), codes_to_words(g), bits)
        np.testing.assert_array_equal(d, (q[:, None] != g[None]).sum(-1))


def test_stable_top_k_single_row():
    row = np.array([3, 1, 2, 1, 0, 1, 3], dtype=np.uint8)
    dist, idx = stable_top_k(row, 4, bits=3)
    np.testing.assert_array_equal(idx, [4, 1, 3, 5])
    np.testing.assert_array_equal(dist, [0, 1, 1, 1])


def test_words_are_one_uint64_per_64_bits():
    index = HammingIndex(65)
    index.add(random_codes(10, 65))
    assert index.words.dtype == np.uint64 and index.words.shape == (10, 2)
    assert index.words.nbytes == 10 * 2 * 8
    assert not index.words.flags.writeable


def test_save_load_round_trip(tmp_path):
    bits = 12
    gallery = random_codes(50, bits)
    index = HammingIndex(bits)
    index.add(gallery)
    path = tmp_path / "index.npz"
    index.save(path)
    assert os.listdir(tmp_path) == ["index.npz"]
    loaded = HammingIndex.load(path, bits=bits)
    assert loaded.bits == bits and loaded.ntotal == 50
    np.testing.assert_array_equal(loaded.words, index.words)
    queries = random_codes(4, bits, seed=9)
    for a, b in zip(loaded.search(queries, 10), index.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)
    with np.load(path, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["codes"], pack_codes(gallery))


def test_load_rejects_other_version_bits_or_format(tmp_path):
    index = HammingIndex(12)
    index.add(random_codes(5, 12))
    path = tmp_path / "index.npz"
    index.save(path)
    with pytest.raises(InputError, match="expected an index of 48-bit codes, file holds 12"):
        HammingIndex.load(path, bits=48)
    old = tmp_path / "old.npz"
    atomic_savez(old, format=np.array(INDEX_FORMAT), format_version=np.array(0), bits=np.array(12))
    with pytest.raises(InputError, match="expected rol_hashing.hamming_index format version 1"):
        HammingIndex.load(old)
    np.savez(tmp_path / "x.npz", codes=np.zeros((1, 2), np.uint8))
    with pytest.raises(InputError, match="expected a 'rol_hashing.hamming_index' file"):
        HammingIndex.load(tmp_path / "x.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable"):
        HammingIndex.load(garbage)


def test_bad_input_gives_clear_errors_and_writes_nothing(tmp_path):
    index = HammingIndex(48)
    with pytest.raises(InputError, match="empty"):
        index.search(random_codes(2, 48), 1)
    index.add(random_codes(10, 48))
    with pytest.raises(
        ValueError, match="queries: expected codes of 48 bits, got bool codes of 12"
    ):
        index.search(random_codes(2, 12), 1)
    with pytest.raises(InputError, match="codes: expected 6 bytes per packed 48-bit code"):
        index.add(pack_codes(random_codes(2, 40)))
    with pytest.raises(InputError, match="k=11 is larger than the number of indexed codes"):
        index.search(random_codes(2, 48), 11)
    with pytest.raises(InputError, match="k must be a positive integer"):
        index.search(random_codes(2, 48), 0)
    with pytest.raises(InputError, match="backend"):
        HammingIndex(8, backend="annoy")
    with pytest.raises(FileNotFoundError):
        index.save(tmp_path / "missing" / "index.npz")
    assert os.listdir(tmp_path) == []
    assert index.ntotal == 10  # the failed add left the index unchanged


def test_faiss_backend_is_identical():
    pytest.importorskip("faiss")
    for bits in (7, 12, 48, 65):
        gallery = random_codes(400, bits, seed=bits)
        queries = random_codes(30, bits, seed=bits + 1)
        exact = HammingIndex(bits)
        exact.add(gallery)
        fast = HammingIndex(bits, backend="faiss")
        fast.add(gallery)
        np.testing.assert_array_equal(fast.words, exact.words)
        for k in (1, 17, 400):
            for a, b in zip(fast.search(queries, k), exact.search(queries, k), strict=True):
                np.testing.assert_array_equal(a, b, err_msg=f"bits={bits} k={k}")


def test_faiss_backend_missing_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        HammingIndex(8, backend="faiss")


# ---- the numba backend -----------------------------------------------------------


def _tied_codes(n: int, bits: int, seed: int) -> np.ndarray:
    """Random codes where half the items repeat others and a few bits vary: heavy ties."""
    rng = np.random.default_rng(seed)
    codes = rng.random((n, bits)) > 0.5
    codes[n // 2 :] = codes[rng.integers(0, max(1, n // 2), n - n // 2)]
    codes[: n // 4, bits // 2 :] = False
    return codes


@pytest.mark.parametrize("bits", (1, 3, 12, 48, 63, 64, 65, 100, 128, 130))
def test_numba_backend_equals_numpy_and_brute_force(bits, monkeypatch):
    pytest.importorskip("numba")
    n = 700
    gallery = _tied_codes(n, bits, seed=bits)
    queries = np.concatenate([random_codes(9, bits, seed=bits + 7), gallery[:3]])
    fast = HammingIndex(bits, backend="numba")
    fast.add(gallery)
    slow = HammingIndex(bits, backend="numpy")
    slow.add(gallery)
    for sample in (8192, 16):  # without and with the start threshold from a sample
        monkeypatch.setattr(index_module, "_PRIOR_SAMPLE", sample)
        for k in (1, 2, 15, 150, n - 1, n):
            dist, idx = fast.search(queries, k)
            ref_dist, ref_idx = brute_force(queries, gallery, k)
            np.testing.assert_array_equal(idx, ref_idx, err_msg=f"bits={bits} k={k}")
            np.testing.assert_array_equal(dist, ref_dist)
            for a, b in zip((dist, idx), slow.search(queries, k), strict=True):
                np.testing.assert_array_equal(a, b)


def test_numba_all_equal_codes_and_large_gallery_take_the_first_items():
    pytest.importorskip("numba")
    index = HammingIndex(48, backend="numba")
    index.add(np.zeros((50_000, 48), dtype=bool))
    dist, idx = index.search(np.zeros((2, 48), dtype=bool), 1000)
    np.testing.assert_array_equal(idx, np.broadcast_to(np.arange(1000), (2, 1000)))
    assert not dist.any()
    gallery = random_codes(40_000, 24, seed=5)  # many ties at each distance, with a prior
    queries = random_codes(6, 24, seed=6)
    index = HammingIndex(24, backend="numba")
    index.add(gallery)
    reference = HammingIndex(24, backend="numpy")
    reference.add(gallery)
    for a, b in zip(index.search(queries, 1000), reference.search(queries, 1000), strict=True):
        np.testing.assert_array_equal(a, b)


def test_numba_a_too_small_start_threshold_is_scanned_again():
    pytest.importorskip("numba")
    bits, k = 32, 40
    gallery = random_codes(3000, bits, seed=11)
    queries = random_codes(5, bits, seed=12)
    words = codes_to_words(gallery)
    g_t = np.ascontiguousarray(words.T)
    # a "sample" made of the queries themselves: every estimate is distance 0 (too small)
    sample = np.ascontiguousarray(np.repeat(codes_to_words(queries), 20, axis=0).T)
    chunks = lambda: iter([(0, g_t[:, :1000]), (1000, g_t[:, 1000:])])  # noqa: E731
    dist, idx = index_module.numba_top_k(codes_to_words(queries), chunks, sample, 3000, k, bits)
    ref_dist, ref_idx = brute_force(queries, gallery, k)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(dist, ref_dist)


def test_auto_backend_falls_back_to_numpy_without_numba(monkeypatch):
    monkeypatch.setattr(index_module, "numba_available", lambda: False)
    assert HammingIndex(8).backend == "numpy"
    with pytest.raises(ImportError, match="pip install numba"):
        HammingIndex(8, backend="numba")


# ---- memory-mapped packed galleries ----------------------------------------------


@pytest.mark.parametrize("backend", ("numpy", "numba"))
@pytest.mark.parametrize("bits", (12, 48, 70))
def test_mapped_index_equals_in_memory(tmp_path, backend, bits, monkeypatch):
    if backend == "numba":
        pytest.importorskip("numba")
    monkeypatch.setattr(index_module, "_PRIOR_SAMPLE", 32)
    gallery = _tied_codes(1500, bits, seed=bits)
    queries = random_codes(8, bits, seed=3)
    memory = HammingIndex(bits, backend="numpy")
    memory.add(gallery)
    path = tmp_path / "gallery.npy"
    save_packed(path, memory.words, bits)
    assert os.listdir(tmp_path) == ["gallery.npy"]
    packed = np.load(path)
    assert packed.dtype == np.uint8 and packed.shape == (1500, (bits + 7) // 8)
    mapped = MappedHammingIndex(path, bits, chunk_items=400, backend=backend)
    assert isinstance(mapped._codes, np.memmap) and len(mapped) == 1500
    for k in (1, 30, 399, 401, 1500):
        for a, b in zip(mapped.search(queries, k), memory.search(queries, k), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"k={k}")


def test_mapped_index_checks_the_file(tmp_path):
    path = tmp_path / "g.npy"
    save_packed(path, random_codes(10, 48))
    with pytest.raises(InputError, match=r"expected packed uint8 codes \(N, 2\)"):
        MappedHammingIndex(path, bits=12)
    index = MappedHammingIndex(path, bits=48)
    with pytest.raises(InputError, match="k=11 is larger"):
        index.search(random_codes(1, 48), 11)
    with pytest.raises(InputError, match="queries: expected codes of 48 bits"):
        index.search(random_codes(1, 12), 1)


def test_numba_searches_from_several_threads_at_once():
    pytest.importorskip("numba")
    from concurrent.futures import ThreadPoolExecutor

    gallery = random_codes(5000, 48, seed=21)
    queries = random_codes(40, 48, seed=22)
    index = HammingIndex(48, backend="numba")
    index.add(gallery)
    expected = index.search(queries, 30)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: index.search(queries, 30), range(8)))
    for result in results:
        for a, b in zip(result, expected, strict=True):
            np.testing.assert_array_equal(a, b)
