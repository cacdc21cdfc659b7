"""encode(): a tiny Keras model with a "hash" output over numpy and tf.data batches."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from rol_hashing.errors import InputError
from rol_hashing.retrieval.encode import encode

BITS = 12


def tiny_model(dict_output: bool = True) -> keras.Model:
    x = keras.Input((8,))
    h = keras.layers.Dense(BITS, activation="sigmoid", name="hash")(x)
    if not dict_output:
        return keras.Model(x, h)
    logits = keras.layers.Dense(3, name="class")(h)
    return keras.Model(x, {"hash": h, "class": logits})


def make_data(n: int = 10):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype("float32") * 3
    y = rng.integers(0, 3, size=n)
    return x, y


def expected_codes(model: keras.Model, x: np.ndarray) -> np.ndarray:
    out = model.predict(x, verbose=0)
    h = out["hash"] if isinstance(out, dict) else out
    return h > 0.5


def test_encode_numpy_batches_without_ids():
    model = tiny_model()
    x, y = make_data()
    batches = [(x[:4], y[:4]), (x[4:8], y[4:8]), (x[8:], y[8:])]
    encoded = encode(model, batches, bits=BITS, verbose=0)
    assert encoded.codes.dtype == np.bool_ and encoded.codes.shape == (10, BITS)
    np.testing.assert_array_equal(encoded.codes, expected_codes(model, x))
    np.testing.assert_array_equal(encoded.labels, y)
    np.testing.assert_array_equal(encoded.ids, np.arange(10))
    assert 0 < encoded.codes.mean() < 1  # the inputs exercise both bit values


def test_encode_tf_data_with_string_ids_and_progbar():
    model = tiny_model(dict_output=False)
    x, y = make_data()
    ids = np.array([f"img_{i}.jpg" for i in range(10)])
    dataset = tf.data.Dataset.from_tensor_slices((x, y, ids)).batch(3)
    encoded = encode(model, dataset, verbose=1)
    np.testing.assert_array_equal(encoded.codes, expected_codes(model, x))
    assert encoded.ids.tolist() == ids.tolist()
    np.testing.assert_array_equal(encoded.labels, y)


def test_encode_bad_input():
    x, y = make_data()
    with pytest.raises(InputError, match="expected 48-bit codes"):
        encode(tiny_model(), [(x, y)], bits=48, verbose=0)
    with pytest.raises(InputError, match=r"\(images, labels\)"):
        encode(tiny_model(), [x], verbose=0)
    with pytest.raises(InputError, match="10 images but 9 labels"):
        encode(tiny_model(), [(x, y[:9])], verbose=0)
    with pytest.raises(InputError, match="no batches"):
        encode(tiny_model(), [], verbose=0)
    inp = keras.Input((8,))
    no_hash = keras.Model(inp, {"logits": keras.layers.Dense(2)(inp)})
    with pytest.raises(InputError, match="no 'hash' entry"):
        encode(no_hash, [(x, y)], verbose=0)
