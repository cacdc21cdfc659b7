"""Steps shared by the segmentation and hashing trainers."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import keras

from rol_hashing.data.fileio import atomic_write_text
from rol_hashing.training.config import ExperimentConfig
from rol_hashing.training.runs import (
    RunDir,
    list_checkpoints,
    load_last_checkpoint,
    prepare_run_dir,
)


def open_run(path: Path, config: ExperimentConfig, resume: bool, overwrite: bool) -> RunDir:
    """Prepares the run folder and writes the config used.

    A folder with checkpoints needs ``resume`` (continue) or ``overwrite``
    (start again); without either it is an error, so nothing is lost by accident.
    """
    run = prepare_run_dir(path)
    existing = list_checkpoints(run)
    if existing and not (resume or overwrite):
        raise FileExistsError(
            f"{run.path} already holds checkpoints up to epoch {existing[-1][1]}; pass "
            "--resume to continue that run or --overwrite to start it again"
        )
    if overwrite and not resume:
        for p in (run.checkpoints, run.tensorboard):
            shutil.rmtree(p, ignore_errors=True)
        for p in (run.log, run.model, run.curves):
            p.unlink(missing_ok=True)
        run.checkpoints.mkdir(exist_ok=True)
    atomic_write_text(run.config, config.to_yaml())
    return run


def resume_or_build(run: RunDir, resume: bool, build) -> tuple[keras.Model, int]:
    """The last checkpoint's model and epoch when resuming, else ``(build(), 0)``."""
    if resume:
        found = load_last_checkpoint(run)
        if found is not None:
            model, epoch = found
            print(f"resuming {run.path} after epoch {epoch}")
            return model, epoch
        print(f"--resume: no checkpoint in {run.checkpoints}; starting at epoch 1")
    return build(), 0


def write_json(path: Path, content: dict) -> None:
    """Atomic, indented JSON."""
    atomic_write_text(path, json.dumps(content, indent=1, sort_keys=True) + "\n")


class Stopwatch:
    """Seconds since construction."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start
