"""Evaluating a trained hashing run (SPEC sec. 2): encode its query and gallery, MAP@k.

A run folder (``runs/<dataset>-<method>-<bits>b/``, written by ``train_hashing``)
holds ``config.yaml``, ``split.json`` and ``model.keras``. Evaluation adds::

    codes_query.npz     query codes, labels and ids (``save_codes``), a cache
    codes_gallery.npz   gallery codes, labels and ids, a cache
    metrics.json        MAP@k, MAP over the whole ranking, P@{1,10,100,1000},
                        precision/recall within Hamming radius 2, counts
    metrics.md          the same as a short markdown summary

The code caches are reused while they are newer than ``model.keras`` and hold exactly
the split's ids; otherwise they are encoded again. Every file is written atomically.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rol_hashing.data.fileio import atomic_write_text
from rol_hashing.data.registry import DatasetSpec, get_dataset_spec
from rol_hashing.data.splits import Split, load_split
from rol_hashing.retrieval.codes import EncodedSet, check_bits, load_codes, save_codes

if TYPE_CHECKING:
    from rol_hashing.data.record import DatasetRecord
    from rol_hashing.training.config import ExperimentConfig

QUERY_CODES = "codes_query.npz"
GALLERY_CODES = "codes_gallery.npz"
METRICS_JSON = "metrics.json"
METRICS_MD = "metrics.md"
PRECISION_RANKS = (1, 10, 100, 1000)
RADIUS = 2
METHODS = ("ssdh", "rol")


@dataclass(frozen=True)
class HashingRun:
    """A finished hashing run folder: its config, method and code length."""

    path: Path
    config: ExperimentConfig
    method: str
    bits: int

    @property
    def model(self) -> Path:
        return self.path / "model.keras"

    @property
    def split(self) -> Path:
        return self.path / "split.json"

    def train_command(self) -> str:
        """The command that trains (or resumes) this run."""
        c = self.config
        return (
            f"`rol-hashing train-hash --config experiments/{c.dataset}.yaml --profile "
            f"{c.profile} --method {self.method} --bits {self.bits} --resume` (or `make "
            f"train-hash DATASET={c.dataset} METHOD={self.method} BITS={self.bits} "
            f"PROFILE={c.profile}`)"
        )


def open_hashing_run(run_dir: str | Path) -> HashingRun:
    """Checks that ``run_dir`` is a trained hashing run and reads what it was trained with.

    Raises:
        FileNotFoundError: no such folder, no ``config.yaml`` or no ``model.keras``; the
            message names the command that makes it.
        ValueError: the folder does not say which method and code length it holds.
    """
    from rol_hashing.training.config import load_run_config

    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(
            f"run folder {path} does not exist; train one with `rol-hashing train-hash` "
            "(make train-hash DATASET=... BITS=...)"
        )
    config = load_run_config(path)
    method, bits = _method_and_bits(path, config.dataset)
    run = HashingRun(path, config, method, bits)
    if not run.model.is_file():
        raise FileNotFoundError(
            f"{run.model} not found: the run has not finished training; make it with "
            f"{run.train_command()}"
        )
    return run


def _method_and_bits(path: Path, dataset: str) -> tuple[str, int]:
    """From ``train_info.json``, else from the folder name ``<dataset>-<method>-<bits>b``."""
    info_path = path / "train_info.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        return str(info["method"]), check_bits(info["bits"])
    match = re.fullmatch(rf"{re.escape(dataset)}-({'|'.join(METHODS)})-(\d+)b", path.name)
    if match is None:
        raise ValueError(
            f"{path} is not a hashing run folder: it has no train_info.json and its name is "
            f"not <dataset>-<method>-<bits>b (e.g. {dataset}-rol-48b)"
        )
    return match.group(1), int(match.group(2))


def load_run_data(run: HashingRun) -> tuple[DatasetSpec, DatasetRecord, Split]:
    """The run's data set spec, its record (from ``config.data_root``) and its split."""
    spec = get_dataset_spec(run.config.dataset)
    record = spec.load(run.config.data_root)
    if not run.split.is_file():
        raise FileNotFoundError(
            f"{run.split} not found: the run's split is missing; retrain with {run.train_command()}"
        )
    return spec, record, load_split(run.split, record)


def check_split_parts(split: Split, source: Path) -> None:
    """ValueError naming ``source`` when the split has no query or no gallery image."""
    for part in ("query", "gallery"):
        if not getattr(split, part):
            raise ValueError(f"{source}: the {part} set is empty; there is nothing to evaluate")


def encode_split(
    run_dir: str | Path, batch_size: int = 64, verbose: int = 1
) -> tuple[EncodedSet, EncodedSet]:
    """Codes of the run's query and gallery images, cached in the run folder.

    Returns:
        (query, gallery) ``EncodedSet``s: codes bool (N, bits), labels (N,) int64 or
        (N, C) uint8 multi-hot, ids (N,) str (the record's ids, in split order).
    """
    run = open_hashing_run(run_dir)
    _, record, split = load_run_data(run)
    check_split_parts(split, run.split)
    query, gallery, _ = encode_parts(run, record, split, batch_size, verbose)
    return query, gallery


