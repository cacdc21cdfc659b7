"""A run's saved gallery index: ``build_index`` writes it, ``load_gallery_index`` reads and
checks it, ``fresh_index`` rebuilds it first when it is not the run's.

``build_index`` writes, beside the run's ``model.keras``::

    index.npz         the gallery codes as a ``HammingIndex`` (``HammingIndex.save``:
                      format name, version, bits, packed codes)
    index_items.npz   the gallery ids (N,) and labels (N,) or (N, C) in index order,
                      with their own format name and version, the code length, the
                      index's freshness key and the digest of ``index.npz``'s codes

An index file of another format version or code length is an error naming the file.
Before a search the index is checked as every derived file is (``rol_hashing.freshness``):
its key holds the model file's bytes, the gallery's ids, labels and pixels, the bits,
input size and mask source; an index of another key, or whose items are not the
gallery's in its order with the data set's labels, is rebuilt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rol_hashing.errors import InputError, check_int
from rol_hashing.freshness import array_digest, file_digest, make_key, stale_parts
from rol_hashing.io import atomic_savez
from rol_hashing.retrieval.codes import check_bits, read_npz
from rol_hashing.retrieval.encode import (
    check_batch_size,
    codes_key,
    encode_parts,
)
from rol_hashing.retrieval.index import HammingIndex
from rol_hashing.training.layout import (
    INDEX_FILE,
    ITEMS_FILE,
    Run,
    check_split_parts,
    open_hashing_run,
)

if TYPE_CHECKING:
    from rol_hashing.data.record import DatasetRecord

ITEMS_FORMAT = "rol_hashing.index_items"
ITEMS_FORMAT_VERSION = 2  # 2: the freshness key and the digest of index.npz's codes


@dataclass(frozen=True)
class GalleryIndex:
    """A loaded gallery index: ``index`` (N codes), ``ids`` (N,) str, ``labels`` (N,) or
    (N, C), all in the same order."""

    index: HammingIndex
    ids: np.ndarray
    labels: np.ndarray
    key: dict | None = None

    @property
    def bits(self) -> int:
        return self.index.bits

    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, code: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``top`` nearest items of one code, bool (bits,) or (1, bits).

        Returns:
            distances int32 (top,) and positions int64 (top,) into ``ids``/``labels``,
            ordered by (distance, gallery position).
        """
        code = np.asarray(code)
        if code.ndim == 1:
            code = code[None]
        if code.ndim != 2 or code.shape[0] != 1:
            raise InputError(f"expected one query code (bits,) or (1, bits), got {code.shape}")
        if code.dtype == np.bool_ and code.shape[1] != self.bits:
            raise InputError(
                f"the query code has {code.shape[1]} bits but the index holds {self.bits}-bit codes"
            )
        check_top(top, len(self))
        distances, positions = self.index.search(code, top)
        return distances[0], positions[0]


def check_top(top: object, num_gallery: int) -> int:
    """``top`` as an int, or ValueError unless 1 <= top <= the gallery size."""
    top = check_int(top, "top")
    if top > num_gallery:
        raise InputError(f"top={top} is larger than the gallery ({num_gallery} images)")
    return int(top)


def build_index(run_dir: str | Path, batch_size: int = 64, verbose: int = 1) -> Path:
    """Encodes (or reuses) the run's gallery codes and saves ``index.npz`` and
    ``index_items.npz`` in the run folder; returns the path of ``index.npz``."""
    check_batch_size(batch_size)
    run = open_hashing_run(run_dir)
    _, record, split = run.load_data()
    return _build_index(run, record, split, batch_size, verbose)


def index_key(run: Run, record: DatasetRecord, split) -> dict:
    """The freshness key of a run's index: what its gallery codes are made from (the
    model file, the gallery's ids, labels and pixels, the bits, input size, mask source)."""
    gallery = split.indices(record).gallery
    parts = codes_key(run, record, gallery, file_digest(run.model), "gallery")["parts"]
    return make_key("index", **{k: v for k, v in parts.items() if k != "part"})


