"""Interrupted training and bad output folders.

A ``train-hash`` process killed with SIGKILL in the middle of an epoch and started
again with ``--resume`` finishes the configured epochs, logs each epoch exactly
once and leaves a final model that loads. An unwritable or full output folder is
refused before training starts.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
from helpers import reaped, sigkill, start_cli, wait_for_line

from rol_hashing.cli.main import main
from rol_hashing.data.generated import make_generated_dataset
from rol_hashing.saving import load_model
from rol_hashing.training.checkpoints import list_checkpoints
from rol_hashing.training.layout import Run

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 3


def train_command(data_root: Path, runs: Path, *extra: str) -> list[str]:
    # 80 training images in batches of 16: 5 batches per epoch (the kill lands in batch 3
    # of epoch 2 through a fault point, not after a guessed time)
    return [
        *("train-hash", "--config", str(REPO / "experiments" / "generated.yaml")),
        *("--profile", "cpu", "--data-root", str(data_root), "--runs-dir", str(runs)),
        *("--input-size", "32", "--width", "0.125", "--epochs", str(EPOCHS)),
        *("--batch-size", "16", "--method", "ssdh", "--bits", "12"),
        *("--backbone-weights", "none", "--verbose", "2"),
        *extra,
    ]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("interrupted") / "gen"
    make_generated_dataset(root, num_images=160, num_seg_images=16, image_size=48, num_classes=4)
    return root


@pytest.mark.slow
@pytest.mark.graph  # 3 epochs of several steps: traced steps are quicker here
def test_sigkill_mid_epoch_then_resume_finishes_every_epoch_once(data_root, tmp_path):
    runs = tmp_path / "runs"
    run = Run(runs / "generated-ssdh-12b")
    # the process stops itself at the start of batch 3 of epoch 2, whatever the speed
    proc = start_cli(train_command(data_root, runs), "train_batch:epoch=2,batch=3")
    with reaped(proc):
        seen = wait_for_line(proc, "FAULT train_batch")
        assert any(line.startswith(f"Epoch 2/{EPOCHS}") for line in seen)
        assert (run.checkpoints / "epoch_001.keras").is_file()
        sigkill(proc)
    # killed inside epoch 2: its checkpoint was never written
    assert [epoch for _, epoch in list_checkpoints(run)] == [1]
    assert not run.model.exists()

    resumed = subprocess.run(
        [sys.executable, "-m", "rol_hashing", *train_command(data_root, runs, "--resume")],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout and "after epoch 1" in resumed.stdout
    with open(run.log, newline="") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(range(EPOCHS))
    assert [epoch for _, epoch in list_checkpoints(run)] == [EPOCHS - 1, EPOCHS]
    model = load_model(run.model)
    assert tuple(model.input_shape[1:]) == (32, 32, 3) and model.outputs


def _cli_args(data_root: Path, runs: Path) -> list[str]:
    return train_command(data_root, runs)[:-2] + ["--verbose", "0"]


def test_unwritable_output_folder_is_refused_before_training(data_root, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(_cli_args(data_root, blocker / "runs")) == 2
    err = capsys.readouterr().err
    assert "error: run folder" in err and "is not writable" in err
    assert "Traceback" not in err


def test_full_output_disk_is_refused_before_training(data_root, tmp_path, capsys, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 2**20, 2**20))
    runs = tmp_path / "runs"
    assert main(_cli_args(data_root, runs)) == 2
    err = capsys.readouterr().err
    assert "1 MiB free; training needs at least 200 MiB" in err
    run = Run(runs / "generated-ssdh-12b")
    assert not list_checkpoints(run) and not run.log.exists() and not run.config_file.exists()
