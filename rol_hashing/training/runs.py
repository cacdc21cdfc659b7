"""A run folder: config, split, per-epoch checkpoints, logs, final model, curves.

Layout of ``runs/<name>/``::

    config.yaml          the ExperimentConfig used
    split.json           the data split (hashing runs)
    checkpoints/epoch_NNN.keras   model + optimizer state after epoch NNN
    log.csv              one row per finished epoch
    tensorboard/         TensorBoard logs
    model.keras          the final model
    curves.png           training curves from log.csv

Every file is written to a temporary name and renamed, so a process killed at
any moment leaves the previous version loadable.
"""

from __future__ import annotations

import csv
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras

from rol_hashing.atomic import atomic_path
from rol_hashing.data.fileio import NoSpaceError, atomic_write_text
from rol_hashing.retrieval.figures import save_figure
from rol_hashing.saving import load_model

CHECKPOINT_RE = re.compile(r"^epoch_(\d{3,})\.keras$")
MIN_FREE_BYTES = 200 * 2**20
KEEP_CHECKPOINTS = 2


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run folder."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def split(self) -> Path:
        return self.path / "split.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def log(self) -> Path:
        return self.path / "log.csv"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def model(self) -> Path:
        return self.path / "model.keras"

    @property
    def curves(self) -> Path:
        return self.path / "curves.png"

    @property
    def masks(self) -> Path:
        return self.path / "masks"


def hashing_run_name(dataset: str, method: str, bits: int) -> str:
    """``<dataset>-<method>-<bits>b``, e.g. ``awa2-rol-48b``."""
    return f"{dataset}-{method}-{bits}b"


def prepare_run_dir(path: str | Path, min_free_bytes: int = MIN_FREE_BYTES) -> RunDir:
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
    run = RunDir(path)
    run.checkpoints.mkdir(exist_ok=True)
    return run


def atomic_save_model(model: keras.Model, path: str | Path) -> None:
    """``model.save`` to a temporary ``.keras`` file in the same folder, then rename."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def checkpoint_path(run: RunDir, epoch: int) -> Path:
    """Checkpoint after (1-based) ``epoch``."""
    return run.checkpoints / f"epoch_{epoch:03d}.keras"


def save_checkpoint(model: keras.Model, run: RunDir, epoch: int) -> Path:
    """Saves model + optimizer state after ``epoch``; keeps the newest two."""
    path = checkpoint_path(run, epoch)
    atomic_save_model(model, path)
    for old, _ in list_checkpoints(run)[:-KEEP_CHECKPOINTS]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run: RunDir) -> list[tuple[Path, int]]:
    """``(path, epoch)`` of every checkpoint, oldest first."""
    if not run.checkpoints.is_dir():
        return []
    found = []
    for p in run.checkpoints.iterdir():
        m = CHECKPOINT_RE.match(p.name)
        if m:
            found.append((p, int(m.group(1))))
    return sorted(found, key=lambda t: t[1])


def load_last_checkpoint(run: RunDir) -> tuple[keras.Model, int] | None:
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


def truncate_log(run: RunDir, epochs_done: int) -> None:
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


def plot_curves(log_path: str | Path, out_png: str | Path, title: str = "") -> Path:
    """Plots every logged quantity against the epoch (loss-like on the left)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = read_log(log_path)
    epochs = [e + 1 for e in columns.pop("epoch", [])]
    columns.pop("learning_rate", None)
    losses = {k: v for k, v in columns.items() if "loss" in k}
    others = {k: v for k, v in columns.items() if "loss" not in k}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, group, label in ((axes[0], losses, "loss"), (axes[1], others, "metric")):
        for key, values in sorted(group.items()):
            ax.plot(epochs[: len(values)], values, marker="o", ms=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if group:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    try:
        return save_figure(fig, out_png, dpi=100)
    finally:
        plt.close(fig)
