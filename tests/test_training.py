"""Training: configs, schedules, tiny runs whose loss falls, resume, mask cache, distribute."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from helpers import PLAIN_MODEL, PLAIN_SOLVER, graph_steps

from rol_hashing.data.generated import make_generated_dataset
from rol_hashing.data.registry import get_dataset_spec
from rol_hashing.errors import InputError
from rol_hashing.models import build_hashing_model, copy_weights_by_name, ssdh_losses
from rol_hashing.models.losses import MaskedSparseCrossEntropy
from rol_hashing.models.metrics import PixelAccuracy
from rol_hashing.training.checkpoints import read_log
from rol_hashing.training.config import (
    ConfigError,
    ExperimentConfig,
    experiment_names,
    find_experiment,
    load_config,
    parse_config,
)
from rol_hashing.training.hashing import train_hashing
from rol_hashing.training.inputs import HashingInputs, epoch_order
from rol_hashing.training.layout import Run
from rol_hashing.training.masks import compute_masks
from rol_hashing.training.optim import CaffeSGD, step_learning_rate
from rol_hashing.training.run import prepare_run_dir
from rol_hashing.training.segmentation import train_segmentation

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "scripts" / "train_resume.py"
TINY_MODEL = {"input_size": 32, "width": 0.125, **PLAIN_MODEL}
# From scratch (backbone none), these tests train with SGD (the paper's solver, not the
# cpu recipe's AdamW with warm-up) at 1e-2 then 1e-3.
FROM_SCRATCH_RATES = {
    **PLAIN_SOLVER,
    "learning_rate": 1e-2,
    "learning_rate_after_drop": 1e-3,
}


@pytest.fixture(scope="module")
def gen_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train") / "gen"
    make_generated_dataset(root, num_images=160, num_seg_images=64, image_size=48, num_classes=4)
    return root


def _cfg(gen_root: Path, runs: Path, **hashing):
    return load_config(
        REPO / "experiments" / "generated.yaml",
        "cpu",
        {
            "data_root": str(gen_root),
            "runs_dir": str(runs),
            "model": {**TINY_MODEL, "backbone_weights": "none"},
            "segmentation": {"data_root": str(gen_root / "VOCdevkit/VOC2012"), "epochs": 4},
            "hashing": {
                "epochs": 4,
                "batch_size": 16,
                "segmentation_model": str(runs / "generated-seg" / "model.keras"),
                **FROM_SCRATCH_RATES,
                **hashing,
            },
        },
    )


# ---- configs ---------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((REPO / "experiments").glob("*.yaml")))
@pytest.mark.parametrize("profile", ["paper", "cpu"])
def test_every_experiment_config_loads(path, profile):
    cfg = load_config(path, profile)
    get_dataset_spec(cfg.dataset)
    if profile == "paper":
        assert (cfg.model.input_size, cfg.model.width) == (224, 1.0)
        assert (cfg.hashing.epochs, cfg.hashing.batch_size) == (40, 40)
        assert (cfg.segmentation.epochs, cfg.segmentation.batch_size) == (40, 64)
        assert cfg.hashing.momentum == 0.9 and cfg.hashing.weight_decay == 5e-4
    else:
        assert cfg.model.input_size < 224 and cfg.model.width < 1.0


def test_shipped_experiments_are_found_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no experiments/ here: the package data is used
    assert set(experiment_names()) >= {"awa2", "cifar10", "folders", "generated", "voc2012"}
    assert load_config("awa2").dataset == "awa2"
    assert load_config("experiments/generated.yaml", "demo").profile == "demo"
    assert find_experiment("voc2012").parent.name == "configs"
    with pytest.raises(FileNotFoundError, match="shipped experiments: awa2"):
        load_config("imagenet")


def test_experiment_files_hold_only_what_differs_from_the_defaults():
    """Every value at a file's top level differs from the dataclass default (``dataset``
    aside: each file names its data set)."""
    defaults = ExperimentConfig().to_dict()
    for path in sorted((REPO / "experiments").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        data.pop("profiles", None)
        data.pop("dataset")
        for key, value in data.items():
            if isinstance(value, dict):
                for inner, v in value.items():
                    assert v != defaults[key][inner], f"{path.name}: {key}.{inner}"
            else:
                assert value != defaults[key], f"{path.name}: {key}"


def test_run_config_reads_the_old_vgg_key_and_knows_no_method(tmp_path):
    config = ExperimentConfig().to_dict()
    config["model"]["config"] = config["model"].pop("vgg")  # as saved before the rename
    config["model"]["config"] = "D"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = Run(tmp_path)
    assert run.config.model.vgg == "D"
    with pytest.raises(InputError, match="not a hashing run folder.*'bits'"):
        run.bits  # noqa: B018
    (tmp_path / "train_info.json").write_text('{"method": "rol", "bits": 24}')
    assert (Run(tmp_path).method, Run(tmp_path).bits) == ("rol", 24)


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'hashing.epoch'"):
        parse_config({"hashing": {"epoch": 3}})
    with pytest.raises(ConfigError, match="'model.input_size' must be int"):
        parse_config({"model": {"input_size": "big"}})
    with pytest.raises(ConfigError, match="no profile 'gpu'"):
        parse_config({}, profile="gpu")
    bad = tmp_path / "bad.yaml"
    bad.write_text("hashing: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match="experiments"):
        load_config(tmp_path / "missing.yaml")


def test_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("dataset: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError):
        load_config(evil)


# ---- schedules and objectives ------------------------------------------------


def test_paper_learning_rate_at_epochs_20_21_22():
    cfg = load_config(REPO / "experiments" / "awa2.yaml")
    h = cfg.hashing
    lr = [
        step_learning_rate(e, h.learning_rate, h.lr_drop_epoch, h.learning_rate_after_drop)
        for e in (20, 21, 22)
    ]
    assert lr == [1e-3, 1e-4, 1e-4]


def test_epoch_order_depends_only_on_seed_and_epoch():
    np.testing.assert_array_equal(epoch_order(50, 3, 7), epoch_order(50, 3, 7))
    assert not np.array_equal(epoch_order(50, 3, 7), epoch_order(50, 3, 8))
    assert sorted(epoch_order(50, 3, 7)) == list(range(50))


def test_masked_cross_entropy_ignores_255():
    probs = np.full((1, 2, 2, 3), 1 / 3, "float32")
    probs[0, 0, 0] = [0.8, 0.1, 0.1]
    labels = np.array([[[0, 255], [255, 255]]])
    loss = float(MaskedSparseCrossEntropy()(labels, probs))
    assert loss == pytest.approx(-np.log(0.8), rel=1e-5)
    acc = PixelAccuracy()
    acc.update_state(np.array([[[0, 1], [255, 2]]]), probs)
    assert float(acc.result()) == pytest.approx(1 / 3)


def test_caffe_sgd_couples_weight_decay_with_momentum():
    w = keras.Variable(np.ones((2, 2), "float32"))
    b = keras.Variable(np.ones((2,), "float32"))
    opt = CaffeSGD(learning_rate=0.1, momentum=0.9, l2=0.5)
    zero = [np.zeros((2, 2), "float32"), np.zeros((2,), "float32")]
    opt.apply_gradients(zip(zero, [w, b], strict=True))
    # v = -lr * (g + l2 * w) = -0.05 -> w = 0.95; biases are not decayed.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(w), 0.95, rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(b), 1.0)
    opt.apply_gradients(zip(zero, [w, b], strict=True))
    # v = 0.9 * -0.05 - 0.1 * 0.5 * 0.95 = -0.0925 -> w = 0.8575
    np.testing.assert_allclose(keras.ops.convert_to_numpy(w), 0.8575, rtol=1e-5)
    restored = CaffeSGD.from_config(opt.get_config())
    assert restored.l2 == 0.5


# ---- tiny runs -------------------------------------------------------------


def _losses(run_dir: Path, key: str = "loss") -> list[float]:
    return read_log(run_dir / "log.csv")[key]


@pytest.fixture(scope="module")
def trained(gen_root, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    cfg = _cfg(gen_root, runs, lr_drop_epoch=2)
    keras.utils.set_random_seed(0)
    with graph_steps():  # the traced steps of users' runs, 4 epochs of each
        seg = train_segmentation(cfg, verbose=0)
        hashing = {m: train_hashing(cfg, m, 12, verbose=0) for m in ("ssdh", "rol")}
    return cfg, runs, seg, hashing


def test_segmentation_run_learns_and_writes_its_folder(trained):
    _, _, seg, _ = trained
    loss = _losses(seg.path)
    assert len(loss) == 4 and loss[-1] < loss[0]
    for name in ("config.yaml", "log.csv", "model.keras", "curves.png", "metrics.json"):
        assert (seg.path / name).is_file(), name
    assert any(seg.tensorboard.rglob("events.out.tfevents.*"))
    log = read_log(seg.log)
    assert {"val_mean_iou", "val_pixel_accuracy", "learning_rate"} <= set(log)
    metrics = json.loads((seg.path / "metrics.json").read_text())
    assert metrics["val_images_in_training"] == 0  # generated.yaml trains on train only


@pytest.mark.parametrize("method", ["ssdh", "rol"])
def test_hashing_run_learns_and_writes_its_folder(trained, method):
    cfg, _, _, hashing = trained
    run = hashing[method]
    loss = _losses(run.path)
    assert len(loss) == 4 and loss[-1] < loss[0]
    assert run.path.name == f"generated-{method}-12b"
    for name in ("config.yaml", "split.json", "log.csv", "model.keras", "curves.png"):
        assert (run.path / name).is_file(), name
    assert [p.name for p in sorted(run.checkpoints.iterdir())] == [
        "epoch_003.keras",
        "epoch_004.keras",
    ]
    model = keras.saving.load_model(run.model, safe_mode=True)
    assert not isinstance(model.input, dict)  # the live form, images in
    saved = yaml.safe_load(run.config_file.read_text())
    assert saved["hashing"]["epochs"] == 4
    assert (saved["method"], saved["bits"]) == (method, 12)  # evaluation reads these
    assert (Run(run.path).method, Run(run.path).bits) == (method, 12)
    with open(run.log) as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs == [0, 1, 2, 3]
    if method == "rol":
        assert (run.path / "masks" / "train.npy").is_file()
    # the step schedule as applied by the epoch loop: drop after epoch lr_drop_epoch = 2
    np.testing.assert_allclose(read_log(run.log)["learning_rate"], [1e-2, 1e-2, 1e-3, 1e-3])


def test_mask_cache_gives_equal_losses_and_outputs(trained, gen_root):
    cfg, runs, seg_run, _ = trained
    seg = keras.saving.load_model(seg_run.model, safe_mode=True)
    spec = get_dataset_spec("generated")
    record = spec.load(gen_root)
    idx = np.arange(24)
    live = build_hashing_model("rol", 12, 4, segmentation_model=seg, **TINY_MODEL)
    cached = build_hashing_model("rol", 12, 4, mask_input=True, **TINY_MODEL)
    copy_weights_by_name(live, cached)
    plain = HashingInputs(record, idx, 32, 8, 12)
    masks = compute_masks(seg, plain.images, size=2, verbose=0)
    with_masks = HashingInputs(record, idx, 32, 8, 12, masks=masks, images=plain.images)
    for model in (live, cached):
        model.compile(optimizer="sgd", loss=ssdh_losses())
    loss_live = live.evaluate(plain.dataset(0), verbose=0, return_dict=True)
    loss_cached = cached.evaluate(with_masks.dataset(0), verbose=0, return_dict=True)
    for key in ("loss", "class_loss", "hash_loss"):
        assert loss_live[key] == pytest.approx(loss_cached[key], abs=1e-5), key
    out_live = live.predict(plain.images, verbose=0)
    out_cached = cached.predict({"image": plain.images, "mask": masks}, verbose=0)
    for key in ("hash", "class"):
        np.testing.assert_allclose(out_live[key], out_cached[key], atol=1e-5)


def test_rol_without_segmentation_model_names_the_command(gen_root, tmp_path):
    cfg = _cfg(gen_root, tmp_path, segmentation_model=str(tmp_path / "none.keras"))
    with pytest.raises(FileNotFoundError, match="make train-voc-seg"):
        train_hashing(cfg, "rol", 12, verbose=0)


def test_existing_run_needs_resume_or_overwrite(trained):
    cfg, _, _, _ = trained
    with pytest.raises(FileExistsError, match="--resume"):
        train_hashing(cfg, "ssdh", 12, verbose=0)


def test_missing_imagenet_weights_say_which_file(gen_root, tmp_path):
    cfg = _cfg(gen_root, tmp_path)
    cfg.model.backbone_weights = "auto"
    with pytest.raises(
        FileNotFoundError, match="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ):
        train_hashing(cfg, "ssdh", 12, verbose=0)


def test_unwritable_output_folder_is_detected_first(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(PermissionError, match="not writable"):
        prepare_run_dir(blocker / "run")


def _run_script(mode: str, gen_root: Path, out: Path, timeout: int = 600) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), mode, str(gen_root), str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["resume", pytest.param("resume-levers", marks=pytest.mark.graph)])
def test_interrupted_and_resumed_run_equals_uninterrupted(gen_root, tmp_path, mode):
    """Also with the cpu recipe's levers: AdamW's state, the BN statistics and the
    seeded augmentation all come back with the checkpoint (with the traced steps of
    users' runs; the plain route with eager steps)."""
    out = _run_script(mode, gen_root, tmp_path)
    diff = float(out.split("MAXDIFF")[1].split()[0])
    assert diff == 0.0
    with open(tmp_path / "b" / "generated-ssdh-12b" / "log.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2]


@pytest.mark.slow
@pytest.mark.graph
def test_mirrored_strategy_on_two_logical_cpus(gen_root, tmp_path):
    out = _run_script("mirrored", gen_root, tmp_path)
    assert "REPLICAS 2" in out and "MODEL True" in out


class _CountTrainingCalls(keras.layers.Layer):
    """Identity; counts the calls made with ``training=True`` (the train step's traces)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.traces = 0

    def call(self, x, training=None):
        if training:
            self.traces += 1
        return x


def _fit_counting_traces(prebuilt: bool) -> tuple[int, list[np.ndarray]]:
    """Two epochs of a tiny BN model; the train step's traces and the final weights."""
    import tensorflow as tf

    from rol_hashing.training.loop import build_training_state

    keras.utils.set_random_seed(0)
    counter = _CountTrainingCalls()
    inputs = keras.Input((4,))
    hidden = keras.layers.BatchNormalization()(keras.layers.Dense(8)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(counter(hidden)))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(12, 4)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, np.arange(12) % 3)).batch(4)
    if prebuilt:
        build_training_state(model, data.element_spec)
        assert model.optimizer.built and counter.traces == 0
    model.fit(data, epochs=2, verbose=0, shuffle=False)
    return counter.traces, model.get_weights()


@pytest.mark.graph
def test_training_state_built_first_traces_the_train_step_once_and_trains_the_same():
    """``build_training_state`` (run_epochs calls it) creates the optimizer's and the
    metrics' variables before ``fit``: one trace of the train step instead of two."""
    lazy_traces, lazy = _fit_counting_traces(prebuilt=False)
    built_traces, built = _fit_counting_traces(prebuilt=True)
    assert (lazy_traces, built_traces) == (2, 1)
    for a, b in zip(lazy, built, strict=True):
        np.testing.assert_array_equal(a, b)
