"""The layout of a run folder: every file name (defined once, here) and the ``Run`` class.

``runs/<name>/``::

    config.yaml          the ExperimentConfig used (hashing runs: with method and bits)
    split.json           the data split (hashing runs)
    checkpoints/epoch_NNN.keras   model + optimizer state after epoch NNN
    log.csv              one row per finished epoch
    tensorboard/         TensorBoard logs
    model.keras          the final model
    curves.png           training curves from log.csv
    masks/               the cached reliability masks (rol runs)
    train_info.json      what a finished hashing run was trained with, and its key
    metrics.json         segmentation runs: val pixel accuracy and mean IoU; hashing
                         runs: ``rol-hashing evaluate``'s MAP (with ``metrics.md``)
    codes_query.npz, codes_gallery.npz   the code caches of ``rol-hashing evaluate``
    index.npz, index_items.npz           the search index of ``rol-hashing index``
    .lock                the lock a training holds (one writer per folder)

``--overwrite`` removes every file above but the lock before training again, so no
result of the earlier run survives beside the new one (``DERIVED_DIRS``,
``DERIVED_FILES``). Checkpoints, the log and resuming are ``checkpoints.py``; opening,
checking and locking a folder for a training is ``run.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from rol_hashing.constants import METHODS
from rol_hashing.data.fileio import optional_file, read_json
from rol_hashing.data.registry import DatasetSpec, get_dataset_spec
from rol_hashing.data.splits import Split, load_split
from rol_hashing.errors import InputError
from rol_hashing.training.config import ExperimentConfig, load_run_config

if TYPE_CHECKING:
    from rol_hashing.data.record import DatasetRecord

CONFIG_FILE = "config.yaml"
SPLIT_FILE = "split.json"
CHECKPOINTS_DIR = "checkpoints"
LOG_FILE = "log.csv"
TENSORBOARD_DIR = "tensorboard"
MODEL_FILE = "model.keras"
CURVES_FILE = "curves.png"
MASKS_DIR = "masks"
TRAIN_INFO_FILE = "train_info.json"
SEG_METRICS_FILE = "metrics.json"
METRICS_JSON = "metrics.json"
METRICS_MD = "metrics.md"
QUERY_CODES = "codes_query.npz"
GALLERY_CODES = "codes_gallery.npz"
INDEX_FILE = "index.npz"
ITEMS_FILE = "index_items.npz"
LOCK_FILE = ".lock"
# What a run folder holds besides config.yaml (folders, then files): ``--overwrite``
# removes all of them, so nothing of the earlier run is read as the new run's.
DERIVED_DIRS = (CHECKPOINTS_DIR, TENSORBOARD_DIR, MASKS_DIR)
DERIVED_FILES = (
    SPLIT_FILE,
    LOG_FILE,
    MODEL_FILE,
    CURVES_FILE,
    TRAIN_INFO_FILE,
    METRICS_JSON,
    METRICS_MD,
    QUERY_CODES,
    GALLERY_CODES,
    INDEX_FILE,
    ITEMS_FILE,
)


@dataclass(frozen=True)
class Run:
    """A run folder: the paths inside it and, read on first use, its config.

    ``method`` and ``bits`` come from the saved config (runs written before they were
    saved there: from ``train_info.json``); a folder's name is never parsed.
    """

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def split(self) -> Path:
        return self.path / SPLIT_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def log(self) -> Path:
        return self.path / LOG_FILE

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD_DIR

    @property
    def model(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def curves(self) -> Path:
        return self.path / CURVES_FILE

    @property
    def masks(self) -> Path:
        return self.path / MASKS_DIR

    @property
    def train_info(self) -> Path:
        return self.path / TRAIN_INFO_FILE

    @cached_property
    def config(self) -> ExperimentConfig:
        """The ``config.yaml`` the run was trained with."""
        return load_run_config(self.path)

    @cached_property
    def method(self) -> str:
        """ "ssdh" or "rol"; ValueError for a folder that is not a hashing run."""
        return str(self._hashing_setting("method"))

    @cached_property
    def bits(self) -> int:
        """The code length; ValueError for a folder that is not a hashing run."""
        return int(self._hashing_setting("bits"))

    def check_hashing(self) -> None:
        """Reads ``config.yaml`` and checks that it names a hashing run's method and bits.

        Raises:
            FileNotFoundError: no ``config.yaml``.
            ValueError: the folder is not a hashing run.
        """
        for key in ("method", "bits"):
            self._hashing_setting(key)

    def _hashing_setting(self, key: str):
        value = getattr(self.config, key)
        source = self.config_file
        if value is None and optional_file(self.train_info):
            value, source = self._train_info().get(key), self.train_info
        if value is None:
            raise InputError(
                f"{self.path} is not a hashing run folder: its {CONFIG_FILE} has no {key!r} "
                f"(and there is no {TRAIN_INFO_FILE} that says it)"
            )
        if key == "method" and value not in METHODS:
            raise InputError(f"{source}: 'method' must be one of {list(METHODS)}, got {value!r}")
        if key == "bits" and (type(value) is not int or value < 1):
            raise InputError(f"{source}: 'bits' must be a positive integer, got {value!r}")
        return value

    def _train_info(self) -> dict:
        """``train_info.json`` of an older run, checked to be a JSON object."""
        path = self.train_info
        data = read_json(path, "JSON file")
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a JSON object, found {type(data).__name__}")
        return data

    def train_command(self) -> str:
        """The command that trains (or resumes) this hashing run."""
        c = self.config
        return (
            f"`rol-hashing train-hash --config experiments/{c.dataset}.yaml --profile "
            f"{c.profile} --method {self.method} --bits {self.bits} --resume` (or `make "
            f"train-hash DATASET={c.dataset} METHOD={self.method} BITS={self.bits} "
            f"PROFILE={c.profile}`)"
        )

    def load_data(
        self, record: DatasetRecord | None = None
    ) -> tuple[DatasetSpec, DatasetRecord, Split]:
        """The run's data set spec, its record (from ``config.data_root``, or ``record``
        when the caller already loaded that root) and its split."""
        spec = get_dataset_spec(self.config.dataset)
        if record is None:
            record = spec.load(self.config.data_root)
        if not self.split.is_file():
            raise FileNotFoundError(
                f"{self.split} not found: the run's split is missing; retrain with "
                f"{self.train_command()}"
            )
        return spec, record, load_split(self.split, record)


def hashing_run_name(dataset: str, method: str, bits: int) -> str:
    """``<dataset>-<method>-<bits>b``, e.g. ``awa2-rol-48b``."""
    return f"{dataset}-{method}-{bits}b"


def hashing_run_dir(config: ExperimentConfig, method: str, bits: int) -> Path:
    """``<runs_dir>/<dataset>-<method>-<bits>b``."""
    return Path(config.runs_dir) / hashing_run_name(config.dataset, method, bits)


def segmentation_run_dir(config: ExperimentConfig) -> Path:
    """``<runs_dir>/<segmentation.run_name>``."""
    return Path(config.runs_dir) / config.segmentation.run_name


def open_hashing_run(run_dir: str | Path) -> Run:
    """Checks that ``run_dir`` is a trained hashing run and reads what it was trained with.

    Raises:
        FileNotFoundError: no such folder, no ``config.yaml`` or no ``model.keras``; the
            message names the command that makes it.
        ValueError: the folder does not say which method and code length it holds.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(
            f"run folder {path} does not exist; train one with `rol-hashing train-hash` "
            "(make train-hash DATASET=... BITS=...)"
        )
    run = Run(path)
    run.check_hashing()
    if not run.model.is_file():
        raise FileNotFoundError(
            f"{run.model} not found: the run has not finished training; make it with "
            f"{run.train_command()}"
        )
    return run


def check_split_parts(split: Split, source: Path) -> None:
    """ValueError naming ``source`` when the split has no query or no gallery image."""
    for part in ("query", "gallery"):
        if not getattr(split, part):
            raise InputError(f"{source}: the {part} set is empty; there is nothing to evaluate")
