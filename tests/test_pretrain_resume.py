"""An interrupted pre-training resumes (``rol-hashing pretrain --resume``).

A ``pretrain`` process stopped at a fault point in epoch 2 (not after a guessed time)
and killed with SIGKILL leaves the checkpoint of epoch 1; ``--resume`` continues from
it and writes the same backbone, bit for bit, as a run that was never stopped. A
checkpoint of another pre-training is refused, naming the file.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import reaped, sigkill, start_cli, wait_for_line

from rol_hashing.cli.main import main
from rol_hashing.data.generated import make_generated_dataset
from rol_hashing.training.pretrain import checkpoint_paths


def _argv(pool: Path, out: Path, *extra: str) -> list[str]:
    return [
        *("pretrain", "--config", "folders", "--profile", "cpu", "--pool", str(pool)),
        *("--input-size", "32", "--width", "0.0625", "--epochs", "2", "--batch-size", "8"),
        *("--verbose", "2", "--out", str(out)),
        *extra,
    ]


def _weights(path: Path) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: (
                found.update({name: obj[()]}) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return found


@pytest.mark.slow
@pytest.mark.graph
def test_a_killed_pretraining_resumes_to_the_same_backbone(tmp_path, capsys):
    pool = (
        make_generated_dataset(
            tmp_path / "pool", num_images=32, num_seg_images=4, image_size=32, num_classes=2
        )
        / "classes"
    )
    whole = tmp_path / "whole.h5"
    assert main(_argv(pool, whole)) == 0, capsys.readouterr().err
    assert not any(p.exists() for p in checkpoint_paths(whole))  # removed at the end

    out = tmp_path / "resumed.h5"
    proc = start_cli(_argv(pool, out), "train_batch:epoch=2,batch=1")
    with reaped(proc):
        wait_for_line(proc, "FAULT train_batch")
        sigkill(proc)
    model, meta = checkpoint_paths(out)
    assert model.is_file() and not out.exists()
    assert json.loads(meta.read_text())["epochs_done"] == 1

    # another schedule's checkpoint is refused, and left as it was
    capsys.readouterr()
    assert main(_argv(pool, out, "--resume", "--learning-rate", "1e-3")) != 0
    err = capsys.readouterr().err
    assert str(model) in err and "not a checkpoint of this pre-training" in err
    assert "differs in: schedule" in err
    assert model.is_file()

    assert main(_argv(pool, out, "--resume")) == 0, capsys.readouterr().err
    shown = capsys.readouterr().out
    assert "after epoch 1/2" in shown
    assert [line for line in shown.splitlines() if line.startswith("Epoch")] == ["Epoch 2/2"]
    assert not model.exists() and not meta.exists()
    a, b = _weights(whole), _weights(out)
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


class _StopError(Exception):
    pass


@pytest.mark.slow
def test_a_streamed_pretraining_with_turns_and_crops_resumes_to_the_same_backbone(
    tmp_path, monkeypatch
):
    import keras

    import rol_hashing.training.pretrain as pretrain
    from rol_hashing.data.generated import load_generated
    from rol_hashing.training.config import load_config

    root = make_generated_dataset(
        tmp_path / "pool", num_images=40, num_seg_images=4, image_size=32, num_classes=2
    )
    record = load_generated(root)
    config = load_config("folders", "cpu", {"model": {"input_size": 32, "width": 0.0625}})
    kwargs = dict(epochs=2, batch_size=8, verbose=0, stream=True, augment="crop_colour")
    idx = np.arange(len(record))
    pretrain.pretrain_on_record(record, idx, tmp_path / "whole.h5", config, 0, **kwargs)

    class StopInEpoch2(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise _StopError

    monkeypatch.setattr(pretrain, "fault_callbacks", lambda: [StopInEpoch2()])
    out = tmp_path / "resumed.h5"
    with pytest.raises(_StopError):
        pretrain.pretrain_on_record(record, idx, out, config, 0, **kwargs)
    monkeypatch.setattr(pretrain, "fault_callbacks", lambda: [])
    pretrain.pretrain_on_record(record, idx, out, config, 0, resume=True, **kwargs)
    a, b = _weights(tmp_path / "whole.h5"), _weights(out)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize("stream", [False, True])
def test_augmented_pretraining_takes_every_batch_without_a_keras_warning(tmp_path, stream):
    """Crops and colour feed Keras a generator; it is told the number of batches, so it
    gives no "ran out of data" warning (streamed and in memory)."""
    import rol_hashing.training.pretrain as pretrain
    from rol_hashing.data.generated import load_generated
    from rol_hashing.training.config import load_config

    root = make_generated_dataset(
        tmp_path / "pool", num_images=30, num_seg_images=4, image_size=32, num_classes=2
    )
    record = load_generated(root)
    config = load_config("folders", "cpu", {"model": {"input_size": 32, "width": 0.0625}})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = pretrain.pretrain_on_record(
            record, np.arange(len(record)), tmp_path / "b.h5", config, 0,
            epochs=2, batch_size=8, verbose=0, stream=stream, augment="crop_colour",
        )  # fmt: skip
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    assert report["images"] == 30 and 0.0 <= report["train_accuracy"] <= 1.0
