"""The PSP segmentation stream against Table 1 of the paper."""

import numpy as np
import pytest
from helpers import TINY, random_images, run_model_saving_test

from rol_hashing.errors import InputError
from rol_hashing.models import build_segmentation_model, psp_geometry


def test_table1_geometry_at_28():
    g = psp_geometry(28)
    assert [b.pool for b in g] == [28, 14, 9, 7]
    assert [b.pooled for b in g] == [1, 2, 3, 4]
    assert [b.upsample for b in g] == [28, 14, 10, 7]
    assert [b.crop for b in g] == [(0, 0), (0, 0), (1, 1), (0, 0)]


def test_table1_shapes_at_224():
    model = build_segmentation_model(21, "C", input_size=224, width=1.0)
    shape = lambda name: tuple(model.get_layer(name).output.shape[1:])  # noqa: E731
    assert shape("block4_conv3") == (28, 28, 512)
    for i, side in enumerate([1, 2, 3, 4], start=1):
        assert shape(f"psp_pool{i}") == (side, side, 512)
        assert shape(f"psp_relu{i}") == (side, side, 128)
    assert shape("psp_up1") == shape("psp_up2") == shape("psp_up4") == (28, 28, 128)
    assert shape("psp_up3") == (30, 30, 128)
    assert shape("psp_crop3") == (28, 28, 128)
    assert shape("psp_concat") == (28, 28, 1024)
    assert shape("seg_logits") == (28, 28, 21)
    assert model.output.shape == (None, 224, 224, 21)
    names = {layer.name for layer in model.layers}
    assert not {"psp_crop1", "psp_crop2", "psp_crop4", "block5_conv1"} & names


@pytest.mark.parametrize("size", [32, 64, 96, 160])
def test_other_sizes_restore_input_resolution(size):
    model = build_segmentation_model(5, input_size=size, width=1 / 16)
    h = size // 8
    assert model.get_layer("psp_concat").output.shape[1:3] == (h, h)
    assert model.output.shape == (None, size, size, 5)


def test_too_small_feature_map_says_which_sizes_work():
    with pytest.raises(InputError, match="at least 4x4.*input_size must be >= 32"):
        psp_geometry(3)
    with pytest.raises(InputError, match="multiple of 32"):
        build_segmentation_model(input_size=24)


def test_softmax_output_and_save_load(tmp_path):
    model = build_segmentation_model(4, **TINY)
    x = random_images(2, 32)
    probs = model.predict(x, verbose=0)
    assert probs.shape == (2, 32, 32, 4)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    run_model_saving_test(model, x, tmp_path)


def test_needs_background_and_one_class():
    with pytest.raises(InputError, match="num_classes"):
        build_segmentation_model(1, **TINY)