def encode_parts(
    run: HashingRun, record: DatasetRecord, split: Split, batch_size: int, verbose: int
) -> tuple[EncodedSet, EncodedSet, bool]:
    """(query, gallery, reused): cached codes where valid, else one pass of the model."""
    parts = {"query": split.query, "gallery": split.gallery}
    files = {"query": run.path / QUERY_CODES, "gallery": run.path / GALLERY_CODES}
    cached = {part: _cached_codes(files[part], run, parts[part]) for part in parts}
    if all(c is not None for c in cached.values()):
        return cached["query"], cached["gallery"], True

    from rol_hashing.data.pipeline import make_image_dataset
    from rol_hashing.retrieval.encode import encode
    from rol_hashing.saving import load_model

    model = load_model(run.model)
    indices = split.indices(record)
    ids = np.asarray(record.ids)
    out = {}
    for part in parts:
        if cached[part] is not None:
            out[part] = cached[part]
            continue
        if verbose:
            print(f"encoding {len(parts[part])} {part} images with {run.model}")
        dataset = make_image_dataset(
            record,
            getattr(indices, part),
            run.config.model.input_size,
            batch_size,
            with_index=True,
        )
        encoded = encode(model, dataset, bits=run.bits, verbose=verbose)
        labels = encoded.labels.astype(np.uint8) if record.multilabel else encoded.labels
        out[part] = EncodedSet(encoded.codes, labels, ids[encoded.ids.astype(np.int64)])
        save_codes(files[part], out[part].codes, out[part].ids, out[part].labels)
    return out["query"], out["gallery"], False


def _cached_codes(path: Path, run: HashingRun, ids: tuple[str, ...]) -> EncodedSet | None:
    """The codes at ``path`` if newer than the model, of the run's bits and ``ids``."""
    if not path.is_file() or path.stat().st_mtime_ns <= run.model.stat().st_mtime_ns:
        return None
    try:
        encoded = load_codes(path, bits=run.bits)
    except ValueError:  # another version or code length: a cache, so encode again
        return None
    if encoded.ids.dtype.kind != "U" or encoded.ids.tolist() != list(ids):
        return None
    return encoded


def resolve_top_k(top_k: int | None, default: int, num_gallery: int) -> int:
    """The k of MAP@k: ``top_k`` if given (at most the gallery), else ``default`` capped
    at the gallery size (small data sets have fewer than 1000 gallery images)."""
    if top_k is None:
        return min(default, num_gallery)
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if top_k > num_gallery:
        raise ValueError(f"top_k={top_k} is larger than the gallery ({num_gallery} images)")
    return int(top_k)


def evaluate_run(
    run_dir: str | Path, top_k: int | None = None, batch_size: int = 64, verbose: int = 1
) -> dict[str, Any]:
    """Encodes (or reuses) the run's codes and writes ``metrics.json`` and ``metrics.md``.

    Args:
        run_dir: a finished hashing run folder.
        top_k: the k of MAP@k; default the data set's (1000), capped at the gallery size.
            An explicit value above the gallery size is an error.
        batch_size: images per encoding batch.
        verbose: 0 silent, 1 progress bars and the summary.

    Returns:
        The metrics as written to ``metrics.json`` (values in [0, 1]).
    """
    from rol_hashing.metrics import ranking_metrics

    clock = time.perf_counter()
    run = open_hashing_run(run_dir)
    spec, record, split = load_run_data(run)
    check_split_parts(split, run.split)
    k = resolve_top_k(top_k, spec.top_k, len(split.gallery))
    query, gallery, reused = encode_parts(run, record, split, batch_size, verbose)
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
        "precision_at": {str(r): m.precision_at(r) for r in PRECISION_RANKS if r <= m.top_k},
        "radius": m.radius,
        "precision_radius": m.precision_radius,
        "recall_radius": m.recall_radius,
        "num_queries": m.num_queries,
        "num_gallery": m.num_gallery,
        "codes": "cached" if reused else "encoded",
        "seconds": round(time.perf_counter() - clock, 2),
        "precision_curve": m.precision_curve.tolist(),
    }
    atomic_write_text(run.path / METRICS_JSON, json.dumps(metrics, indent=1) + "\n")
    atomic_write_text(run.path / METRICS_MD, metrics_markdown(metrics, run.path.name))
    if verbose:
        print(metrics_markdown(metrics, run.path.name))
    return metrics


def metrics_markdown(metrics: dict[str, Any], title: str) -> str:
    """A short markdown summary of ``evaluate_run``'s metrics."""
    k = metrics["top_k"]
    r = metrics["radius"]
    rows = [
        (f"MAP@{k}", metrics["map_at_k"]),
        ("MAP (whole ranking)", metrics["map_full"]),
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
    return "\n".join(lines)
