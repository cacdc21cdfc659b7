"""A run's checkpoints, its ``log.csv`` and resuming from them.

Every checkpoint is written to a temporary name and renamed, so a process killed at any
moment leaves the previous one loadable; the newest ``KEEP_CHECKPOINTS`` are kept.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import keras

import rol_hashing.training.optim  # noqa: F401  (registers CaffeSGD for checkpoints)
from rol_hashing.io import atomic_save_model, atomic_write_text
from rol_hashing.saving import load_model
from rol_hashing.training.layout import Run

CHECKPOINT_RE = re.compile(r"^epoch_(\d{3,})\.keras$")
KEEP_CHECKPOINTS = 2


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
