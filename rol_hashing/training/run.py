"""Opening a run folder for a training: proved writable, checked against ``--resume`` and
``--overwrite``, locked for one writer, undone when the start fails; and the freshness
key of a finished run (``run_key``, ``stale_run``)."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rol_hashing.data.fileio import read_json
from rol_hashing.errors import InputError
from rol_hashing.freshness import file_digest, make_key, records_parts, stale_parts
from rol_hashing.io import NoSpaceError, atomic_write_text
from rol_hashing.training.checkpoints import list_checkpoints
from rol_hashing.training.config import ExperimentConfig, absolute_paths
from rol_hashing.training.layout import (
    CONFIG_FILE,
    DERIVED_DIRS,
    DERIVED_FILES,
    LOCK_FILE,
    MODEL_FILE,
    Run,
)

if TYPE_CHECKING:
    from rol_hashing.data.record import DatasetRecord

MIN_FREE_BYTES = 200 * 2**20


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


def run_key(
    config: ExperimentConfig,
    record: DatasetRecord,
    train_indices,
    inputs: dict[str, Path | None],
    **extra: object,
) -> dict:
    """The freshness key of a trained run: its config (paths absolute), the training
    images (ids, labels, pixels), the bytes of each input file (``inputs``: e.g. the
    backbone weights and the segmentation stream; None for one it does not read) and any
    ``extra`` parts."""
    files = {
        name: (file_digest(path) if path is not None else None) for name, path in inputs.items()
    }
    return make_key(
        "run",
        config=absolute_paths(config).to_dict(),
        inputs=files,
        **records_parts(record, train_indices),
        **extra,
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
