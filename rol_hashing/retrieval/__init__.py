"""Binary codes and exact Hamming retrieval.

- ``codes``: ``binarize`` (SSDH's ``h > 0.5``), ``pack_codes``/``unpack_codes``
  (``np.packbits`` order), ``codes_to_words`` (uint64 words, MSB first), code files.
- ``index``: ``HammingIndex``, exact k-NN with ties in insertion order.
- ``mapped``: ``MappedHammingIndex``/``save_packed``, the same search over a
  memory-mapped packed ``.npy`` gallery, chunk by chunk (larger than memory).
- ``milvus``: ``export_to_milvus``/``milvus_search`` (optional extra: pymilvus).
- ``relevance``: ``Relevance``, the one relevance rule (same class, or a shared label).

Imported from their modules, not re-exported here (they import Keras/TensorFlow):

- ``encode``: ``encode`` (a hashing model over any batches), ``encode_split`` (a
  trained run's query and gallery codes, cached in the run folder);
- ``search``: ``build_index``, ``search_image``, ``write_strip_png``.
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
from rol_hashing.retrieval.index import HammingIndex, hamming_distances
from rol_hashing.retrieval.mapped import MappedHammingIndex, save_packed
from rol_hashing.retrieval.relevance import Relevance

__all__ = [
    "EncodedSet",
    "HammingIndex",
    "MappedHammingIndex",
    "Relevance",
    "binarize",
    "codes_to_words",
    "hamming_distances",
    "load_codes",
    "pack_codes",
    "save_codes",
    "save_packed",
    "unpack_codes",
    "words_to_codes",
    "words_to_packed",
]
