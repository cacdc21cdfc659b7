"""The paper's Table 2 (MAP@1000, SSDH vs. ROL at 12/24/32/48 bits) reproduced for one
data set: train what is missing, evaluate, and write the table beside the paper's.

Outputs (``<results>/table2_<dataset>.{md,csv,png}``; ``table2_<dataset>_<profile>.*``
for a profile other than ``paper``), all written atomically by
``rol_hashing.experiments.table2_files`` (their columns are described there; the paper's
numbers, the rows and the writers are re-exported here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from rol_hashing.constants import METHODS, PAPER_BITS
from rol_hashing.data.registry import get_dataset_spec
from rol_hashing.errors import InputError
from rol_hashing.evaluation.evaluate import evaluate_run, fresh_metrics
from rol_hashing.experiments.table2_files import (
    CSV_COLUMNS,
    METHOD_NAMES,
    PAPER_TABLE2,
    PRIVATE_SETS,
    Table2Result,
    Table2Row,
    comparable_paper_map,
    paper_map,
    table2_csv,
    table2_figure,
    table2_markdown,
    table2_stem,
    write_table2,
)
from rol_hashing.retrieval.codes import check_bits
from rol_hashing.training.config import load_config
from rol_hashing.training.hashing import stale_hashing_run, train_hashing
from rol_hashing.training.layout import MODEL_FILE, hashing_run_dir
from rol_hashing.training.segmentation import train_segmentation

__all__ = [
    "CSV_COLUMNS",
    "METHOD_NAMES",
    "PAPER_TABLE2",
    "PRIVATE_SETS",
    "Table2Result",
    "Table2Row",
    "comparable_paper_map",
    "paper_map",
    "run_table2",
    "table2_csv",
    "table2_figure",
    "table2_markdown",
    "table2_stem",
    "write_table2",
]


def run_table2(
    config_path: str | Path,
    profile: str = "paper",
    bits: Sequence[int] = PAPER_BITS,
    methods: Sequence[str] = METHODS,
    data_root: str | Path | None = None,
    results_dir: str | Path = "results",
    train: bool = True,
    overrides: dict | None = None,
    verbose: int = 1,
) -> Table2Result:
    """Trains (skipping finished runs), evaluates and tabulates {methods} x {bits}.

    Args:
        config_path: an experiment YAML (``experiments/<dataset>.yaml``).
        profile: its profile (``paper`` or ``cpu``).
        bits: code lengths.
        methods: among ``ssdh`` and ``rol``.
        data_root: overrides the config's ``data_root``.
        results_dir: where the table files go.
        train: train missing runs (and the segmentation stream ``rol`` needs); with
            False a missing run is an error naming the command that makes it.
        overrides: further config overrides (as ``load_config``).
        verbose: 0 quiet, 1 progress.

    A run whose ``model.keras`` exists is not trained again, if it was trained from what
    the config describes now (its freshness key; otherwise the table stops, naming what
    differs); an interrupted one is resumed from its last checkpoint. A run is evaluated
    again unless its ``metrics.json`` has the run's key now.
    """
    bits = [check_bits(b) for b in bits]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InputError(f"methods must be among {METHODS}, got {list(methods)}")
    extra = dict(overrides or {})
    if data_root is not None:
        extra["data_root"] = str(data_root)
    config = load_config(config_path, profile, extra)
    record = get_dataset_spec(config.dataset).load(config.data_root)
    if train and "rol" in methods:
        _ensure_segmentation(config, verbose)

    rows = []
    for b in bits:
        for method in methods:
            run_dir = hashing_run_dir(config, method, b)
            if not (run_dir / MODEL_FILE).is_file():
                if not train:
                    raise FileNotFoundError(
                        f"{run_dir / MODEL_FILE} not found; train it with `rol-hashing "
                        f"train-hash --config {config_path} --profile {profile} --method "
                        f"{method} --bits {b}` or run table2 with training on"
                    )
                train_hashing(
                    config, method, b, resume=True, verbose=_keras_verbose(verbose), record=record
                )
            else:
                _check_reused(config, method, b, run_dir, record, config_path, profile)
            metrics = _metrics(run_dir, verbose)
            rows.append(
                Table2Row(
                    bits=b,
                    method=method,
                    top_k=int(metrics["top_k"]),
                    map_ours=100.0 * float(metrics["map_at_k"]),
                    map_paper=comparable_paper_map(config.dataset, method, b),
                    run=run_dir,
                )
            )
    return write_table2(rows, config.dataset, profile, results_dir)


def _keras_verbose(verbose: int) -> int | str:
    return "auto" if verbose else 0


def _ensure_segmentation(config, verbose: int) -> None:
    """Trains the segmentation stream when ``hashing.segmentation_model`` is missing."""
    target = Path(config.hashing.segmentation_model)
    if target.is_file():
        return
    run = train_segmentation(config, resume=True, verbose=_keras_verbose(verbose))
    if not target.is_file():
        raise FileNotFoundError(
            f"trained the segmentation stream into {run.model}, but hashing.segmentation_model "
            f"points at {target}; make them agree in the experiment config"
        )


def _check_reused(config, method: str, bits: int, run_dir: Path, record, config_path, profile):
    """A finished run joins the table only when it was trained from what the config
    describes now (its freshness key); else InputError naming what differs."""
    differ = stale_hashing_run(
        dataclasses.replace(config, method=method, bits=bits), run_dir, record
    )
    if differ:
        raise InputError(
            f"{run_dir} was not trained from what {config_path} (profile {profile}) describes "
            f"now: other {', '.join(differ)}; train it again with `rol-hashing train-hash "
            f"--config {config_path} --profile {profile} --method {method} --bits {bits} "
            "--overwrite`, or move it away"
        )


def _metrics(run_dir: Path, verbose: int) -> dict:
    """The run's ``metrics.json`` when its freshness key is the run's now (the same model
    bytes, images and labels, and the data set's k capped at the gallery), else a fresh
    evaluation."""
    metrics = fresh_metrics(run_dir)
    if metrics is not None:
        if verbose:
            print(f"{run_dir.name}: metrics.json is up to date, not evaluated again")
        return metrics
    return evaluate_run(run_dir, verbose=verbose)
