"""One run folder, the ``Run`` class: its files, checkpoints, log and curves.

Layout of ``runs/<name>/`` (every name defined once, here)::

    config.yaml          the ExperimentConfig used (hashing runs: with method and bits)
    split.json           the data split (hashing runs)
    checkpoints/epoch_NNN.keras   model + optimizer state after epoch NNN
    log.csv              one row per finished epoch
    tensorboard/         TensorBoard logs
    model.keras          the final model
    curves.png           training curves from log.csv
    masks/               the cached reliability masks (rol runs)
    train_info.json      what a finished hashing run was trained with
    metrics.json         segmentation runs: val pixel accuracy and mean IoU; hashing
                         runs: ``rol-hashing evaluate``'s MAP (with ``metrics.md``)
    codes_query.npz, codes_gallery.npz   the code caches of ``rol-hashing evaluate``
    index.npz, index_items.npz           the search index of ``rol-hashing index``
    .lock                the lock a training holds (one writer per folder)

``--overwrite`` removes every file above but the lock before training again, so no
result of the earlier run survives beside the new one.

Every file is written to a temporary name and renamed, so a process killed at
any moment leaves the previous version loadable.
"""

from __future__ import annotations

import csv
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import keras

import rol_hashing.training.optim  # noqa: F401  (registers CaffeSGD for checkpoints)
from rol_hashing import viz
from rol_hashing.constants import METHODS
from rol_hashing.data.fileio import optional_file, read_json
from rol_hashing.data.registry import DatasetSpec, get_dataset_spec
from rol_hashing.data.splits import Split, load_split
from rol_hashing.errors import InputError
from rol_hashing.freshness import file_digest, make_key, records_parts, stale_parts
from rol_hashing.io import NoSpaceError, atomic_save_model, atomic_write_text, save_figure
from rol_hashing.saving import load_model
from rol_hashing.training.config import ExperimentConfig, absolute_paths, load_run_config

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

CHECKPOINT_RE = re.compile(r"^epoch_(\d{3,})\.keras$")
MIN_FREE_BYTES = 200 * 2**20
KEEP_CHECKPOINTS = 2


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


def prepare_run_dir(path: str | Path, min_free_bytes: int = MIN_FREE_BYTES) -> Run:
    """Creates the folder and proves it writable with enough free space, before training.

    Raises:
        PermissionError: the folder cannot be created or written.
        NoSpaceError: (an OSError) less than ``min_free_bytes`` free on its disk.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-") as probe:
            probe.write(b"ok")
            probe.flush()
    except OSError as err:
        raise PermissionError(f"run folder {path} is not writable: {err}") from err
    free = shutil.disk_usage(path).free
    if free < min_free_bytes:
        raise NoSpaceError(
            f"run folder {path} has {free / 2**20:.0f} MiB free; training needs at least "
            f"{min_free_bytes / 2**20:.0f} MiB for checkpoints and logs"
        )
    run = Run(path)
    run.checkpoints.mkdir(exist_ok=True)
    return run


def checkpoint_path(run: Run, epoch: int) -> Path:
    """Checkpoint after (1-based) ``epoch``."""
    return run.checkpoints / f"epoch_{epoch:03d}.keras"


def save_checkpoint(model: keras.Model, run: Run, epoch: int) -> Path:
    """Saves model + optimizer state after ``epoch``; keeps the newest two."""
    path = checkpoint_path(run, epoch)
    atomic_save_model(model, path)
    for old, _ in list_checkpoints(run)[:-KEEP_CHECKPOINTS]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run: Run) -> list[tuple[Path, int]]:
    """``(path, epoch)`` of every checkpoint, oldest first."""
    if not run.checkpoints.is_dir():
        return []
    found = []
    for p in run.checkpoints.iterdir():
        m = CHECKPOINT_RE.match(p.name)
        if m:
            found.append((p, int(m.group(1))))
    return sorted(found, key=lambda t: t[1])


def load_last_checkpoint(run: Run) -> tuple[keras.Model, int] | None:
    """The newest checkpoint that loads, with its epoch; None when there is none.

    A checkpoint that fails to load (e.g. a disk fault) is reported and the one
    before it is tried.
    """
    for path, epoch in reversed(list_checkpoints(run)):
        try:
            return load_model(path, compile=True), epoch
        except Exception as err:  # noqa: BLE001 - any unreadable file: try the previous one
            print(f"warning: checkpoint {path} does not load ({err}); trying the previous one")
    return None


def _row_epoch(row: list[str], width: int) -> int | None:
    """The 0-based epoch of a complete CSV row; None for a partial or unreadable one."""
    if len(row) != width:
        return None
    try:
        return int(float(row[0]))
    except ValueError:
        return None


def truncate_log(run: Run, epochs_done: int) -> None:
    """Keeps the CSV rows of epochs before ``epochs_done`` (0-based ``epoch`` column < done).

    Rows of later epochs (logged before a kill, without their checkpoint) and partial
    rows (a kill mid-write) are dropped, so a resumed run logs every epoch once.
    """
    if not run.log.is_file():
        return
    if epochs_done == 0:  # nothing kept: start a fresh log (even a half-written header goes)
        run.log.unlink()
        return
    with open(run.log, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    kept = [r for r in body if (e := _row_epoch(r, len(header))) is not None and e < epochs_done]
    if len(kept) != len(body):
        lines = [",".join(header)] + [",".join(r) for r in kept]
        atomic_write_text(run.log, "\n".join(lines) + "\n")


def read_log(path: str | Path) -> dict[str, list[float]]:
    """``log.csv`` as columns of floats (empty dict when missing)."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            try:
                columns.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                continue
    return columns


