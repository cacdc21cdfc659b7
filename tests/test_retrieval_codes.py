"""Codes: binarisation, packing, the uint64 word layout, code files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rol_hashing.errors import InputError
from rol_hashing.io import atomic_savez
from rol_hashing.retrieval import (
    binarize,
    codes_to_words,
    load_codes,
    pack_codes,
    save_codes,
    unpack_codes,
    words_to_codes,
    words_to_packed,
)
from rol_hashing.retrieval.codes import CODES_FORMAT

BITS = (1, 7, 8, 12, 48, 63, 64, 65, 128)


def random_codes(n: int, bits: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, bits)) > 0.5


def test_binarize_is_strictly_greater_than_half():
    h = np.array([[0.0, 0.5, 0.5000001, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(binarize(h), [[False, False, True, True]])
    assert binarize(h).dtype == np.bool_


def test_binarize_rejects_wrong_shape():
    with pytest.raises(InputError, match=r"\(N, bits\)"):
        binarize(np.zeros(4))


@pytest.mark.parametrize("bits", BITS)
def test_pack_unpack_round_trip(bits):
    codes = random_codes(33, bits)
    packed = pack_codes(codes)
    assert packed.dtype == np.uint8 and packed.shape == (33, (bits + 7) // 8)
    np.testing.assert_array_equal(packed, np.packbits(codes, axis=1))
    np.testing.assert_array_equal(unpack_codes(packed, bits), codes)


@pytest.mark.parametrize("bits", BITS)
def test_words_from_every_layout_agree_and_round_trip(bits):
    codes = random_codes(21, bits, seed=bits)
    words = codes_to_words(codes)
    assert words.dtype == np.uint64 and words.shape == (21, (bits + 63) // 64)
    np.testing.assert_array_equal(codes_to_words(pack_codes(codes), bits), words)
    np.testing.assert_array_equal(codes_to_words(words, bits), words)
    np.testing.assert_array_equal(words_to_codes(words, bits), codes)
    np.testing.assert_array_equal(words_to_packed(words, bits), pack_codes(codes))


def test_word_layout_is_most_significant_bit_first():
    bits = 130
    for j in (0, 1, 63, 64, 100, 129):
        code = np.zeros((1, bits), dtype=bool)
        code[0, j] = True
        words = codes_to_words(code)
        expected = np.zeros(3, dtype=np.uint64)
        expected[j // 64] = np.uint64(1) << np.uint64(63 - j % 64)
        np.testing.assert_array_equal(words[0], expected)


def test_hamming_distance_from_words():
    a, b = random_codes(1, 100, 1), random_codes(1, 100, 2)
    d = np.bitwise_count(codes_to_words(a) ^ codes_to_words(b)).sum()
    assert d == np.count_nonzero(a != b)


def test_layout_errors_are_clear():
    codes = random_codes(4, 12)
    with pytest.raises(InputError, match="need bits"):
        codes_to_words(pack_codes(codes))
    with pytest.raises(InputError, match="expected 2 bytes per packed 12-bit code, got 12"):
        codes_to_words(codes.astype(np.uint8), 12)
    with pytest.raises(InputError, match="expected codes of 16 bits"):
        codes_to_words(codes, 16)
    with pytest.raises(InputError, match="binarize"):
        codes_to_words(codes.astype(np.float32))
    with pytest.raises(InputError, match="codes\\[None\\]"):
        codes_to_words(codes[0])
    bad = pack_codes(codes)
    bad[0, -1] |= 1  # a padding bit
    with pytest.raises(InputError, match="padding"):
        unpack_codes(bad, 12)
    with pytest.raises(InputError, match="bits must be a positive integer"):
        unpack_codes(bad, 0)


@pytest.mark.parametrize(
    "ids, labels",
    [
        (np.arange(5) * 10, np.array([0, 1, 2, 1, 0])),
        (np.array(["a/1.jpg", "b/2.jpg", "c", "d", "é"]), np.eye(5, 3, dtype=np.uint8)),
        ([b"x", b"y", b"z", b"w", b"v"], np.array([3, 3, 3, 3, 3])),
    ],
)
def test_save_load_codes_round_trip(tmp_path, ids, labels):
    codes = random_codes(5, 13)
    path = tmp_path / "codes.npz"
    save_codes(path, codes, ids, labels)
    loaded = load_codes(path, bits=13)
    np.testing.assert_array_equal(loaded.codes, codes)
    np.testing.assert_array_equal(loaded.labels, labels)
    expected_ids = [i.decode() if isinstance(i, bytes) else i for i in np.asarray(ids).tolist()]
    assert loaded.ids.tolist() == expected_ids
    assert loaded.bits == 13 and len(loaded) == 5
    assert os.listdir(tmp_path) == ["codes.npz"]  # no temporary file left


def test_load_codes_checks_version_and_bits(tmp_path):
    path = tmp_path / "codes.npz"
    save_codes(path, random_codes(3, 8), np.arange(3), np.arange(3))
    with pytest.raises(InputError, match="expected 12-bit codes, file holds 8"):
        load_codes(path, bits=12)
    old = tmp_path / "old.npz"
    atomic_savez(old, format=np.array(CODES_FORMAT), format_version=np.array(99))
    with pytest.raises(InputError, match="version 1, file has version 99"):
        load_codes(old)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(InputError, match="expected a 'rol_hashing.codes' file"):
        load_codes(other)


def test_save_codes_writes_nothing_on_bad_input(tmp_path):
    path = tmp_path / "codes.npz"
    with pytest.raises(InputError, match="same length"):
        save_codes(path, random_codes(3, 8), np.arange(2), np.arange(3))
    with pytest.raises(InputError, match="object"):
        save_codes(path, random_codes(2, 8), np.arange(2), np.array([{}, {}], dtype=object))
    with pytest.raises(InputError, match="bool"):
        save_codes(path, np.zeros((2, 8)), np.arange(2), np.arange(2))
    assert os.listdir(tmp_path) == []


def test_atomic_save_keeps_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "codes.npz"
    save_codes(path, random_codes(3, 8), np.arange(3), np.arange(3))
    before = path.read_bytes()

    class Unsaveable:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_savez(path, codes=Unsaveable())
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["codes.npz"]
