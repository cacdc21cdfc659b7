"""Binary codes and exact Hamming retrieval.

- ``codes``: ``binarize`` (SSDH's ``h > 0.5``), ``pack_codes``/``unpack_codes``
  (``np.packbits`` order), ``codes_to_words`` (uint64 words, MSB first), code files.
- ``index``: ``HammingIndex``, exact k-NN with ties in insertion order.
- ``mapped``: ``MappedHammingIndex``/``save_packed``, the same search over a
  memory-mapped packed ``.npy`` gallery, chunk by chunk (larger than memory).
- ``milvus``: ``export_to_milvus``/``milvus_search`` (optional extra: pymilvus).
- ``encode``: run a hashing model over a data set (imports Keras on first call).

On trained run folders (imported from their modules, not re-exported here):

- ``evaluate``: ``encode_split``, ``evaluate_run`` (``metrics.json``/``metrics.md``);
- ``search``: ``build_index``, ``search_image``, ``write_strip_png``;
- ``table2``: ``PAPER_TABLE2``, ``run_table2`` (the paper's Table 2 for one data set).
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
from rol_hashing.retrieval.mapped import MappedHammingIndex, save_packed

__all__ = [
    "EncodedSet",
    "HammingIndex",
    "MappedHammingIndex",
    "binarize",
    "codes_to_words",
    "encode",
    "hamming_distances",
    "load_codes",
    "pack_codes",
    "save_codes",
    "save_packed",
    "unpack_codes",
    "words_to_codes",
    "words_to_packed",
]
