"""One writer per run folder, no leftovers from a failed start, nothing stale after
``--overwrite``, no ``--resume`` without the settings (issue 22 cases 5, 6, 8, 20)."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import shutil
from pathlib import Path

import keras
import pytest

from rol_hashing.cli.main import main
from rol_hashing.data.generated import load_generated
from rol_hashing.data.splits import load_split
from rol_hashing.errors import InputError
from rol_hashing.io import NoSpaceError
from rol_hashing.training import run as run_module
from rol_hashing.training.checkpoints import save_checkpoint
from rol_hashing.training.config import load_config
from rol_hashing.training.hashing import train_hashing
from rol_hashing.training.layout import LOCK_FILE, Run
from rol_hashing.training.run import RunBusyError, check_run_folder, open_run

REPO = Path(__file__).resolve().parents[1]


def _config(tiny_runs, **top):
    config = load_config(REPO / "experiments" / "generated.yaml", "cpu", tiny_runs["overrides"])
    return dataclasses.replace(config, **top)


def _argv(tiny_runs, run_dir: Path, *extra: str) -> list[str]:
    return [
        *("train-hash", "--config", str(REPO / "experiments" / "generated.yaml")),
        *("--profile", "cpu", "--data-root", str(tiny_runs["data_root"])),
        *("--run-dir", str(run_dir), "--method", "ssdh", "--epochs", "1"),
        *("--input-size", "32", "--width", "0.125", "--verbose", "0"),
        *extra,
    ]


# ---- case 6: one writer per folder -----------------------------------------------------


def test_a_second_training_into_a_locked_folder_is_refused_in_one_line(tiny_runs, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with open(run_dir / LOCK_FILE, "a") as held:  # another training holds the folder
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        argv = _argv(tiny_runs, run_dir, "--bits", "12", "--backbone-weights", "none")
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "is in use: another process is training into it" in err
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE]  # nothing written


def test_the_lock_is_released_when_a_training_ends(tiny_runs, tmp_path):
    run_dir = tmp_path / "run"
    config = _config(tiny_runs)
    train_hashing(config, "ssdh", 12, run_dir=run_dir, verbose=0)
    with open(run_dir / LOCK_FILE, "a") as probe:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if still held


def test_training_session_refuses_while_held_and_not_after(tmp_path):
    busy = pytest.raises(RunBusyError, match="is in use")
    session = run_module.training_session
    with session(tmp_path / "run"), busy, session(tmp_path / "run"):
        pass
    with run_module.training_session(tmp_path / "run"):
        pass


# ---- case 20: a failed start leaves nothing behind -------------------------------------


@pytest.mark.parametrize("existing", [False, True])
def test_a_bad_weights_file_leaves_no_files(tiny_runs, tmp_path, capsys, existing):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an HDF5 file at all" * 10)
    run_dir = tmp_path / "run"
    if existing:
        run_dir.mkdir()
        (run_dir / "notes.txt").write_text("mine")
    argv = _argv(tiny_runs, run_dir, "--bits", "12", "--backbone-weights", str(bad))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "bad.h5" in err and "Traceback" not in err
    if existing:
        assert sorted(p.name for p in run_dir.iterdir()) == ["notes.txt"]
    else:
        assert not run_dir.exists()


def test_bits_0_is_refused_before_anything_is_written(tiny_runs, tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = _argv(tiny_runs, run_dir, "--bits", "0", "--backbone-weights", "none")
    assert main(argv) == 2
    assert "bits must be a positive integer" in capsys.readouterr().err
    assert not run_dir.exists()


def test_too_little_space_leaves_no_files(tiny_runs, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    real = shutil.disk_usage
    monkeypatch.setattr(run_module.shutil, "disk_usage", lambda p: real(p)._replace(free=2**20))
    with pytest.raises(NoSpaceError, match="MiB free"):
        train_hashing(_config(tiny_runs), "ssdh", 12, run_dir=run_dir, verbose=0)
    assert not run_dir.exists()


def test_a_failure_after_the_first_checkpoint_keeps_the_run(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="later"), run_module.training_session(run_dir):
        run = run_module.prepare_run_dir(run_dir)
        save_checkpoint(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), run, 1)
        raise RuntimeError("later")
    assert [p.name for p in run.checkpoints.iterdir()] == ["epoch_001.keras"]


# ---- case 5: --overwrite keeps nothing of the earlier run ------------------------------


def test_overwrite_removes_the_earlier_runs_metrics_masks_and_split(tiny_runs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_runs["runs"]["ssdh"], run_dir)
    for name in ("metrics.json", "metrics.md", "codes_query.npz", "index.npz"):
        (run_dir / name).write_text("{}")
    (run_dir / "masks").mkdir(exist_ok=True)
    (run_dir / "masks" / "train.npy").write_bytes(b"old")
    old_split = json.loads((run_dir / "split.json").read_text())
    train_hashing(
        _config(tiny_runs, seed=7), "ssdh", 12, run_dir=run_dir, overwrite=True, verbose=0
    )
    names = {p.name for p in run_dir.iterdir()}
    assert not names & {"metrics.json", "metrics.md", "codes_query.npz", "index.npz", "masks"}
    record = load_generated(tiny_runs["data_root"])
    new_split = load_split(run_dir / "split.json", record)
    assert json.loads((run_dir / "split.json").read_text()) != old_split
    assert Run(run_dir).config.seed == 7 and new_split.train


# ---- case 8: --resume needs the run's config.yaml ---------------------------------------


def test_resume_of_checkpoints_without_config_yaml_is_refused(tiny_runs, tmp_path):
    run_dir = tmp_path / "run"
    config = dataclasses.replace(_config(tiny_runs), method="ssdh", bits=12)
    run = open_run(run_dir, config, resume=False, overwrite=False)
    save_checkpoint(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), run, 1)
    run.config_file.unlink()
    with pytest.raises(InputError, match="holds checkpoints but no config.yaml"):
        check_run_folder(run_dir, True, False, config)