def check_run_folder(
    path: str | Path, resume: bool, overwrite: bool, config: ExperimentConfig | None = None
) -> None:
    """Reads only (the trainers call it first, before anything is written).

    Raises:
        FileExistsError: ``path`` holds checkpoints or a finished model and neither
            ``resume`` nor ``overwrite`` is given.
        InputError: ``resume`` of a run whose ``config.yaml`` differs from ``config``
            (see ``resume_mismatch``); the message names the differing keys.
    """
    run = Run(Path(path))
    existing = list_checkpoints(run)
    if (existing or run.model.is_file()) and not (resume or overwrite):
        what = (
            f"checkpoints up to epoch {existing[-1][1]}" if existing else f"a finished {MODEL_FILE}"
        )
        raise FileExistsError(
            f"{run.path} already holds {what}; pass --resume to continue that run or "
            "--overwrite to start it again"
        )
    if resume and existing and not run.config_file.is_file():
        raise InputError(
            f"--resume: {run.path} holds checkpoints but no {CONFIG_FILE}, so the settings "
            "they were trained with cannot be checked; restore that file, or start again "
            "with --overwrite"
        )
    if resume and config is not None and run.config_file.is_file():
        differ = resume_mismatch(run.config, absolute_paths(config))
        if differ:
            shown = "; ".join(f"{k}: run has {a!r}, asked {b!r}" for k, a, b in differ[:8])
            raise InputError(
                f"--resume: {run.config_file} was trained with other settings ({shown}); "
                "resume with the run's settings, or train a new run (another --run-dir or "
                "--overwrite)"
            )


# Keys a resumed run may change: the number of epochs (to train longer) and the profile's
# name (a label). A segmentation run ignores the hashing section and a hashing run the
# segmentation section, except the frozen stream the hashing run reads.
RESUME_FREE_KEYS = ("profile", "segmentation.epochs", "hashing.epochs")


def resume_mismatch(
    saved: ExperimentConfig, asked: ExperimentConfig
) -> list[tuple[str, object, object]]:
    """(key, saved value, asked value) of every setting that differs between a run's
    ``config.yaml`` and the config a ``--resume`` asks for (dotted keys, sorted)."""
    a, b = _flat(saved.to_dict()), _flat(asked.to_dict())
    hashing_run = saved.method is not None or asked.method is not None
    ignore = "segmentation." if hashing_run else "hashing."
    out = []
    for key in sorted(set(a) | set(b)):
        if key in RESUME_FREE_KEYS or key.startswith(ignore):
            continue
        if key in ("method", "bits") and a.get(key) is None:  # older runs: not recorded
            continue
        if a.get(key) != b.get(key):
            out.append((key, a.get(key), b.get(key)))
    return out


