"""The Reliability Object Layer against a NumPy reference."""

import keras
import numpy as np
import pytest
from helpers import run_layer_test

from rol_hashing.errors import InputError
from rol_hashing.models import ReliabilityMask, ReliabilityObjectLayer, reliability_mask


def _probs(shape, seed=0):
    logits = np.random.default_rng(seed).normal(size=shape)
    e = np.exp(logits)
    return (e / e.sum(-1, keepdims=True)).astype("float32")


def _reference(probs, features, background=0):
    """Drop background, max over classes, area-average to the grid, multiply."""
    objects = np.delete(probs, background, axis=-1)
    r = objects.max(-1)
    b, big_h, big_w = r.shape
    h, w = features.shape[1:3]
    r = r.reshape(b, h, big_h // h, w, big_w // w).mean(axis=(2, 4))
    return features * r[..., None], r[..., None]


@pytest.mark.parametrize("background", [0, 2])
def test_rol_matches_numpy_reference(background):
    probs = _probs((2, 16, 16, 5))
    features = np.random.default_rng(1).normal(size=(2, 4, 4, 3)).astype("float32")
    expected, expected_r = _reference(probs, features, background)
    layer = ReliabilityObjectLayer(background_index=background)
    out = keras.ops.convert_to_numpy(layer([probs, features]))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    r = keras.ops.convert_to_numpy(layer.mask(probs, features))
    np.testing.assert_allclose(r, expected_r, rtol=1e-5)
    standalone = ReliabilityMask(size=(4, 4), background_index=background)(probs)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(standalone), expected_r, rtol=1e-5)


def test_all_background_gives_zero_output():
    probs = np.zeros((1, 8, 8, 3), "float32")
    probs[..., 0] = 1.0
    features = np.ones((1, 4, 4, 6), "float32")
    out = keras.ops.convert_to_numpy(ReliabilityObjectLayer()([probs, features]))
    assert out.shape == (1, 4, 4, 6) and not out.any()


def test_certain_object_keeps_features():
    probs = np.zeros((1, 8, 8, 3), "float32")
    probs[..., 1] = 1.0
    features = np.random.default_rng(0).normal(size=(1, 2, 2, 4)).astype("float32")
    out = keras.ops.convert_to_numpy(ReliabilityObjectLayer()([probs, features]))
    np.testing.assert_allclose(out, features)


def test_non_integer_ratio_uses_bilinear():
    probs = np.full((1, 16, 16, 3), 1 / 3, "float32")
    features = np.ones((1, 6, 6, 2), "float32")
    out = keras.ops.convert_to_numpy(ReliabilityObjectLayer()([probs, features]))
    np.testing.assert_allclose(out, np.full((1, 6, 6, 2), 1 / 3), rtol=1e-5)
    r = keras.ops.convert_to_numpy(reliability_mask(probs, (6, 6), resize="bilinear"))
    assert r.shape == (1, 6, 6, 1)


def test_full_resolution_mask():
    probs = _probs((1, 8, 8, 4))
    r = keras.ops.convert_to_numpy(reliability_mask(probs))
    np.testing.assert_allclose(r[..., 0], probs[..., 1:].max(-1), rtol=1e-6)


def test_layer_contracts():
    probs = _probs((2, 8, 8, 3))
    features = np.ones((2, 4, 4, 5), "float32")
    run_layer_test(
        ReliabilityObjectLayer,
        {"background_index": 1, "resize": "bilinear"},
        [probs, features],
        (2, 4, 4, 5),
    )
    run_layer_test(ReliabilityMask, {"size": (2, 2), "background_index": 0}, probs, (2, 2, 2, 1))


def test_bad_arguments():
    with pytest.raises(InputError, match="resize"):
        ReliabilityObjectLayer(resize="cubic")
    with pytest.raises(InputError, match="outside the 3 classes"):
        ReliabilityObjectLayer(background_index=3)([_probs((1, 4, 4, 3)), np.ones((1, 2, 2, 1))])


def test_rol_with_a_given_mask_multiplies_and_round_trips():
    """The cached-mask form: the same layer kind, taking R at the feature grid."""
    rng = np.random.default_rng(0)
    r = rng.random((2, 4, 4, 1)).astype("float32")
    f = rng.random((2, 4, 4, 5)).astype("float32")
    layer = ReliabilityObjectLayer(mask_given=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer([r, f])), f * r)
    clone = ReliabilityObjectLayer.from_config(layer.get_config())
    assert clone.mask_given and clone.get_config() == layer.get_config()
    with pytest.raises(InputError, match="at the features' grid"):
        ReliabilityObjectLayer(mask_given=True)([r[:, :2, :2], f])
