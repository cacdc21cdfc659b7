"""``load_inference_model``: one model object per file content, a changed file anew."""

import os
import shutil

import keras
import numpy as np

from rol_hashing import saving
from rol_hashing.saving import load_inference_model, load_model


def _save(path, value: float) -> None:
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, kernel_initializer="ones")(inputs))
    model.layers[-1].set_weights([np.full((3, 2), value, "float32"), np.zeros(2, "float32")])
    model.save(path)


def test_the_same_bytes_give_the_same_model_and_changed_bytes_a_new_one(tmp_path):
    path = tmp_path / "a.keras"
    _save(path, 1.0)
    first = load_inference_model(path)
    assert load_inference_model(path) is first
    copy = tmp_path / "copy.keras"
    shutil.copy(path, copy)
    assert load_inference_model(copy) is first  # by content, not by name
    stat = path.stat()
    _save(path, 2.0)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same time, other bytes
    second = load_inference_model(path)
    assert second is not first
    x = np.ones((1, 3), "float32")
    np.testing.assert_allclose(second.predict(x, verbose=0), 6.0)
    np.testing.assert_allclose(first.predict(x, verbose=0), 3.0)
    np.testing.assert_allclose(load_model(path).predict(x, verbose=0), 6.0)


def test_only_the_last_few_and_no_large_file_are_kept(tmp_path, monkeypatch):
    paths = []
    for i in range(saving.INFERENCE_CACHE_SIZE + 1):
        paths.append(tmp_path / f"m{i}.keras")
        _save(paths[-1], float(i))
    first = load_inference_model(paths[0])
    for path in paths[1:]:
        load_inference_model(path)
    assert load_inference_model(paths[0]) is not first  # the oldest was dropped
    monkeypatch.setattr(saving, "INFERENCE_CACHE_BYTES", 10)
    big = load_inference_model(paths[1])
    assert load_inference_model(paths[1]) is not big  # loaded each time
