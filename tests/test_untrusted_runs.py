"""Run folders from elsewhere and faults during a run (issue 15): caches bound to what made
them, non-finite weights and masks, resume with other settings, divergence, full or
read-only disks, damaged ``train_info.json``.

The code cache's binding to its model is tested on trained runs in
``test_retrieval_commands.py``.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from rol_hashing.cli.main import build_parser, main
from rol_hashing.cli.train import _config
from rol_hashing.errors import InputError
from rol_hashing.io import NoSpaceError, ReadOnlyError, atomic_write_text
from rol_hashing.models import build_vgg16, load_vgg16_imagenet_weights
from rol_hashing.models.weights import save_vgg16_weights_h5
from rol_hashing.training.checkpoints import list_checkpoints, save_checkpoint
from rol_hashing.training.config import ExperimentConfig
from rol_hashing.training.layout import Run
from rol_hashing.training.loop import TrainingDivergedError, run_epochs
from rol_hashing.training.masks import cached_masks
from rol_hashing.training.run import check_run_folder, open_run, prepare_run_dir

REPO = Path(__file__).resolve().parents[1]


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``folder``: (mtime, size), to prove nothing was written."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ---- non-finite weights -------------------------------------------------------------


def test_backbone_h5_with_nan_weights_is_refused(tmp_path):
    model = build_vgg16("D", input_size=32, width=0.125)
    path = save_vgg16_weights_h5(model, tmp_path / "nan.h5")
    with h5py.File(path, "r+") as f:
        root = f.get("model_weights", f)
        group = root["block2_conv1"]
        name = group.attrs["weight_names"][0]
        name = name.decode() if isinstance(name, bytes) else name
        data = group[name][...]
        data.flat[3] = np.nan
        group[name][...] = data
    with pytest.raises(InputError, match=r"nan.h5: layer 'block2_conv1' holds 1 NaN or infinite"):
        load_vgg16_imagenet_weights(build_vgg16("D", input_size=32, width=0.125), path)


# ---- the mask cache ---------------------------------------------------------------------


def _segmentation_model(seed: int, nan: bool = False) -> keras.Model:
    """A tiny 'segmentation model': (B, 16, 16, 3) -> softmax over 3 classes per pixel."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    outputs = keras.layers.Conv2D(3, 1, activation="softmax")(inputs)
    model = keras.Model(inputs, outputs)
    if nan:
        kernel, bias = model.layers[-1].get_weights()
        kernel[0, 0, 0, 1] = np.nan
        model.layers[-1].set_weights([kernel, bias])
    return model


def _masks(
    tmp_path: Path,
    model: keras.Model,
    model_file: Path,
    ids: list[str],
    images,
    background_index: int = 0,
    pixels: str = "p0",
):
    return cached_masks(
        tmp_path / "masks", "train", model, model_file, ids, images, 16, 4, background_index, pixels
    )


@pytest.fixture
def seg(tmp_path):
    model = _segmentation_model(0)
    path = tmp_path / "seg.keras"
    model.save(path)
    images = np.random.default_rng(0).random((6, 16, 16, 3)).astype("float32") * 2 - 1
    return model, path, images


def test_mask_cache_is_reused_only_while_its_array_is_unchanged(tmp_path, seg, capsys):
    model, path, images = seg
    ids = [f"img{i}" for i in range(6)]
    first = _masks(tmp_path, model, path, ids, images)
    again = _masks(tmp_path, model, path, ids, images)
    assert "reusing" in capsys.readouterr().out
    np.testing.assert_array_equal(first, again)
    for planted in (np.zeros_like(first), np.full_like(first, np.nan)):
        np.save(tmp_path / "masks" / "train.npy", planted)  # same shape and dtype, key kept
        capsys.readouterr()
        result = _masks(tmp_path, model, path, ids, images)
        assert "not the array its key recorded" in capsys.readouterr().out
        np.testing.assert_array_equal(result, first)


def test_mask_cache_of_another_split_or_model_is_recomputed(tmp_path, seg, capsys):
    model, path, images = seg
    ids = [f"img{i}" for i in range(6)]
    first = _masks(tmp_path, model, path, ids, images)
    capsys.readouterr()
    other_ids = [f"other{i}" for i in range(6)]  # another split's cache, copied in
    _masks(tmp_path, model, path, other_ids, images)
    assert "made for another ids; recomputing" in capsys.readouterr().out
    other = _segmentation_model(1)
    other.save(path)  # the same file name, another model
    result = _masks(tmp_path, other, path, ids, images)
    assert "segmentation_model" in capsys.readouterr().out
    assert not np.array_equal(result, first)


