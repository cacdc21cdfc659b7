"""What a search returns (``SearchResult``) and its plain-text table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rol_hashing.errors import printable

if TYPE_CHECKING:
    pass


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
