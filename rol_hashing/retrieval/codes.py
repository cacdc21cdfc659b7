"""Binary hash codes: binarisation, packing, the uint64 word layout, and code files.

Three representations of the same N codes of ``bits`` bits, told apart by dtype:

- ``bool`` (N, bits): one entry per bit, bit j in column j.
- ``uint8`` (N, ceil(bits/8)), *packed*: ``np.packbits(codes, axis=1)``, i.e. bit j is
  bit ``7 - j % 8`` of byte ``j // 8`` (most significant bit first); the padding bits
  of the last byte are zero.
- ``uint64`` (N, ceil(bits/64)), *words*: the packed bytes, zero-padded to a multiple of
  8, read as big-endian 64-bit integers. Bit j is bit ``63 - j % 64`` of word ``j // 64``
  (most significant bit first, as in the packed bytes); padding bits are zero, so the
  Hamming distance is ``sum(bitwise_count(a ^ b))`` over the words. The words are held
  in native byte order in memory; the conversion only fixes how bytes map to words.

Code files (``save_codes``/``load_codes``) are ``.npz`` archives read with
``allow_pickle=False``; they carry a format name and version, and are written
atomically (a temporary file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from rol_hashing.archives import check_npz
from rol_hashing.errors import InputError, check_int
from rol_hashing.freshness import stale_parts
from rol_hashing.io import atomic_savez

CODES_FORMAT = "rol_hashing.codes"
CODES_FORMAT_VERSION = 1

PathLike = str | os.PathLike[str]


def num_bytes(bits: int) -> int:
    """Bytes per packed code: ceil(bits / 8)."""
    return (bits + 7) // 8


def num_words(bits: int) -> int:
    """64-bit words per code: ceil(bits / 64)."""
    return (bits + 63) // 64


def check_bits(bits: Any) -> int:
    """Returns ``bits`` as an int, or raises ValueError unless it is a positive integer."""
    return check_int(bits, "bits")


def binarize(h: Any) -> np.ndarray:
    """Hash-layer activations (N, bits) in [0, 1] -> bool codes (N, bits): ``h > 0.5``.

    This is SSDH's ``feat > 0.5``; an activation of exactly 0.5 gives 0.
    Accepts numpy arrays and tensors (anything ``np.asarray`` understands).
    """
    h = np.asarray(h)
    if h.ndim != 2:
        raise InputError(f"expected activations of shape (N, bits), got shape {h.shape}")
    if not (np.issubdtype(h.dtype, np.floating) or np.issubdtype(h.dtype, np.integer)):
        raise InputError(f"expected real-valued activations, got dtype {h.dtype}")
    return h > 0.5


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """bool codes (N, bits) -> packed uint8 (N, ceil(bits/8)), ``np.packbits`` order."""
    codes = np.asarray(codes)
    if codes.dtype != np.bool_ or codes.ndim != 2:
        raise InputError(
            f"pack_codes expects bool codes of shape (N, bits), got {codes.dtype} {codes.shape}"
        )
    check_bits(codes.shape[1])
    return np.packbits(codes, axis=1)


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """Packed uint8 (N, ceil(bits/8)) -> bool codes (N, bits)."""
    packed = _check_packed(packed, bits)
    return np.unpackbits(packed, axis=1, count=bits).astype(bool)


def codes_to_words(codes: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Codes in any of the three layouts -> uint64 words (N, ceil(bits/64)).

    Args:
        codes: bool (N, bits), packed uint8 (N, ceil(bits/8)) or uint64 words
            (N, ceil(bits/64)). The dtype decides the layout.
        bits: the code length; required for packed bytes and words, checked against
            the width of bool codes.

    Returns:
        C-contiguous uint64 array (N, ceil(bits/64)), padding bits zero.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise InputError(
            f"expected a 2-D array of codes (N, bits or bytes or words), got shape {codes.shape}"
            + ("; for a single code use codes[None]" if codes.ndim == 1 else "")
        )
    if codes.dtype == np.bool_:
        width = codes.shape[1]
        if bits is not None and check_bits(bits) != width:
            raise InputError(f"expected codes of {bits} bits, got bool codes of {width} bits")
        return _packed_to_words(pack_codes(codes), width)
    if codes.dtype == np.uint8:
        if bits is None:
            raise InputError(
                "packed uint8 codes need bits=...; for unpacked 0/1 codes pass a bool array"
            )
        return _packed_to_words(_check_packed(codes, bits), bits)
    if codes.dtype == np.uint64:
        if bits is None:
            raise InputError("uint64 code words need bits=...")
        bits = check_bits(bits)
        if codes.shape[1] != num_words(bits):
            raise InputError(
                f"expected {num_words(bits)} uint64 words per {bits}-bit code, got {codes.shape[1]}"
            )
        pad = num_words(bits) * 64 - bits
        if pad and codes.shape[0] and np.any(codes[:, -1] & np.uint64((1 << pad) - 1)):
            raise InputError(f"uint64 words have nonzero padding bits beyond bit {bits}")
        return np.ascontiguousarray(codes)
    raise InputError(
        f"codes must be bool (N, bits), packed uint8 or uint64 words; got dtype {codes.dtype}"
        " (threshold activations with binarize(), or convert 0/1 integers with .astype(bool))"
    )


def words_to_codes(words: np.ndarray, bits: int) -> np.ndarray:
    """uint64 words (N, ceil(bits/64)) -> bool codes (N, bits)."""
    return unpack_codes(words_to_packed(words, bits), bits)


def words_to_packed(words: np.ndarray, bits: int) -> np.ndarray:
    """uint64 words (N, ceil(bits/64)) -> packed uint8 (N, ceil(bits/8))."""
    words = codes_to_words(np.asarray(words, dtype=np.uint64), bits)
    raw = words.astype(">u8").view(np.uint8).reshape(words.shape[0], 8 * words.shape[1])
    return np.ascontiguousarray(raw[:, : num_bytes(bits)])


def _check_packed(packed: Any, bits: int) -> np.ndarray:
    bits = check_bits(bits)
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.ndim != 2:
        raise InputError(
            f"expected packed uint8 codes (N, {num_bytes(bits)}), got {packed.dtype} {packed.shape}"
        )
    if packed.shape[1] != num_bytes(bits):
        raise InputError(
            f"expected {num_bytes(bits)} bytes per packed {bits}-bit code, got {packed.shape[1]}"
            + (
                "; unpacked 0/1 codes must be passed as a bool array"
                if packed.shape[1] == bits
                else ""
            )
        )
    pad = num_bytes(bits) * 8 - bits
    if pad and packed.shape[0] and np.any(packed[:, -1] & np.uint8((1 << pad) - 1)):
        raise InputError(f"packed codes have nonzero padding bits beyond bit {bits}")
    return packed


def _packed_to_words(packed: np.ndarray, bits: int) -> np.ndarray:
    n, nbytes = packed.shape
    w = num_words(bits)
    buf = np.zeros((n, 8 * w), dtype=np.uint8)
    buf[:, :nbytes] = packed
    return buf.view(">u8").astype(np.uint64)


@dataclass(frozen=True)
class EncodedSet:
    """Codes of a data set with their labels and ids.

    Attributes:
        codes: bool (N, bits).
        labels: (N,) integer classes or (N, C) multi-hot.
        ids: (N,) item ids (integers or strings).
    """

    codes: np.ndarray
    labels: np.ndarray
    ids: np.ndarray

    def __post_init__(self) -> None:
        if self.codes.dtype != np.bool_ or self.codes.ndim != 2:
            raise InputError(
                f"codes must be bool (N, bits), got {self.codes.dtype} {self.codes.shape}"
            )
        n = self.codes.shape[0]
        if len(self.labels) != n or len(self.ids) != n or np.ndim(self.ids) != 1:
            raise InputError(
                f"codes, labels and ids must have the same length N={n}; got labels "
                f"{np.shape(self.labels)} and ids {np.shape(self.ids)}"
            )

    @property
    def bits(self) -> int:
        """Code length."""
        return int(self.codes.shape[1])

    def __len__(self) -> int:
        return int(self.codes.shape[0])


def save_codes(
    path: PathLike,
    codes: np.ndarray,
    ids: Any,
    labels: Any,
    model_sha256: str = "",
    key: dict | None = None,
) -> None:
    """Writes codes (bool (N, bits)), ids (N,) and labels (N,) or (N, C) to an ``.npz``.

    Codes are stored packed. Object arrays are refused (the file is read without
    pickle): ids must be numbers or strings. ``model_sha256``: the SHA-256 of the model
    file that computed the codes (a run's cache is reused only for that model). ``key``:
    a ``freshness.make_key`` of what the codes were made from (checked by ``load_codes``).
    Nothing is written if an argument is invalid; the file appears atomically.
    """
    encoded = EncodedSet(np.asarray(codes), _plain_array(labels, "labels"), as_id_array(ids))
    atomic_savez(
        path,
        format=np.array(CODES_FORMAT),
        format_version=np.array(CODES_FORMAT_VERSION),
        bits=np.array(encoded.bits),
        codes=pack_codes(encoded.codes),
        labels=encoded.labels,
        ids=encoded.ids,
        model_sha256=np.array(str(model_sha256)),
        key=np.array(json.dumps(key) if key is not None else ""),
    )


def load_codes(
    path: PathLike,
    bits: int | None = None,
    model_sha256: str | None = None,
    key: dict | None = None,
) -> EncodedSet:
    """Reads a file written by ``save_codes``; checks its format version and, if given,
    the bits, the SHA-256 of the model that wrote it and its freshness ``key``
    (``InputError`` on a mismatch, naming what differs)."""
    data = read_npz(path, CODES_FORMAT, CODES_FORMAT_VERSION, ("bits", "codes", "labels", "ids"))
    if key is not None:
        try:
            stored_key = json.loads(str(data["key"])) if "key" in data else None
        except ValueError:
            stored_key = None
        stale = stale_parts(stored_key, key)
        if stale:
            raise InputError(f"{os.fspath(path)}: made from another {', '.join(stale)}")
    stored_bits = int(data["bits"])
    if bits is not None and check_bits(bits) != stored_bits:
        raise InputError(f"{os.fspath(path)}: expected {bits}-bit codes, file holds {stored_bits}")
    if model_sha256 is not None:
        stored = str(data["model_sha256"]) if "model_sha256" in data else ""
        if stored != model_sha256:
            raise InputError(
                f"{os.fspath(path)}: written by another model (sha256 "
                f"{stored[:12] or 'not recorded'}, expected {model_sha256[:12]})"
            )
    codes = unpack_codes(data["codes"], stored_bits)
    return EncodedSet(codes, data["labels"], data["ids"])


def read_npz(
    path: PathLike, fmt: str, version: int, keys: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Loads an ``.npz`` (no pickle) and checks its format name, version and keys.

    Before anything is inflated, ``check_npz`` refuses members and ``.npy`` headers that
    declare more than the file can hold (a zip bomb). Then, where present: ``bits`` is
    one positive integer, ``codes`` are packed uint8 (N, ceil(bits/8)), ``ids`` (N,)
    and ``labels`` (N,) or (N, C) have one row per code. Every error names the file.
    """
    path = os.fspath(path)
    check_npz(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        # empty, truncated, bit-flipped or pickled files all end up here
        if isinstance(err, FileNotFoundError):
            raise
        raise InputError(f"{path}: not a readable {fmt} .npz file ({err})") from err
    found = str(data["format"])[:100] if "format" in data else None
    if found != fmt:
        raise InputError(f"{path}: expected a {fmt!r} file, found format {found!r}")
    found_version = _single_int(data, "format_version", path) if "format_version" in data else None
    if found_version != version:
        raise InputError(
            f"{path}: expected {fmt} format version {version}, file has version {found_version}"
        )
    missing = [k for k in keys if k not in data]
    if missing:
        raise InputError(f"{path}: {fmt} file lacks {missing}")
    _check_rows(data, path)
    return data


def _single_int(data: dict[str, np.ndarray], key: str, path: str) -> int:
    """``data[key]`` as an int; ``InputError`` naming the file unless it is one integer."""
    value = data[key]
    if value.shape != () or value.dtype.kind not in "iu":
        raise InputError(
            f"{path}: {key!r} must be a single integer, got {value.dtype} of shape {value.shape}"
        )
    return int(value)


def _check_rows(data: dict[str, np.ndarray], path: str) -> None:
    """``bits`` one positive integer, ``codes`` packed for it, and ``codes``, ``ids`` and
    ``labels`` (those present) one row per item; ``InputError`` naming the file."""
    if "bits" in data:
        bits = _single_int(data, "bits", path)
        if bits < 1:
            raise InputError(f"{path}: 'bits' must be a positive integer, got {bits}")
        if "codes" in data:
            try:
                _check_packed(data["codes"], bits)
            except InputError as err:
                raise InputError(f"{path}: 'codes': {err}") from None
    shapes = {"ids": (1,), "labels": (1, 2), "codes": (2,)}
    rows = {}
    for key, ndims in shapes.items():
        if key in data:
            if data[key].ndim not in ndims:
                raise InputError(
                    f"{path}: {key!r} must have {' or '.join(map(str, ndims))} dimension(s) "
                    f"with one row per item, got shape {data[key].shape}"
                )
            rows[key] = data[key].shape[0]
    if len(set(rows.values())) > 1:
        counts = ", ".join(f"{key!r} {n}" for key, n in rows.items())
        raise InputError(f"{path}: expected one row per item in each array, got rows {counts}")


def _plain_array(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object:
        raise InputError(f"{name} must be a numeric or string array, not dtype=object")
    return arr


def as_id_array(ids: Any) -> np.ndarray:
    """ids (N,) as a numeric or str array (bytes decoded as UTF-8); no object arrays."""
    arr = np.asarray(ids)
    if arr.dtype == object:
        items = [i.decode("utf-8") if isinstance(i, bytes) else i for i in arr.tolist()]
        arr = np.asarray(items)
        if arr.dtype == object:
            raise InputError("ids must all be numbers or all strings")
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8")
    return arr
