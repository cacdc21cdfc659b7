"""The SSDH hashing model with and without the ROL."""

import keras
import numpy as np
import pytest
from helpers import TINY, as_numpy, assert_outputs_equal, random_images, run_model_saving_test

from rol_hashing.cli.main import main
from rol_hashing.errors import InputError
from rol_hashing.models import (
    ReliabilityMask,
    build_hashing_model,
    build_segmentation_model,
    rol_feature_size,
    ssdh_losses,
)

BITS, CLASSES = 12, 4


def _model(method: str):
    """SSDH, or ROL with an untrained stream given explicitly."""
    if method == "rol":
        return _rol_model()[0]
    return build_hashing_model(method, BITS, CLASSES, **TINY)


def _rol_model(**kwargs):
    seg = build_segmentation_model(3, **TINY)
    return build_hashing_model("rol", BITS, CLASSES, segmentation_model=seg, **TINY, **kwargs), seg


@pytest.mark.parametrize("method", ["rol", "ssdh"])
def test_outputs(method):
    model = _model(method)
    out = as_numpy(model(random_images(3, 32), training=False))
    assert out["hash"].shape == (3, BITS) and out["class"].shape == (3, CLASSES)
    assert ((out["hash"] > 0) & (out["hash"] < 1)).all()
    np.testing.assert_allclose(out["class"].sum(-1), 1.0, rtol=1e-5)
    assert ("rol" in {layer.name for layer in model.layers}) == (method == "rol")


def test_rol_without_its_stream_is_refused():
    with pytest.raises(InputError, match="method 'rol' needs its segmentation stream"):
        build_hashing_model("rol", BITS, CLASSES, **TINY)


def test_multilabel_head_is_sigmoid():
    model = build_hashing_model("ssdh", BITS, CLASSES, multilabel=True, **TINY)
    assert model.get_layer("class").activation.__name__ == "sigmoid"


@pytest.mark.parametrize("rol_at", ["block5_conv3", "block5_pool"])
def test_rol_position(rol_at):
    model, _ = _rol_model(rol_at=rol_at)
    side = rol_feature_size(32, rol_at)
    assert model.get_layer("rol").output.shape == (None, side, side, 32)


@pytest.mark.parametrize("method", ["rol", "ssdh"])
def test_save_load_identical(method, tmp_path):
    model = _model(method)
    loaded = run_model_saving_test(model, random_images(2, 32), tmp_path)
    if method == "rol":
        assert not loaded.get_layer("psp_segmentation").trainable


def test_mask_input_form_equals_live_form(tmp_path):
    live, seg = _rol_model()
    cached = build_hashing_model("rol", BITS, CLASSES, mask_input=True, **TINY)
    for layer in cached.layers:
        if layer.weights:
            layer.set_weights(live.get_layer(layer.name).get_weights())
    x = random_images(3, 32)
    side = rol_feature_size(32)
    mask = keras.ops.convert_to_numpy(ReliabilityMask(size=(side, side))(seg(x, training=False)))
    assert_outputs_equal(
        as_numpy(live(x, training=False)),
        as_numpy(cached({"image": x, "mask": mask}, training=False)),
        atol=1e-5,
    )
    run_model_saving_test(cached, {"image": x, "mask": mask}, tmp_path)


def test_training_step_leaves_segmentation_frozen():
    model, seg = _rol_model()
    seg_before = [w.copy() for w in seg.get_weights()]
    fc_before = model.get_layer("fc1").get_weights()[0].copy()
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss=ssdh_losses())
    x = random_images(4, 32)
    y = {"class": np.array([0, 1, 2, 3]), "hash": np.zeros((4, BITS), "float32")}
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    for before, after in zip(seg_before, seg.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    assert not np.array_equal(fc_before, model.get_layer("fc1").get_weights()[0])


def test_bad_arguments():
    with pytest.raises(InputError, match="method"):
        build_hashing_model("dsh", BITS, CLASSES, **TINY)
    with pytest.raises(InputError, match="bits"):
        build_hashing_model("ssdh", 0, CLASSES, **TINY)
    seg64 = build_segmentation_model(3, input_size=64, width=1 / 16)
    with pytest.raises(InputError, match="same input_size"):
        build_hashing_model("rol", BITS, CLASSES, segmentation_model=seg64, **TINY)


def test_describe_prints_table1_rows(capsys):
    assert main(["describe", "--method", "rol", "--input-size", "224"]) == 0
    out = capsys.readouterr().out
    for i, (pooled, up) in enumerate([(1, 28), (2, 28), (3, 30), (4, 28)], start=1):
        assert f"| psp_pool{i} | AveragePooling2D | {pooled}x{pooled}x512 |" in out
        assert f"| psp_relu{i} | ReLU | {pooled}x{pooled}x128 |" in out
        assert f"| psp_up{i} | UpSampling2D | {up}x{up}x128 |" in out
    assert "| psp_crop3 | Cropping2D | 28x28x128 |" in out
    assert "| psp_concat | Concatenate | 28x28x1024 |" in out
    assert "| rol | ReliabilityObjectLayer | 14x14x512 |" in out
    assert "| hash | Dense | 48 |" in out


def test_models_use_no_backend_specific_calls():
    from pathlib import Path

    import rol_hashing.models as models

    for path in Path(models.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "tensorflow" not in text and "tf." not in text, path
