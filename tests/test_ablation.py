"""The ablation study's invariants: mask sources and forms, paired initialisation, the
oracle masks' alignment, fc1 resampling, and the quick study end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from PIL import Image

from rol_hashing.data.folders import load_class_folders
from rol_hashing.data.generated import make_generated_dataset
from rol_hashing.data.pipeline import deprocess_vgg, make_image_dataset
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError
from rol_hashing.experiments.ablation import (
    ablation_grid,
    run_ablation,
    select_variants,
    variant_config,
)
from rol_hashing.models import (
    ReliabilityObjectLayer,
    build_hashing_model,
    build_vgg16,
    load_vgg16_imagenet_weights,
    mask_form,
    save_vgg16_weights_h5,
)
from rol_hashing.retrieval.encode import encode_split
from rol_hashing.saving import load_model
from rol_hashing.training.config import ConfigError, load_config, load_run_config
from rol_hashing.training.hashing import train_hashing
from rol_hashing.training.masks import area_average, derange, oracle_masks
from rol_hashing.training.segmentation import train_segmentation

REPO = Path(__file__).resolve().parents[1]


# ---- forms, keys, layers ----------------------------------------------------------


def _numpy_form(r: np.ndarray, form: str) -> np.ndarray:
    if form == "soft":
        return r
    if form == "binary":
        return (r > 0.5).astype(np.float32)
    return r / np.maximum(r.mean(axis=(1, 2, 3), keepdims=True), 1e-6)


@pytest.mark.parametrize("form", ["soft", "binary", "normalized"])
def test_each_mask_form_matches_a_numpy_reference(form):
    r = np.random.default_rng(1).random((3, 4, 4, 1)).astype(np.float32)
    r[2] = 0.0  # an empty mask: normalized must stay finite
    got = keras.ops.convert_to_numpy(mask_form(r, form))
    np.testing.assert_allclose(got, _numpy_form(r, form), rtol=1e-6)
    f = np.random.default_rng(2).random((3, 4, 4, 5)).astype(np.float32)
    layer = ReliabilityObjectLayer(mask_given=True, form=form)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer([r, f])), f * _numpy_form(r, form), rtol=1e-6
    )


def test_a_model_with_a_mask_form_survives_keras_save_and_load(tmp_path):
    model = build_hashing_model(
        "rol", 12, 3, input_size=32, width=0.125, mask_input=True, rol_form="normalized"
    )
    x = {
        "image": np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32"),
        "mask": np.random.default_rng(1).random((2, 2, 2, 1)).astype("float32"),
    }
    model.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    assert again.get_layer("rol").get_config()["form"] == "normalized"
    for key in ("hash", "class"):
        np.testing.assert_array_equal(
            model.predict(x, verbose=0)[key], again.predict(x, verbose=0)[key]
        )


def test_mask_keys_are_validated_and_round_trip(tmp_path):
    config = load_config(
        "generated", "cpu", {"model": {"rol_mask": "oracle", "rol_form": "binary"}}
    )
    assert (config.model.rol_mask, config.model.rol_form) == ("oracle", "binary")
    (tmp_path / "config.yaml").write_text(config.to_yaml())
    assert load_run_config(tmp_path) == config
    with pytest.raises(ConfigError, match="'model.rol_mask' must be one of predicted, oracle"):
        load_config("generated", "cpu", {"model": {"rol_mask": "random"}})
    with pytest.raises(ConfigError, match="'model.rol_form' must be one of soft"):
        load_config("generated", "cpu", {"model": {"rol_form": "hard"}})


def test_shuffled_masks_never_stay_with_their_image():
    for n in (2, 3, 50):
        order = derange(n, seed=0)
        assert sorted(order) == list(range(n)) and not np.any(order == np.arange(n))
    np.testing.assert_array_equal(derange(7, 3), derange(7, 3))


def test_fc1_resampled_to_a_finer_grid_equals_fc1_on_the_pooled_map(tmp_path):
    small = build_vgg16("C", input_size=32, width=0.125, include_top=True, classes=3)
    h5 = save_vgg16_weights_h5(small, tmp_path / "small.h5")
    big = build_vgg16("C", input_size=64, width=0.125, include_top=True, classes=3)
    report = load_vgg16_imagenet_weights(big, h5)
    assert report.resampled == ["fc1"]
    features = np.random.default_rng(0).random((2, 2, 2, 64)).astype("float32")  # 64px pool
    pooled = features.reshape(2, 1, 2, 1, 2, 64).mean(axis=(2, 4))  # what 32px would see
    w_big, b_big = big.get_layer("fc1").get_weights()
    w_small, b_small = small.get_layer("fc1").get_weights()
    np.testing.assert_allclose(
        features.reshape(2, -1) @ w_big + b_big,
        pooled.reshape(2, -1) @ w_small + b_small,
        rtol=1e-4,
        atol=1e-5,
    )


# ---- oracle masks ------------------------------------------------------------------


def test_oracle_masks_line_up_with_the_images_after_resize_and_crop(tmp_path):
    """An image that is white exactly on its object: after the pipeline, the oracle R
    at full resolution and the image's white pixels cover the same place."""
    root = tmp_path / "set"
    size = 80
    mask = np.zeros((size, size), np.uint8)
    mask[10:46, 30:74] = 1  # an off-centre rectangle: a misaligned crop would show
    for folder, sub in (("classes", "a"), ("masks", "a")):
        (root / folder / sub).mkdir(parents=True)
    (root / "classes" / "b").mkdir()
    (root / "masks" / "b").mkdir()
    for cls in ("a", "b"):
        pixels = np.repeat((mask * 255)[..., None], 3, axis=2)
        Image.fromarray(pixels, "RGB").save(root / "classes" / cls / "x.png")
        Image.fromarray(mask, "P").save(root / "masks" / cls / "x.png")
    record = load_class_folders(root / "classes", name="generated")
    s = 32
    full = oracle_masks(record, np.arange(2), s, s)[..., 0]
    images = next(iter(make_image_dataset(record, np.arange(2), s, batch_size=2)))[0]
    white = deprocess_vgg(images.numpy()).mean(axis=-1) > 127
    agree = (full[0] > 0.5) == white[0]
    assert agree.mean() > 0.97  # only a bilinear edge may differ
    grid = oracle_masks(record, np.arange(2), s, 4)[..., 0]
    np.testing.assert_allclose(grid, area_average(full, 4), atol=1e-6)
    assert full[0].sum() > 0 and not np.all(full[0] == 1)
    # the same masks carried in memory (record.object_masks, as Fashion-MNIST's) give
    # the same R as the mask files
    in_memory = DatasetRecord(
        name="fashion_mnist",
        class_names=record.class_names,
        labels=record.labels,
        ids=record.ids,
        root=root,
        images=np.stack([np.repeat((mask * 255)[..., None], 3, axis=2)] * 2),
        object_masks=np.stack([mask, mask]),
    )
    np.testing.assert_array_equal(oracle_masks(in_memory, np.arange(2), s, s)[..., 0], full)
    np.testing.assert_array_equal(oracle_masks(in_memory, np.arange(2), s, 4)[..., 0], grid)


