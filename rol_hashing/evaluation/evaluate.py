"""Evaluating a trained hashing run (readings §2): encode its query and gallery, MAP@k.

A run folder (``runs/<dataset>-<method>-<bits>b/``, written by ``train_hashing``)
holds ``config.yaml``, ``split.json`` and ``model.keras``. Evaluation adds the code
caches of ``rol_hashing.retrieval.encode`` (``codes_query.npz``, ``codes_gallery.npz``) and::

    metrics.json        MAP@k, MAP over the whole ranking, P@{1,10,100,1000},
                        precision/recall within Hamming radius 2, counts
    metrics.md          the same as a short markdown summary

Every file is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rol_hashing.clock import Stopwatch
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError, check_int, printable
from rol_hashing.evaluation.map import chance_precision, ranking_metrics
from rol_hashing.freshness import is_fresh, key_id, make_key
from rol_hashing.io import atomic_write_text, check_file_target
from rol_hashing.retrieval.encode import (
    GALLERY_CODES,
    QUERY_CODES,
    check_batch_size,
    encode_parts,
    part_keys,
)
from rol_hashing.training.layout import (
    METRICS_JSON,
    METRICS_MD,
    check_split_parts,
    open_hashing_run,
)

PRECISION_RANKS = (1, 10, 100, 1000)
RADIUS = 2


def resolve_top_k(top_k: int | None, default: int, num_gallery: int) -> int:
    """The k of MAP@k: ``top_k`` if given (at most the gallery), else ``default`` capped
    at the gallery size (small data sets have fewer than 1000 gallery images)."""
    if top_k is None:
        return min(default, num_gallery)
    top_k = check_int(top_k, "top_k")
    if top_k > num_gallery:
        raise InputError(f"top_k={top_k} is larger than the gallery ({num_gallery} images)")
    return int(top_k)


def evaluate_run(
    run_dir: str | Path,
    top_k: int | None = None,
    batch_size: int = 64,
    verbose: int = 1,
    record: DatasetRecord | None = None,
    shared_masks: Path | None = None,
) -> dict[str, Any]:
    """Encodes (or reuses) the run's codes and writes ``metrics.json`` and ``metrics.md``.

    Args:
        run_dir: a finished hashing run folder.
        top_k: the k of MAP@k; default the data set's (1000), capped at the gallery size.
            An explicit value above the gallery size is an error.
        batch_size: images per encoding batch.
        verbose: 0 silent, 1 progress bars and the summary.
        record: the run's data set already loaded (default: loaded from its config).
        shared_masks: a folder where the ROL runs of one segmentation stream share the
            query and gallery masks (``encode_parts``); default: each run computes its own.

    Returns:
        The metrics as written to ``metrics.json`` (values in [0, 1]).
    """
    clock = Stopwatch()
    check_batch_size(batch_size)
    run = open_hashing_run(run_dir)
    check_file_target(  # the outputs, before any encoding
        run.path / METRICS_JSON,
        run.path / METRICS_MD,
        run.path / QUERY_CODES,
        run.path / GALLERY_CODES,
    )
    spec, record, split = run.load_data(record)
    check_split_parts(split, run.split)
    k = resolve_top_k(top_k, spec.top_k, len(split.gallery))
    keys = part_keys(run, record, split)  # one digest of the images serves both uses
    query, gallery, reused = encode_parts(
        run, record, split, batch_size, verbose, shared_masks, keys=keys
    )
    m = ranking_metrics(
        query.codes, query.labels, gallery.codes, gallery.labels, top_k=k, radius=RADIUS
    )
    metrics = {
        "dataset": run.config.dataset,
        "method": run.method,
        "bits": run.bits,
        "profile": run.config.profile,
        "top_k": m.top_k,
        "map_at_k": m.map_at_k,
        "map_full": m.map_full,
        "chance": chance_precision(query.labels, gallery.labels),
        "precision_at": {str(r): m.precision_at(r) for r in PRECISION_RANKS if r <= m.top_k},
        "radius": m.radius,
        "precision_radius": m.precision_radius,
        "recall_radius": m.recall_radius,
        "num_queries": m.num_queries,
        "num_gallery": m.num_gallery,
        "codes": "cached" if reused else "encoded",
        "seconds": round(clock(), 2),
        "precision_curve": m.precision_curve.tolist(),
    }
    metrics["key"] = metrics_key(keys, m.top_k)
    # the view first, the file that holds the key last: a failed second write leaves the
    # old metrics.json, whose key a reader finds stale, never a new one beside an old view
    atomic_write_text(run.path / METRICS_MD, metrics_markdown(metrics, run.path.name))
    atomic_write_text(run.path / METRICS_JSON, json.dumps(metrics, indent=1) + "\n")
    if verbose:
        print(metrics_markdown(metrics, run.path.name))
    return metrics


def metrics_key(keys: dict[str, dict], top_k: int) -> dict:
    """The freshness key of a run's ``metrics.json``: the keys of the codes it ranks
    (``keys``, as ``part_keys`` makes them: the model file, the images, labels, bits,
    input size, mask source), k and the Hamming radius."""
    return make_key(
        "metrics",
        query=key_id(keys["query"]),
        gallery=key_id(keys["gallery"]),
        top_k=top_k,
        radius=RADIUS,
    )


def fresh_metrics(
    run_dir: str | Path, record: DatasetRecord | None = None, top_k: int | None = None
) -> dict[str, Any] | None:
    """The run's ``metrics.json`` when its key is the run's now (the same model, images,
    labels and k: ``top_k``, default the data set's capped at the gallery); else None."""
    run = open_hashing_run(run_dir)
    path = run.path / METRICS_JSON
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict):
        return None
    spec, record, split = run.load_data(record)
    k = resolve_top_k(top_k, spec.top_k, len(split.gallery))
    expected = metrics_key(part_keys(run, record, split), k)
    return stored if is_fresh(stored.get("key"), expected) else None


def metrics_markdown(metrics: dict[str, Any], title: str) -> str:
    """A short markdown summary of ``evaluate_run``'s metrics (control characters in
    the title or a name escaped)."""
    k = metrics["top_k"]
    r = metrics["radius"]
    rows = [
        (f"MAP@{k}", metrics["map_at_k"]),
        ("MAP (whole ranking)", metrics["map_full"]),
        *([("chance (a random ranking's MAP)", metrics["chance"])] if "chance" in metrics else []),
        *((f"precision@{rank}", value) for rank, value in metrics["precision_at"].items()),
        (f"precision within Hamming radius {r}", metrics["precision_radius"]),
        (f"recall within Hamming radius {r}", metrics["recall_radius"]),
    ]
    lines = [
        f"# {title}",
        "",
        f"{metrics['method']} on {metrics['dataset']} (profile {metrics['profile']}), "
        f"{metrics['bits']}-bit codes; {metrics['num_queries']} queries against "
        f"{metrics['num_gallery']} gallery images.",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {value:.4f} |" for name, value in rows),
        "",
        f"MAP@k as SSDH's precision.m (ties in gallery order; AP over the relevant items "
        f"in the top {k}; queries without one count as 0). Codes {metrics['codes']}; "
        f"{metrics['seconds']:.1f} s.",
        "",
    ]
    return "\n".join(printable(line) for line in lines)
