"""Query-by-example on a trained run: the saved gallery index, one-image search, a PNG strip.

``build_index`` writes, beside the run's ``model.keras``::

    index.npz         the gallery codes as a ``HammingIndex`` (``HammingIndex.save``:
                      format name, version, bits, packed codes)
    index_items.npz   the gallery ids (N,) and labels (N,) or (N, C) in index order,
                      with their own format name and version and the code length

``search_image`` decodes one image file, preprocesses it as the data pipeline does
(resize, centre crop, VGG), encodes it with the run's model and ranks the gallery
(ties in gallery order). An index file of another format version or code length is
an error naming the file. Before a search the index is checked as every derived file is
(``rol_hashing.freshness``): its key holds the model file's bytes, the gallery's ids,
labels and pixels, the bits, input size and mask source; an index of another key, or
whose items are not the gallery's in its order with the data set's labels, is rebuilt.
The pair is tied: ``index_items.npz`` records the digest of the codes in ``index.npz``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rol_hashing import viz
from rol_hashing.data.fileio import require_file
from rol_hashing.data.images import decode_image
from rol_hashing.data.pipeline import decode_for_model, load_rgb, preprocess_image
from rol_hashing.errors import InputError, check_int, printable
from rol_hashing.freshness import array_digest, file_digest, make_key, stale_parts
from rol_hashing.io import atomic_savez, save_figure
from rol_hashing.retrieval.codes import check_bits, read_npz
from rol_hashing.retrieval.encode import (
    check_batch_size,
    codes_key,
    encode,
    encode_parts,
    load_run_model,
)
from rol_hashing.retrieval.index import HammingIndex
from rol_hashing.retrieval.relevance import Relevance
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
# The PNG strip shows at most this many results (the table lists them all).
STRIP_MAX = 50
# The strip's query thumbnail is decoded at least this many pixels a side.
STRIP_QUERY_SIDE = 512


@dataclass(frozen=True)
class SearchResult:
    """One ranked gallery item: 1-based rank, record id, image path (None for in-memory
    data), Hamming distance, and relevance to the query (None when the query's label is
    unknown)."""

    rank: int
    id: str
    path: str | None
    distance: int
    relevant: bool | None


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


def _build_index(run: Run, record, split, batch_size: int, verbose: int) -> Path:
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
        key=np.array(json.dumps(index_key(run, record, split), sort_keys=True)),
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


def _fresh_index(run: Run, record, split, verbose: int) -> GalleryIndex:
    """The saved index when it is the run's (its key and items match the model and the
    gallery), else built again; the line printed says why."""
    expected = index_key(run, record, split)
    why = _index_stale(run, record, split, expected)
    if why:
        if verbose or why != "missing":
            print(f"index of {run.path} rebuilt: {why}")
        _build_index(run, record, split, 64, verbose)
    return load_gallery_index(run.path, bits=run.bits)


def _index_stale(run: Run, record, split, expected: dict) -> str:
    """Why the saved index is not the run's ("" when it is)."""
    if not (run.path / INDEX_FILE).is_file() or not (run.path / ITEMS_FILE).is_file():
        return "missing"
    try:
        gallery = load_gallery_index(run.path, bits=run.bits)
    except InputError as err:
        return str(err).split("; rebuild it")[0]
    differ = stale_parts(gallery.key, expected)
    if differ:
        return "made from another " + ", ".join(differ)
    if gallery.ids.tolist() != list(split.gallery):
        return f"{run.path / ITEMS_FILE}: its ids are not the gallery's, in the split's order"
    labels = np.asarray(record.labels)[record.index_of(list(split.gallery))]
    if gallery.labels.shape != labels.shape or not np.array_equal(gallery.labels, labels):
        return f"{run.path / ITEMS_FILE}: its labels are not the data set's"
    return ""


def decode_query(image_path: str | Path, input_size: int) -> np.ndarray:
    """A query image file as uint8 RGB (H, W, 3), decoded exactly as the same file is in
    the gallery (``decode_for_model``); ImageError names a bad file."""
    return decode_for_model(image_path, input_size)


def encode_image(model, image_path: str | Path, input_size: int, bits: int) -> np.ndarray:
    """One image file -> its code, bool (bits,); ImageError names an unreadable file."""
    return encode_pixels(model, decode_query(image_path, input_size), input_size, bits)


def encode_pixels(model, pixels: np.ndarray, input_size: int, bits: int) -> np.ndarray:
    """One decoded image, uint8 RGB (H, W, 3) -> its code, bool (bits,)."""
    x = np.asarray(preprocess_image(pixels, input_size))[None]
    batch = (x, np.zeros(1, np.int64), np.zeros(1, np.int64))
    return encode(model, [batch], bits=bits, verbose=0).codes[0]


