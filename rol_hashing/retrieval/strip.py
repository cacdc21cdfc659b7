"""The PNG strip of a search: the query, then its results framed by relevance."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rol_hashing import viz
from rol_hashing.data.images import decode_image
from rol_hashing.data.pipeline import load_rgb
from rol_hashing.io import save_figure
from rol_hashing.retrieval.results import SearchResult

if TYPE_CHECKING:
    from rol_hashing.data.record import DatasetRecord

# The PNG strip shows at most this many results (the table lists them all).
STRIP_MAX = 50
# The strip's query thumbnail is decoded at least this many pixels a side.
STRIP_QUERY_SIDE = 512


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
