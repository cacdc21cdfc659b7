"""Query-by-example on a trained run (``rol-hashing search``): one image file against the
run's gallery index, nearest first (ties in gallery order).

The parts: ``gallery_index`` (the saved index, built or rebuilt when not the run's),
``query`` (the image decoded and prepared exactly as the gallery's files, then encoded),
``results`` (``SearchResult`` and the text table) and ``strip`` (the PNG strip).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rol_hashing.data.fileio import require_file
from rol_hashing.errors import InputError
from rol_hashing.retrieval.encode import (
    load_run_model,
)
from rol_hashing.retrieval.gallery_index import check_top, fresh_index
from rol_hashing.retrieval.query import decode_query, encode_pixels, query_label, relevance_of
from rol_hashing.retrieval.results import SearchResult
from rol_hashing.retrieval.strip import STRIP_MAX, write_strip_png
from rol_hashing.training.layout import (
    check_split_parts,
    open_hashing_run,
)

if TYPE_CHECKING:
    from rol_hashing.data.record import DatasetRecord
    from rol_hashing.retrieval.gallery_index import GalleryIndex
    from rol_hashing.training.layout import Run


def check_searchable(run: Run) -> None:
    """InputError unless a new image can be encoded by the run: a ROL run must compute its
    masks itself (``model.rol_mask: predicted``)."""
    if run.method == "rol" and run.config.model.rol_mask != "predicted":
        raise InputError(
            f"{run.path} takes its masks from the {run.config.model.rol_mask!r} source, which "
            "a new image does not have; search a run with model.rol_mask: predicted"
        )


def rank(
    gallery: GalleryIndex,
    record: DatasetRecord,
    code: np.ndarray,
    top: int,
    query_label: np.ndarray | None,
) -> list[SearchResult]:
    """The ``top`` gallery items nearest to ``code`` (bool (bits,)), ties in gallery
    order, each with its relevance to ``query_label`` (None: unknown)."""
    distances, positions = gallery.search(code, top)
    ids = gallery.ids[positions]
    relevant = relevance_of(query_label, gallery.labels[positions])
    where = record.index_of(ids.tolist())
    return [
        SearchResult(
            rank=r + 1,
            id=str(ids[r]),
            path=None if record.paths is None else str(record.paths[where[r]]),
            distance=int(distances[r]),
            relevant=relevant[r],
        )
        for r in range(len(ids))
    ]


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
    check_searchable(run)
    image_path = Path(image_path)
    require_file(image_path, "query image", expected="an image file")
    # a bad file fails here, before anything is built or written
    pixels = decode_query(image_path, run.config.model.input_size)
    _, record, split = run.load_data()
    check_split_parts(split, run.split)
    check_top(top, len(split.gallery))
    q_label = query_label(record, image_path, label)
    gallery = fresh_index(run, record, split, verbose)
    model = load_run_model(run, len(record.class_names))
    code = encode_pixels(model, pixels, run.config.model.input_size, run.bits)
    results = rank(gallery, record, code, top, q_label)
    if out_png is not None:
        write_strip_png(image_path, results[:STRIP_MAX], record, out_png)
    return results
