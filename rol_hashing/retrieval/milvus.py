"""Export codes to a Milvus collection, for galleries that outgrow one machine.

An optional extra: ``pip install "pymilvus<2.6"`` (plus ``"milvus-lite==2.5.1"`` for the
embedded server; Milvus Lite 3.x has no binary vectors, and milvus-lite 2.5 imports
``pkg_resources``, i.e. ``setuptools<81``). The collection has

- ``row``: INT64 primary key, the code's position in ``codes`` (``HammingIndex``'s index);
- ``item_id``: the caller's id, INT64 or VARCHAR;
- ``code``: BINARY_VECTOR of 8 * ceil(bits/8) dimensions (the packed bytes; padding
  bits are zero on both sides, so distances are the same), index ``BIN_FLAT``, metric
  ``HAMMING`` (exact).

``milvus_search`` returns the same distances as ``HammingIndex.search``; the order
among items at equal distance is Milvus's, not necessarily gallery order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rol_hashing.errors import InputError
from rol_hashing.retrieval.codes import as_id_array, codes_to_words, num_bytes, words_to_packed

CODE_FIELD = "code"
ROW_FIELD = "row"
ID_FIELD = "item_id"


def _client(uri_or_client: Any) -> Any:
    if not isinstance(uri_or_client, str):
        return uri_or_client
    try:
        from pymilvus import MilvusClient  # lazy: an optional extra
    except ImportError as err:
        raise ImportError(
            'Milvus export needs pymilvus: pip install "pymilvus<2.6" '
            '(and "milvus-lite==2.5.1" for a local file uri)'
        ) from err
    return MilvusClient(uri_or_client)


def _packed(codes: np.ndarray, bits: int | None) -> tuple[np.ndarray, int]:
    codes = np.asarray(codes)
    if bits is None:
        if codes.dtype != np.bool_:
            raise InputError("packed codes or words need bits=...")
        bits = codes.shape[1]
    return words_to_packed(codes_to_words(codes, bits), bits), int(bits)


def export_to_milvus(
    codes: np.ndarray,
    ids: Any,
    uri: Any,
    collection: str,
    *,
    bits: int | None = None,
    overwrite: bool = False,
    batch_size: int = 10_000,
) -> Any:
    """Writes codes and ids to a new Milvus collection (BIN_FLAT, HAMMING); returns the client.

    Args:
        codes: bool (N, bits), packed uint8 (N, ceil(bits/8)) or uint64 words.
        ids: (N,) integer or string ids.
        uri: a Milvus uri (``"http://host:19530"``), a Milvus Lite file (``"codes.db"``)
            or a ``pymilvus.MilvusClient``.
        collection: collection name; an existing one is an error unless ``overwrite``.
        bits: code length (needed unless codes are bool).
        batch_size: rows per insert call.
    """
    from pymilvus import DataType, MilvusClient  # lazy: an optional extra

    packed, bits = _packed(codes, bits)
    ids = as_id_array(ids)
    if ids.ndim != 1 or len(ids) != len(packed):
        raise InputError(f"ids must have shape ({len(packed)},), got {ids.shape}")
    client = _client(uri)
    if client.has_collection(collection):
        if not overwrite:
            raise InputError(f"Milvus collection {collection!r} exists (overwrite=True replaces)")
        client.drop_collection(collection)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(ROW_FIELD, DataType.INT64, is_primary=True)
    if ids.dtype.kind in "iu":
        schema.add_field(ID_FIELD, DataType.INT64)
        id_values = ids.astype(np.int64).tolist()
    else:
        longest = max((len(str(i).encode("utf-8")) for i in ids.tolist()), default=1)
        schema.add_field(ID_FIELD, DataType.VARCHAR, max_length=max(1, longest))
        id_values = [str(i) for i in ids.tolist()]
    schema.add_field(CODE_FIELD, DataType.BINARY_VECTOR, dim=8 * num_bytes(bits))
    index_params = client.prepare_index_params()
    index_params.add_index(field_name=CODE_FIELD, index_type="BIN_FLAT", metric_type="HAMMING")
    client.create_collection(collection, schema=schema, index_params=index_params)
    for start in range(0, len(packed), batch_size):
        stop = min(len(packed), start + batch_size)
        client.insert(
            collection,
            [
                {ROW_FIELD: row, ID_FIELD: id_values[row], CODE_FIELD: packed[row].tobytes()}
                for row in range(start, stop)
            ],
        )
    client.flush(collection)
    client.load_collection(collection)
    return client


def milvus_search(
    uri: Any, collection: str, queries: np.ndarray, k: int, *, bits: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k nearest codes in a collection made by ``export_to_milvus``.

    Returns:
        distances int32 (Q, k), rows int64 (Q, k) (positions in the exported codes) and
        ids (Q, k), each row ordered by distance (ties in Milvus's order).
    """
    packed, _ = _packed(queries, bits)
    client = _client(uri)
    hits = client.search(
        collection,
        data=[p.tobytes() for p in packed],
        anns_field=CODE_FIELD,
        limit=int(k),
        search_params={"metric_type": "HAMMING"},
        output_fields=[ID_FIELD],
    )
    distances = np.array([[h["distance"] for h in row] for row in hits], dtype=np.int32)
    rows = np.array([[h["id"] for h in row] for row in hits], dtype=np.int64)
    ids = np.array([[h["entity"][ID_FIELD] for h in row] for row in hits])
    return distances.reshape(len(packed), -1), rows.reshape(len(packed), -1), ids