def test_mask_cache_sees_new_image_bytes_and_another_background_channel(tmp_path, seg, capsys):
    """Issue 22 case 1: regenerated images under the same ids recompute the masks (the
    key once held only the ids); so does another ``background_index``."""
    model, path, images = seg
    ids = [f"img{i}" for i in range(6)]
    first = _masks(tmp_path, model, path, ids, images, pixels="old")
    capsys.readouterr()
    new_images = images[::-1].copy()
    second = _masks(tmp_path, model, path, ids, new_images, pixels="new")
    assert "made for another images; recomputing" in capsys.readouterr().out
    assert not np.array_equal(first, second)
    _masks(tmp_path, model, path, ids, new_images, background_index=1, pixels="new")
    assert "another background_index" in capsys.readouterr().out


def test_run_masks_keys_on_the_records_pixels(tmp_path, seg, capsys):
    """Through ``run_masks`` (what training and encoding call), the pixels part comes
    from the record: replacing an in-memory image's bytes recomputes."""
    from rol_hashing.data.record import DatasetRecord
    from rol_hashing.training.masks import run_masks

    model, path, images = seg
    pixels = (np.random.default_rng(1).random((6, 16, 16, 3)) * 255).astype("uint8")
    record = DatasetRecord(
        name="t",
        class_names=["a", "b"],
        labels=np.array([0, 1] * 3),
        ids=[f"i{k}" for k in range(6)],
        root=tmp_path,
        images=pixels,
    )
    args = ("predicted", tmp_path / "m", "train", record, np.arange(6), 16, 4)
    run_masks(*args, segmentation_model=model, segmentation_path=path, images=images)
    record.images = pixels[::-1].copy()
    capsys.readouterr()
    run_masks(*args, segmentation_model=model, segmentation_path=path, images=images)
    assert "made for another images" in capsys.readouterr().out


def test_a_segmentation_model_with_nan_weights_gives_an_error_not_masks(tmp_path, seg):
    _, _, images = seg
    bad = _segmentation_model(0, nan=True)
    path = tmp_path / "bad_seg.keras"
    bad.save(path)
    with pytest.raises(InputError, match=r"bad_seg.keras \(R for train.npy\): \d+ NaN"):
        _masks(tmp_path, bad, path, ["a", "b", "c", "d", "e", "f"], images)
    assert not (tmp_path / "masks" / "train.npy").exists()


# ---- divergence -------------------------------------------------------------------------


def _diverging(tmp_path: Path, nan_from_epoch: int):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    run = prepare_run_dir(tmp_path / "run")
    x = np.ones((8, 4), "float32")

    def data(epoch: int):
        xs = x * np.nan if epoch + 1 >= nan_from_epoch else x
        return tf.data.Dataset.from_tensor_slices((xs, np.ones((8, 1), "float32"))).batch(8)

    with pytest.raises(TrainingDivergedError) as info:
        run_epochs(model, run, 3, 0, data, verbose=0)
    return run, str(info.value)


def test_divergence_in_the_first_epoch_says_no_checkpoint_exists(tmp_path):
    run, message = _diverging(tmp_path, nan_from_epoch=1)
    assert not list_checkpoints(run)
    assert "in epoch 1; no checkpoint was written yet" in message
    assert "--overwrite" in message and "is kept" not in message


def test_divergence_later_names_the_checkpoint_on_disk(tmp_path):
    run, message = _diverging(tmp_path, nan_from_epoch=3)
    assert [e for _, e in list_checkpoints(run)] == [1, 2]
    assert "in epoch 3; the newest checkpoint," in message
    assert "epoch_002.keras (epoch 2), is kept" in message


# ---- resume with other settings -------------------------------------------------------


def _train_args(run_dir: Path, *extra: str) -> list[str]:
    return [
        *("train-hash", "--config", str(REPO / "experiments" / "generated.yaml")),
        *("--profile", "cpu", "--data-root", str(run_dir.parent / "no-data-needed")),
        *("--run-dir", str(run_dir), "--method", "ssdh", "--backbone-weights", "none"),
        *("--input-size", "64", "--width", "0.125", "--verbose", "0"),
        *extra,
    ]


