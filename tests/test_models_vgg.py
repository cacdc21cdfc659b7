"""VGG16 configurations C and D, and ImageNet .h5 loading by name."""

import h5py
import keras
import numpy as np
import pytest
from helpers import TINY, random_images, run_model_saving_test
from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

from rol_hashing.errors import InputError
from rol_hashing.models import build_vgg16, load_vgg16_imagenet_weights
from rol_hashing.models.vgg import CONFIG_C_1X1


def _kinds(model):
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    return convs, dense


@pytest.mark.parametrize("config", ["C", "D"])
def test_thirteen_conv_and_three_fc(config):
    model = build_vgg16(config, include_top=True, classes=7, **TINY)
    convs, dense = _kinds(model)
    assert len(convs) == 13 and len(dense) == 3
    sizes = {c.name: c.kernel_size for c in convs}
    for name, size in sizes.items():
        expected = (1, 1) if config == "C" and name in CONFIG_C_1X1 else (3, 3)
        assert size == expected, name
    assert model.output.shape == (None, 7)


def test_config_d_matches_keras_applications():
    ours = build_vgg16("D", input_size=224)
    ref = keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
    assert ours.count_params() == ref.count_params() == 14_714_688
    assert [w.name for w in ours.layers[1:]] == [w.name for w in ref.layers[1:]]
    assert ours.output.shape == (None, 7, 7, 512)


def test_config_d_with_top_matches_keras_applications():
    ours = build_vgg16("D", input_size=32, include_top=True)
    ref = keras.applications.VGG16(weights=None, include_top=True, input_shape=(32, 32, 3))
    assert ours.count_params() == ref.count_params()


def test_width_scales_channels():
    model = build_vgg16("C", input_size=64, width=0.25, include_top=True)
    assert model.get_layer("block5_conv3").output.shape == (None, 4, 4, 128)
    assert model.get_layer("fc1").output.shape == (None, 1024)


@pytest.mark.parametrize("size", [16, 48, 100])
def test_bad_input_size_names_valid_sizes(size):
    with pytest.raises(InputError, match="multiple of 32"):
        build_vgg16(input_size=size)


def test_bad_config():
    with pytest.raises(InputError, match="config"):
        build_vgg16("E")


def _write_keras_h5(model, path):
    with h5py.File(path, "w") as f:
        save_weights_to_hdf5_group(f, model)


def test_keras_h5_loads_into_config_d_and_matches(tmp_path):
    ref = keras.applications.VGG16(weights=None, include_top=False, input_shape=(64, 64, 3))
    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    _write_keras_h5(ref, path)
    ours = build_vgg16("D", input_size=64)
    report = load_vgg16_imagenet_weights(ours, path)
    assert len(report.loaded) == 13 and not report.centre_tap
    x = random_images(2, 64)
    np.testing.assert_allclose(ours.predict(x, verbose=0), ref.predict(x, verbose=0), rtol=1e-5)


def test_whole_model_h5_file_loads(tmp_path):
    ref = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    path = tmp_path / "model.h5"
    ref.save(path)
    ours = build_vgg16("D", input_size=32)
    assert len(load_vgg16_imagenet_weights(ours, path).loaded) == 13


def test_config_c_takes_centre_tap(tmp_path):
    ref = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    path = tmp_path / "w.h5"
    _write_keras_h5(ref, path)
    ours = build_vgg16("C", input_size=32)
    report = load_vgg16_imagenet_weights(ours, path)
    assert sorted(report.centre_tap) == sorted(CONFIG_C_1X1)
    for name in CONFIG_C_1X1:
        kernel, bias = ours.get_layer(name).get_weights()
        ref_kernel, ref_bias = ref.get_layer(name).get_weights()
        np.testing.assert_array_equal(kernel[0, 0], ref_kernel[1, 1])
        np.testing.assert_array_equal(bias, ref_bias)
    np.testing.assert_array_equal(
        ours.get_layer("block4_conv2").get_weights()[0],
        ref.get_layer("block4_conv2").get_weights()[0],
    )


def test_missing_weights_file_names_file_and_folder(tmp_path):
    missing = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with pytest.raises(FileNotFoundError) as err:
        load_vgg16_imagenet_weights(build_vgg16(**TINY), missing)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in str(err.value)
    assert "weights/" in str(err.value)


def test_width_mismatch_is_a_clear_error(tmp_path):
    ref = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    path = tmp_path / "w.h5"
    _write_keras_h5(ref, path)
    with pytest.raises(InputError, match="block1_conv1.*width=1.0"):
        load_vgg16_imagenet_weights(build_vgg16(**TINY), path)


def test_vgg_save_load(tmp_path):
    model = build_vgg16("C", include_top=True, classes=5, **TINY)
    run_model_saving_test(model, random_images(2, 32), tmp_path)


def test_saved_backbone_h5_round_trips_including_fc(tmp_path):
    from rol_hashing.models import save_vgg16_weights_h5

    source = build_vgg16("C", include_top=True, classes=3, **TINY)
    path = save_vgg16_weights_h5(source, tmp_path / "backbone.h5")
    target = build_vgg16("C", include_top=True, classes=3, **TINY)
    report = load_vgg16_imagenet_weights(target, path)
    assert len(report.loaded) == 15 and not report.centre_tap
    for name in ("block3_conv3", "fc1", "fc2"):
        for a, b in zip(
            source.get_layer(name).get_weights(), target.get_layer(name).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(a, b)