def _flat(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def open_run(path: Path, config: ExperimentConfig, resume: bool, overwrite: bool) -> Run:
    """Prepares the run folder and writes the config used (paths made absolute).

    A folder with checkpoints needs ``resume`` (continue) or ``overwrite``
    (start again); without either it is an error, so nothing is lost by accident.
    """
    check_run_folder(path, resume, overwrite, config)
    run = prepare_run_dir(path)
    if overwrite and not resume:
        for name in DERIVED_DIRS:
            shutil.rmtree(run.path / name, ignore_errors=True)
        for name in DERIVED_FILES:
            (run.path / name).unlink(missing_ok=True)
        run.checkpoints.mkdir(exist_ok=True)
    atomic_write_text(run.config_file, absolute_paths(config).to_yaml())
    return run


class RunBusyError(InputError):
    """Another process is training into the same run folder."""


@contextmanager
def training_session(path: str | Path) -> Iterator[None]:
    """Holds the run folder's lock for one training, and undoes a failed start.

    The lock (``fcntl.flock`` on ``<run>/.lock``, released by the kernel when the process
    ends, however it ends) lets one process train into a folder at a time. If the body
    raises before the run has a checkpoint or a model, every entry this start created is
    removed (the folder too, when it did not exist before), so a start refused for a bad
    weights file or a full disk leaves no ``config.yaml``, ``split.json`` or
    ``checkpoints/``. An interrupt (Ctrl-C) undoes nothing.

    Raises:
        RunBusyError: another process holds the lock.
        PermissionError: the folder cannot be created.
    """
    path = Path(path)
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        before = set(os.listdir(path))
        lock = open(path / LOCK_FILE, "a")  # noqa: SIM115 - held until the block ends
    except OSError as err:
        raise PermissionError(f"run folder {path} is not writable: {err}") from err
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise RunBusyError(
            f"{path} is in use: another process is training into it (it holds "
            f"{path / LOCK_FILE}); wait for it to end, or train into another --run-dir"
        ) from None
    try:
        yield
    except Exception:
        run = Run(path)
        if not list_checkpoints(run) and not run.model.is_file():
            _undo_start(path, before, created)
        raise
    finally:
        lock.close()  # releases the lock


def _undo_start(path: Path, before: set[str], created: bool) -> None:
    """Removes what a failed start added to ``path`` (all of it, if it made ``path``)."""
    if created:
        shutil.rmtree(path, ignore_errors=True)
        return
    for name in set(os.listdir(path)) - before:
        entry = path / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def resume_or_build(run: Run, resume: bool, build) -> tuple[keras.Model, int]:
    """The last checkpoint's model and epoch when resuming, else ``(build(), 0)``."""
    if resume:
        found = load_last_checkpoint(run)
        if found is not None:
            model, epoch = found
            print(f"resuming {run.path} after epoch {epoch}")
            return model, epoch
        print(f"--resume: no checkpoint in {run.checkpoints}; starting at epoch 1")
    return build(), 0


def plot_curves(run: Run, title: str = "") -> Path:
    """``curves.png``: every quantity of ``log.csv`` against the epoch."""
    return save_figure(viz.plot_training_curves(read_log(run.log), title), run.curves, dpi=100)


def run_key(
    config: ExperimentConfig,
    record: DatasetRecord,
    train_indices,
    inputs: dict[str, Path | None],
) -> dict:
    """The freshness key of a trained run: its config (paths absolute), the training
    images (ids, labels, pixels) and the bytes of each input file (``inputs``: e.g. the
    backbone weights and the segmentation stream; None for one it does not read)."""
    files = {
        name: (file_digest(path) if path is not None else None) for name, path in inputs.items()
    }
    return make_key(
        "run",
        config=absolute_paths(config).to_dict(),
        inputs=files,
        **records_parts(record, train_indices),
    )


def stale_run(run_dir: str | Path, key: dict, key_file: str) -> list[str]:
    """What differs between a finished run and the run ``key`` describes ([] when it can
    be reused): ``["missing"]`` without a model or ``key_file`` (``train_info.json`` of a
    hashing run, ``metrics.json`` of a segmentation run), else ``freshness.stale_parts``
    of the key stored in that file."""
    run = Run(Path(run_dir))
    path = run.path / key_file
    if not run.model.is_file() or not path.is_file():
        return ["missing"]
    try:
        stored = read_json(path, "run record")
    except (OSError, InputError):
        return ["key"]
    return stale_parts(stored.get("key") if isinstance(stored, dict) else None, key)