def _started_run(tmp_path: Path) -> tuple[Path, ExperimentConfig]:
    """A run folder as train-hash leaves it after epoch 1 (config.yaml, a checkpoint)."""
    run_dir = tmp_path / "run"
    args = build_parser().parse_args(_train_args(run_dir, "--bits", "12"))
    config = dataclasses.replace(
        _config(args, "hashing", {}, data_root=args.data_root), method="ssdh", bits=12
    )
    run = open_run(run_dir, config, resume=False, overwrite=False)
    save_checkpoint(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), run, 1)
    return run_dir, config


def test_resume_with_other_settings_is_refused_naming_them_and_writes_nothing(tmp_path, capsys):
    run_dir, _ = _started_run(tmp_path)
    before = _listing(run_dir)
    argv = _train_args(run_dir, "--bits", "48", "--input-size", "96", "--resume")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "bits: run has 12, asked 48" in err
    assert "model.input_size: run has 64, asked 96" in err
    assert _listing(run_dir) == before


def test_resume_with_the_same_settings_or_more_epochs_passes_the_check(tmp_path):
    run_dir, config = _started_run(tmp_path)
    check_run_folder(run_dir, True, False, config)
    longer = dataclasses.replace(
        config, hashing=dataclasses.replace(config.hashing, epochs=config.hashing.epochs + 5)
    )
    check_run_folder(run_dir, True, False, longer)
    other_seed = dataclasses.replace(config, seed=7)
    with pytest.raises(InputError, match="seed: run has 0, asked 7"):
        check_run_folder(run_dir, True, False, other_seed)


# ---- full or read-only disks ------------------------------------------------------------


def _fail(code: int):
    def raise_(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return raise_


@pytest.mark.parametrize(
    ("code", "error", "words"),
    [
        (errno.ENOSPC, NoSpaceError, "no space left"),
        (errno.EDQUOT, NoSpaceError, "no space left"),
        (errno.EROFS, ReadOnlyError, "read-only"),
    ],
)
def test_a_full_or_read_only_disk_is_a_one_line_error_and_keeps_the_file(
    tmp_path, monkeypatch, code, error, words
):
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")
    monkeypatch.setattr(os, "fsync", _fail(code))
    with pytest.raises(error, match=f"cannot write .*metrics.json: .*{words}"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    run = prepare_run_dir(tmp_path / "run")
    save_checkpoint(model, run, 1)
    monkeypatch.setattr(os, "replace", _fail(errno.ENOSPC))
    with pytest.raises(NoSpaceError, match="epoch_002.keras: no space left"):
        save_checkpoint(model, run, 2)
    assert [e for _, e in list_checkpoints(run)] == [1]
    keras.saving.load_model(list_checkpoints(run)[0][0])


@pytest.mark.slow
@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC])
def test_evaluate_on_a_full_or_read_only_disk_is_one_line(
    tiny_runs, tmp_path, monkeypatch, capsys, code
):
    import shutil

    run = Path(shutil.copytree(tiny_runs["runs"]["ssdh"], tmp_path / "run"))
    monkeypatch.setattr(os, "replace", _fail(code))
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rol-hashing evaluate: error:") and err.count("\n") == 1
    assert "cannot write" in err


# ---- train_info.json of older runs ------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("[1, 2]", "expected a JSON object, found list"),
        ("{not json", "not a readable JSON file"),
        ("[" * 100000, "not a readable JSON file"),
        ('{"method": "ssdh", "bits": ' + "9" * 5000 + "}", "5000 digits"),
        (json.dumps({"bits": 12}), "has no 'method'"),
        (json.dumps({"method": "evil", "bits": 12}), "'method' must be one of"),
        (json.dumps({"method": "ssdh", "bits": "12"}), "'bits' must be a positive integer"),
        (json.dumps({"method": "ssdh", "bits": [12, 48]}), "'bits' must be a positive integer"),
    ],
)
def test_damaged_train_info_is_an_input_error_naming_it(tmp_path, content, match):
    atomic_write_text(tmp_path / "config.yaml", ExperimentConfig().to_yaml())
    (tmp_path / "train_info.json").write_text(content)
    with pytest.raises(InputError, match=match):
        Run(tmp_path).check_hashing()