def query_label(
    record: DatasetRecord, image_path: str | Path, label: str | None
) -> np.ndarray | None:
    """The query's label in the record's form ((,) class id or (C,) multi-hot), or None.

    ``label`` (a class name) wins; else the label of the record image at the same
    resolved path; else None (relevance unknown).
    """
    if label is not None:
        if label not in record.class_names:
            raise InputError(
                f"unknown class {label!r} for data set {record.name!r}; classes: "
                + ", ".join(record.class_names)
            )
        c = record.class_names.index(label)
        if not record.multilabel:
            return np.asarray(c)
        hot = np.zeros(record.num_classes, np.uint8)
        hot[c] = 1
        return hot
    if record.paths is None:
        return None
    target = Path(image_path).resolve()
    for i, path in enumerate(record.paths):
        if Path(path).resolve() == target:
            return np.asarray(record.labels[i])
    return None


def _relevant(query: np.ndarray | None, labels: np.ndarray) -> list[bool | None]:
    """Relevance of result ``labels`` (k,) or (k, C) to the query's label (None: unknown)."""
    if query is None:
        return [None] * len(labels)
    relevance = Relevance(query[None], labels, 1, len(labels))
    return [bool(v) for v in relevance(slice(None), np.arange(len(labels))[None])[0]]


def search_image(
    run_dir: str | Path,
    image_path: str | Path,
    top: int = 10,
    label: str | None = None,
    out_png: str | Path | None = None,
    verbose: int = 0,
) -> list[SearchResult]:
    """Ranks the run's gallery against one image file.

    Args:
        run_dir: a finished hashing run folder; its index is built if missing or stale.
        image_path: any image file PIL reads (JPEG, PNG, ...).
        top: results to return, 1 <= top <= the gallery size.
        label: the query's class name, for relevance when the image is not one of the
            data set's own images.
        out_png: also write the strip of the query and its results there
            (``write_strip_png``).
        verbose: 1 prints progress when the index has to be built.

    Returns:
        ``top`` ``SearchResult``s, nearest first (ties in gallery order).
    """
    if out_png is not None and Path(out_png).is_dir():
        raise InputError(f"--out {out_png} is a folder; give a .png file name")
    run = open_hashing_run(run_dir)
    if run.method == "rol" and run.config.model.rol_mask != "predicted":
        raise InputError(
            f"{run.path} takes its masks from the {run.config.model.rol_mask!r} source, which "
            "a new image does not have; search a run with model.rol_mask: predicted"
        )
    image_path = Path(image_path)
    require_file(image_path, "query image", expected="an image file")
    # a bad file fails here, before anything is built or written
    pixels = decode_query(image_path, run.config.model.input_size)
    _, record, split = run.load_data()
    check_split_parts(split, run.split)
    check_top(top, len(split.gallery))
    q_label = query_label(record, image_path, label)
    gallery = _fresh_index(run, record, split, verbose)
    model = load_run_model(run, len(record.class_names))
    code = encode_pixels(model, pixels, run.config.model.input_size, run.bits)
    distances, positions = gallery.search(code, top)
    ids = gallery.ids[positions]
    relevant = _relevant(q_label, gallery.labels[positions])
    where = record.index_of(ids.tolist())
    results = [
        SearchResult(
            rank=r + 1,
            id=str(ids[r]),
            path=None if record.paths is None else str(record.paths[where[r]]),
            distance=int(distances[r]),
            relevant=relevant[r],
        )
        for r in range(len(ids))
    ]
    if out_png is not None:
        write_strip_png(image_path, results[:STRIP_MAX], record, out_png)
    return results


def format_results(results: list[SearchResult]) -> str:
    """A plain text table: rank, id, path, distance, relevant (yes/no/?); ids and paths
    with control characters are escaped."""
    marks = {True: "yes", False: "no", None: "?"}
    rows = [("rank", "id", "distance", "relevant", "path")]
    rows += [
        (str(r.rank), printable(r.id), str(r.distance), marks[r.relevant], printable(r.path or "-"))
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    )


def write_strip_png(
    query_image_path: str | Path,
    results: list[SearchResult],
    record: DatasetRecord,
    out_png: str | Path,
    thumb_inches: float = 1.6,
) -> Path:
    """The query, then each result as a thumbnail titled with its rank and distance and
    framed green (relevant), red (not relevant) or grey (unknown); written atomically."""
    query = decode_image(query_image_path, min_size=STRIP_QUERY_SIDE)
    where = record.index_of([r.id for r in results])
    thumbs = [
        (load_rgb(record, int(i)), r.rank, r.distance, r.relevant)
        for r, i in zip(results, where, strict=True)
    ]
    return save_figure(viz.plot_search_strip(query, thumbs, thumb_inches), out_png)
