"""Reusing what an experiment made before, by the one freshness rule (``rol_hashing.freshness``).

The demo, the ablation, ``make fashion`` and the benchmarks make backbones, segmentation
streams and hashing runs, then evaluate them. Each is reused only when the key it was
stored with is the key of what the experiment asks for now (the config, the images and
labels, the bytes of every input file, the code version); otherwise it is made again:

- a backbone: ``<file>.h5`` and its sidecar ``<file>.json`` (``freshness.write_sidecar``:
  the key and the ``.h5``'s digest, so a new file beside an old sidecar is not reused);
- a segmentation run: the key in its ``metrics.json`` (``segmentation_run_key``);
- a hashing run: the key in its ``train_info.json`` (``hashing_run_key``) and, for its
  numbers, the key in its ``metrics.json`` (``evaluation.evaluate.fresh_metrics``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from rol_hashing.data.fileio import read_json
from rol_hashing.data.record import DatasetRecord
from rol_hashing.data.registry import get_dataset_spec
from rol_hashing.errors import InputError
from rol_hashing.evaluation.evaluate import evaluate_run, fresh_metrics
from rol_hashing.freshness import is_fresh, make_key, read_sidecar, records_parts, write_sidecar
from rol_hashing.training.config import ExperimentConfig
from rol_hashing.training.hashing import stale_hashing_run, train_hashing
from rol_hashing.training.layout import SEG_METRICS_FILE
from rol_hashing.training.run import stale_run
from rol_hashing.training.segmentation import segmentation_run_key, train_segmentation


def backbone_key(
    config: ExperimentConfig,
    seed: int,
    schedule: tuple[int, float, int],
    record: DatasetRecord,
    indices=None,
    **extra: Any,
) -> dict:
    """The key of a backbone pre-trained with ``config``'s model and augmentation, the
    ``(epochs, learning rate, batch size)`` schedule and ``seed`` on ``record[indices]``
    (ids, labels, pixels; default every image); ``extra`` parts as given."""
    h = config.hashing
    return make_key(
        "backbone",
        seed=seed,
        model=dataclasses.asdict(config.model) | {"backbone_weights": None},
        augment=[h.augment, h.augment_mirror],
        schedule=list(schedule),
        **records_parts(record, indices),
        **extra,
    )


def fresh_result(path: Path, key: dict, what: str = "result") -> dict | None:
    """The JSON mapping stored at ``path`` when its ``"key"`` is ``key``; None when the
    file is missing, unreadable (``data.fileio.read_json``), not a mapping or stale."""
    try:
        stored = read_json(path, what)
    except (OSError, InputError):
        return None
    return stored if isinstance(stored, dict) and is_fresh(stored.get("key"), key) else None


def backbone(out: Path, key: dict, make: Callable[[], dict[str, Any]]) -> tuple[dict, bool]:
    """``(report, made)``: the report of the backbone ``out`` when its sidecar holds ``key``
    and ``out``'s digest, else ``make()`` (which writes ``out``) and a new sidecar."""
    sidecar = out.with_suffix(".json")
    stored = read_sidecar(sidecar, out, key)
    if stored is not None and isinstance(stored.get("report"), dict):
        return stored["report"], False
    report = make()
    write_sidecar(sidecar, out, key, report=report)
    return report, True


def segmentation(
    config: ExperimentConfig, run_dir: Path, verbose: int = 0
) -> tuple[dict[str, Any], bool]:
    """``(metrics, made)`` of the segmentation run of ``config`` in ``run_dir``: reused when
    its key is ``segmentation_run_key(config)``, else trained again from scratch."""
    made = bool(stale_run(run_dir, segmentation_run_key(config), SEG_METRICS_FILE))
    if made:
        keras.utils.set_random_seed(config.seed)
        train_segmentation(config, overwrite=True, run_dir=run_dir, verbose=verbose)
    metrics = json.loads((run_dir / SEG_METRICS_FILE).read_text(encoding="utf-8"))
    return metrics, made


def hashing(
    config: ExperimentConfig,
    method: str,
    bits: int,
    run_dir: Path,
    record: DatasetRecord | None = None,
    verbose: int = 0,
    shared_masks: Path | None = None,
) -> tuple[dict[str, Any], bool]:
    """``(metrics, made)`` of a hashing run: reused when its key is the run ``config``
    asks for (and evaluated again unless its ``metrics.json`` is fresh), else trained
    again (``overwrite``) and evaluated."""
    if record is None:
        record = get_dataset_spec(config.dataset).load(config.data_root)
    done = dataclasses.replace(config, method=method, bits=int(bits))
    made = bool(stale_hashing_run(done, run_dir, record))
    if made:
        keras.utils.set_random_seed(config.seed)
        train_hashing(
            config, method, bits, overwrite=True, run_dir=run_dir, verbose=verbose, record=record
        )
    metrics = None if made else fresh_metrics(run_dir, record)
    if metrics is None:
        metrics = evaluate_run(run_dir, verbose=0, record=record, shared_masks=shared_masks)
    return metrics, made