def _build_index(
    run: Run, record, split, batch_size: int, verbose: int, key: dict | None = None
) -> Path:
    """Writes the pair; ``key``: the index's key when the caller already made it."""
    check_split_parts(split, run.split)
    _, gallery, _ = encode_parts(run, record, split, batch_size, verbose)
    index = HammingIndex(run.bits)
    index.add(gallery.codes)
    atomic_savez(
        run.path / ITEMS_FILE,
        format=np.array(ITEMS_FORMAT),
        format_version=np.array(ITEMS_FORMAT_VERSION),
        bits=np.array(run.bits),
        ids=gallery.ids,
        labels=gallery.labels,
        key=np.array(json.dumps(key or index_key(run, record, split), sort_keys=True)),
        codes_sha256=np.array(array_digest(index.words)),
    )
    index.save(run.path / INDEX_FILE)  # last: its presence means both files are complete
    if verbose:
        print(f"indexed {index.ntotal} gallery codes of {run.bits} bits -> {run.path / INDEX_FILE}")
    return run.path / INDEX_FILE


def load_gallery_index(run_dir: str | Path, bits: int | None = None) -> GalleryIndex:
    """Reads ``index.npz`` and ``index_items.npz`` of a run folder.

    Raises:
        FileNotFoundError: no index (``rol-hashing index RUN`` builds it).
        ValueError: another format version or code length, or files that disagree.
    """
    folder = Path(run_dir)
    index_path, items_path = folder / INDEX_FILE, folder / ITEMS_FILE
    for path in (index_path, items_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; build it with `rol-hashing index {folder}`")
    rebuild = f"; rebuild it with `rol-hashing index {folder}`"
    fields = ("bits", "ids", "labels", "key", "codes_sha256")
    try:
        index = HammingIndex.load(index_path, bits=bits)
        items = read_npz(items_path, ITEMS_FORMAT, ITEMS_FORMAT_VERSION, fields)
    except ValueError as err:
        raise InputError(f"{err}{rebuild}") from err
    if check_bits(int(items["bits"])) != index.bits or len(items["ids"]) != index.ntotal:
        raise InputError(
            f"{items_path} ({len(items['ids'])} items of {int(items['bits'])} bits) does not "
            f"match {index_path} ({index.ntotal} codes of {index.bits} bits){rebuild}"
        )
    if str(items["codes_sha256"]) != array_digest(index.words):
        raise InputError(
            f"{items_path} was written for other codes than {index_path} holds (one of the "
            f"pair is from another build){rebuild}"
        )
    if index.ntotal == 0:
        raise InputError(f"{index_path} is empty: the gallery has no images{rebuild}")
    ids = items["ids"]
    if ids.dtype.kind != "U" or len(set(ids.tolist())) != len(ids):
        what = "are not strings" if ids.dtype.kind != "U" else "repeat"
        raise InputError(f"{items_path}: the gallery ids {what}{rebuild}")
    try:
        key = json.loads(str(items["key"]))
    except ValueError:
        raise InputError(f"{items_path}: its freshness key is not JSON{rebuild}") from None
    return GalleryIndex(index, ids, items["labels"], key)


def fresh_index(run: Run, record, split, verbose: int) -> GalleryIndex:
    """The saved index when it is the run's (its key and items match the model and the
    gallery), else built again; the line printed says why."""
    expected = index_key(run, record, split)
    gallery, why = _saved_index(run, record, split, expected)
    if gallery is not None:
        return gallery
    if verbose or why != "missing":
        print(f"index of {run.path} rebuilt: {why}")
    _build_index(run, record, split, 64, verbose, key=expected)
    return load_gallery_index(run.path, bits=run.bits)


def _saved_index(run: Run, record, split, expected: dict) -> tuple[GalleryIndex | None, str]:
    """``(the saved index, "")`` when it is the run's, else ``(None, why not)``."""
    if not (run.path / INDEX_FILE).is_file() or not (run.path / ITEMS_FILE).is_file():
        return None, "missing"
    try:
        gallery = load_gallery_index(run.path, bits=run.bits)
    except InputError as err:
        return None, str(err).split("; rebuild it")[0]
    differ = stale_parts(gallery.key, expected)
    if differ:
        return None, "made from another " + ", ".join(differ)
    if gallery.ids.tolist() != list(split.gallery):
        return None, f"{run.path / ITEMS_FILE}: its ids are not the gallery's, in the split's order"
    labels = np.asarray(record.labels)[record.index_of(list(split.gallery))]
    if gallery.labels.shape != labels.shape or not np.array_equal(gallery.labels, labels):
        return None, f"{run.path / ITEMS_FILE}: its labels are not the data set's"
    return gallery, ""