# ---- training invariants -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablation") / "gen"
    make_generated_dataset(root, num_images=96, num_seg_images=32, image_size=48, num_classes=4)
    runs = root.parent / "runs"
    config = load_config(
        "generated",
        "demo_quick",
        {
            "data_root": str(root),
            "runs_dir": str(runs),
            "model": {"backbone_weights": "none"},
            "segmentation": {"data_root": str(root / "VOCdevkit/VOC2012")},
            "hashing": {
                "epochs": 2,
                "batch_size": 48,  # the 48 training images: one step per epoch
                "segmentation_model": str(runs / "generated-seg" / "model.keras"),
            },
        },
    )
    keras.utils.set_random_seed(0)
    train_segmentation(config, verbose=0)
    return config


class _FirstWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights: dict[str, list[np.ndarray]] | None = None

    def on_train_begin(self, logs=None):
        if self.weights is None:
            self.weights = {n: self.model.get_layer(n).get_weights() for n in ("hash", "class")}


def test_rol_starts_as_ssdh_and_rol_with_ones_ends_as_ssdh(tiny, tmp_path):
    """The paper's ROL (predicted masks) starts from SSDH's hash and class weights; ROL
    with masks of ones (the control) trains to SSDH's weights and codes exactly."""
    ones = dataclasses.replace(tiny, model=dataclasses.replace(tiny.model, rol_mask="ones"))
    runs, first = {}, {}
    for name, method, config in (
        ("ssdh", "ssdh", tiny),
        ("rol", "rol", tiny),
        ("ones", "rol", ones),
    ):
        probe = _FirstWeights()
        keras.utils.set_random_seed(0)
        runs[name] = train_hashing(
            config, method, 12, run_dir=tmp_path / name, callbacks=[probe], verbose=0
        )
        first[name] = probe.weights
    for layer in ("hash", "class"):
        for a, b in zip(first["ssdh"][layer], first["rol"][layer], strict=True):
            np.testing.assert_array_equal(a, b)
    ssdh, rol = (load_model(runs[m].model) for m in ("ssdh", "ones"))
    assert isinstance(rol.input, dict)  # the mask stays an input
    for layer in ssdh.layers:
        for a, b in zip(layer.get_weights(), rol.get_layer(layer.name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=layer.name)
    (q1, g1), (q2, g2) = (encode_split(runs[m].path, verbose=0) for m in ("ssdh", "ones"))
    np.testing.assert_array_equal(q1.codes, q2.codes)
    np.testing.assert_array_equal(g1.codes, g2.codes)
    info = json.loads(runs["ones"].train_info.read_text())
    assert (info["rol_mask"], info["rol_form"]) == ("ones", "soft")
    saved = yaml.safe_load(runs["ones"].config_file.read_text())
    assert saved["model"]["rol_mask"] == "ones"


def test_masks_from_outside_need_the_mask_cache(tiny, tmp_path):
    oracle = dataclasses.replace(tiny, model=dataclasses.replace(tiny.model, rol_mask="oracle"))
    with pytest.raises(InputError, match="with the mask cache on"):
        train_hashing(oracle, "rol", 12, run_dir=tmp_path / "r", mask_cache=False, verbose=0)


# ---- the study -----------------------------------------------------------------------


def test_the_grid_is_the_pre_registered_one():
    grid = ablation_grid()
    names = [v.name for v in grid]
    assert names[:9] == [
        "ssdh",
        "rol-predicted-soft",
        "rol-oracle-soft",
        "rol-ones-soft",
        "rol-shuffled-soft",
        "rol-predicted-binary",
        "rol-predicted-normalized",
        "rol-oracle-binary",
        "rol-oracle-normalized",
    ]
    assert all(v.bits == (12, 48) for v in grid[:9])
    assert {v.name: v.epochs_factor for v in grid[9:11]} == {
        "ssdh-3x": 3,
        "rol-predicted-soft-3x": 3,
    }
    assert [(v.name, v.input_factor, v.bits) for v in grid[11:]] == [
        ("ssdh-2x-input", 2, (12,)),
        ("rol-predicted-soft-2x-input", 2, (12,)),
        ("rol-oracle-soft-2x-input", 2, (12,)),
    ]


def test_groups_2_and_3_scale_the_schedule_and_the_stream(tmp_path):
    """What the full grid adds to the sources grid, without training: 3x the demo's
    epochs (the drop moves with them), and 2x input at half the epochs for the runs and
    for the stream they need, which is trained once per size."""
    from rol_hashing.experiments.ablation.runner import seg_config, stream_for

    base = load_config("generated", "demo", {"runs_dir": str(tmp_path)})
    grid = {v.name: v for v in ablation_grid()}
    seg = tmp_path / "seg.keras"
    long = variant_config(base, grid["ssdh-3x"], seg)
    assert (long.hashing.epochs, long.hashing.lr_drop_epoch) == (45, 30)
    assert long.model.input_size == base.model.input_size == 96
    big = grid["rol-oracle-soft-2x-input"]
    wide = variant_config(base, big, seg)
    assert (wide.model.input_size, wide.hashing.epochs, wide.hashing.lr_drop_epoch) == (192, 8, 5)
    assert (wide.model.rol_mask, wide.hashing.segmentation_model) == ("oracle", str(seg))
    stream = seg_config(base, big)
    assert (stream.model.input_size, stream.segmentation.epochs) == (192, 4)
    assert seg_config(base, grid["ssdh"]) == base
    known = {96: seg, 192: tmp_path / "seg192.keras"}
    assert stream_for(base, big, known) == known[192]  # a size already made is not trained
    assert stream_for(base, grid["rol-ones-soft"], known) == seg


def test_the_scenes_grid_is_sources_with_soft_and_normalized():
    names = [v.name for v in ablation_grid(kind="sources")]
    assert names == [
        "ssdh",
        "rol-predicted-soft",
        "rol-oracle-soft",
        "rol-ones-soft",
        "rol-shuffled-soft",
        "rol-predicted-normalized",
        "rol-oracle-normalized",
    ]
    with pytest.raises(InputError, match="grid must be one of"):
        ablation_grid(kind="binary")


def test_the_questions_hold_only_with_5_of_6_positive_pairs():
    from rol_hashing.experiments.ablation import answer_questions

    grid = ablation_grid(kind="sources")
    by = {}
    for s in (0, 1, 2):
        for b in (12, 48):
            by[("ssdh", b, s)] = 0.30
            # ROL above SSDH in 5 of 6 pairs, oracle above predicted in 4 of 6
            by[("rol-predicted-soft", b, s)] = 0.29 if (s, b) == (2, 48) else 0.33
            by[("rol-oracle-soft", b, s)] = 0.30 if s == 0 else 0.40
    help_, oracle = answer_questions(by, (0, 1, 2), grid)
    assert help_["holds"] and help_["positive"] == 5 and help_["needed"] == 5
    assert not oracle["holds"] and oracle["positive"] == 4
    assert oracle["change"]["mean"] > 0  # positive on average, yet not in enough pairs


def test_a_selection_of_variants_keeps_its_group_ssdh_and_the_papers_rol():
    grid = ablation_grid(bits=(12,))
    assert select_variants(grid, None) == grid
    names = [v.name for v in select_variants(grid, ["rol-oracle-soft-2x-input"])]
    assert names == ["ssdh", "rol-predicted-soft", "ssdh-2x-input", "rol-oracle-soft-2x-input"]
    with pytest.raises(InputError, match="unknown ablation variant.*rol-nope.*ssdh-3x"):
        select_variants(grid, ["rol-oracle-soft", "rol-nope"])


def test_ablate_refuses_an_unknown_variant_before_any_work(tmp_path, capsys):
    from rol_hashing.cli.main import main

    argv = ["ablate", "--quick", "--seeds", "1", "--variants", "rol-nope"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--work-dir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "unknown ablation variant(s) rol-nope" in err and "Traceback" not in err
    assert not (tmp_path / "w").exists() and not (tmp_path / "out").exists()


SOME = ("rol-ones-soft", "rol-shuffled-soft")


@pytest.mark.slow
def test_quick_ablation_writes_its_results_and_resumes(tmp_path, capsys):
    out, work, kept = tmp_path / "out", tmp_path / "work", tmp_path / "kept"
    # 4 runs of the sources grid: SSDH, the paper's ROL and the sources ones and shuffled
    # (the control and the cache's shuffling). The oracle and normalized runs are the
    # scenes ablation's test (test_fashion_benchmark.py); the full grid's other runs only
    # change epochs and sizes, whose configs test_groups_2_and_3_scale_the_schedule_and_
    # the_stream checks.
    args = {"seeds": (0,), "quick": True, "grid_kind": "sources", "variants": SOME}
    summary = run_ablation(out, work, keep_dir=kept, **args)
    # each finished run is kept on its own too (a group cut by the session's end)
    runs_kept = sorted(p.stem for p in (kept / "seed0_12b").glob("*.json"))
    assert runs_kept == sorted(("ssdh", "rol-predicted-soft", *SOME))
    for name in ("results.md", "results.json", "ablation_map.png", "ap_vs_mask_quality.png"):
        assert (out / name).is_file(), name
    maps = {(r["variant"], r["bits"]): r["map"] for r in summary["rows"]}
    assert sorted(v for v, _ in maps) == sorted(("ssdh", "rol-predicted-soft", *SOME))
    assert maps[("rol-ones-soft", 12)] == maps[("ssdh", 12)]  # the control holds
    text = (out / "results.md").read_text()
    assert "## Decision rule" in text and "Verdict:" in text and "Wall time" in text
    assert 0.0 <= summary["mask_quality"]["mean_iou"] <= 1.0
    capsys.readouterr()
    again = run_ablation(out, work, **args)
    assert all(r["reused"] for r in again["rows"])  # finished runs are not trained again
    assert {(r["variant"], r["bits"]): r["map"] for r in again["rows"]} == maps
    # another session, another machine: no run folders, the kept group stands for them
    capsys.readouterr()
    later = run_ablation(out, tmp_path / "new_work", keep_dir=kept, **args)
    shown = capsys.readouterr().out
    assert "kept in" in shown and "backbone, segmentation ready" not in shown
    assert not (tmp_path / "new_work").exists()  # nothing was prepared or trained
    assert {(r["variant"], r["bits"]): r["map"] for r in later["rows"]} == maps
    assert later["mask_quality"] == summary["mask_quality"]
    stored = json.loads((kept / "seed0_12b.json").read_text())
    assert stored["machine"] and len(stored["iou"]) == summary["mask_quality"]["queries"]


def test_groups_whose_runs_came_from_two_machines_are_named():
    from rol_hashing.experiments.ablation.runner import _mixed_machine_groups

    rows = [
        {"seed": 0, "bits": 12, "machine": "AMD EPYC"},
        {"seed": 0, "bits": 12, "machine": "Intel Xeon"},
        {"seed": 0, "bits": 48, "machine": "AMD EPYC"},
        {"seed": 1, "bits": 12, "machine": "AMD EPYC"},
        {"seed": 1, "bits": 12},  # kept before runs named their machine
        # one kind of machine, two kernel builds: one machine
        {"seed": 2, "bits": 12, "machine": "AMD EPYC, 2 cores, 24 GiB RAM, Linux 6.18-v1098"},
        {"seed": 2, "bits": 12, "machine": "AMD EPYC, 2 cores, 24 GiB RAM, Linux 6.18-v1272"},
        {"seed": 2, "bits": 48, "machine": "AMD EPYC, 2 cores, 24 GiB RAM, Linux 6.18-v1098"},
        {"seed": 2, "bits": 48, "machine": "Intel Xeon, 2 cores, 24 GiB RAM, Linux 6.18-v1098"},
    ]
    assert _mixed_machine_groups(rows) == [(0, 12), (2, 48)]


@pytest.mark.parametrize("rol", [0.25, 0.35])
def test_the_report_names_a_gap_only_when_the_rol_is_behind(rol):
    from rol_hashing.experiments.ablation.grid import summarize
    from rol_hashing.experiments.ablation.report import results_markdown

    grid = ablation_grid(kind="sources")
    rows = [
        {"variant": v.name, "bits": b, "seed": s, "map": rol if v.method == "rol" else 0.30}
        for v in grid
        for b in v.bits
        for s in (0, 1, 2)
    ]
    summary = summarize(rows, grid) | {"seeds": [0, 1, 2]}
    text = results_markdown(summary, 60.0, grid)
    assert "the profile's schedule" in text and "demo schedule" not in text
    if rol < 0.30:  # behind SSDH by 0.05: a gap for the factors
        assert (
            "Gap to explain: SSDH - ROL (predicted, soft, the profile's schedule) = +0.050" in text
        )
        assert "Verdict: no factor of the grid explains the gap." in text
    else:
        assert "there is no gap to explain" in text
        assert "Verdict: no gap to explain (the ROL is level with or ahead of SSDH)." in text
