"""Binary codes and exact Hamming retrieval.

- ``codes``: ``binarize`` (SSDH's ``h > 0.5``), ``pack_codes``/``unpack_codes``
  (``np.packbits`` order), ``codes_to_words`` (uint64 words, MSB first), code files.
- ``index``: ``HammingIndex``, exact k-NN with ties in insertion order.
- ``encode``: run a hashing model over a data set (imports Keras on first call).
"""

from rol_hashing.retrieval.codes import (
    EncodedSet,
    binarize,
    codes_to_words,
    load_codes,
    pack_codes,
    save_codes,
    unpack_codes,
    words_to_codes,
    words_to_packed,
)
from rol_hashing.retrieval.encode import encode
from rol_hashing.retrieval.index import HammingIndex, hamming_distances

__all__ = [
    "EncodedSet",
    "HammingIndex",
    "binarize",
    "codes_to_words",
    "encode",
    "hamming_distances",
    "load_codes",
    "pack_codes",
    "save_codes",
    "unpack_codes",
    "words_to_codes",
    "words_to_packed",
]
