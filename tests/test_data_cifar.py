"""CIFAR-10 loaders on batches written in the real python-pickle and binary formats."""

from __future__ import annotations

import pickle

import data_fixtures as fx
import numpy as np
import pytest

from rol_hashing.data.cifar10 import UnsafePickleError, load_cifar10, load_pickle_batch
from rol_hashing.errors import InputError


def test_python_batches_give_images_labels_ids(tmp_path):
    fx.write_cifar_py(tmp_path, per_batch=3)
    record = load_cifar10(tmp_path)  # the parent of cifar-10-batches-py
    arrays = fx.cifar_arrays(per_batch=3)
    data, labels = arrays["data_batch_2"]
    assert record.name == "cifar10"
    assert record.images.shape == (18, 32, 32, 3) and record.images.dtype == np.uint8
    assert record.labels.dtype == np.int64 and not record.multilabel
    assert record.class_names == fx.CIFAR_NAMES
    assert record.ids[:4] == [
        "data_batch_1/0",
        "data_batch_1/1",
        "data_batch_1/2",
        "data_batch_2/0",
    ]
    assert record.ids[-1] == "test_batch/2"
    # Row 0 of data_batch_2: 1024 red, then 1024 green, then 1024 blue values.
    expected = data[0].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(record.images[3], expected)
    assert record.labels[3] == labels[0]
    assert "python batches" in record.summary()


def test_binary_batches_match_python_batches(tmp_path):
    fx.write_cifar_py(tmp_path / "py", per_batch=3)
    fx.write_cifar_bin(tmp_path / "bin", per_batch=3)
    from_py = load_cifar10(tmp_path / "py" / "cifar-10-batches-py")
    from_bin = load_cifar10(tmp_path / "bin")
    assert from_bin.info["format"] == "binary batches"
    assert from_bin.ids == from_py.ids
    assert from_bin.class_names == from_py.class_names
    np.testing.assert_array_equal(from_bin.images, from_py.images)
    np.testing.assert_array_equal(from_bin.labels, from_py.labels)


def test_pickle_that_calls_a_function_is_refused(tmp_path):
    sentinel = tmp_path / "pwned"
    folder = tmp_path / "cifar-10-batches-py"
    path = fx.write_malicious_cifar_batch(folder, sentinel)
    with pytest.raises(UnsafePickleError, match=r"builtins\.exec") as info:
        load_pickle_batch(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, pickle.UnpicklingError)
    with pytest.raises(UnsafePickleError):
        load_cifar10(tmp_path)
    assert not sentinel.exists()


def test_missing_root_names_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py") as info:
        load_cifar10(tmp_path / "nowhere")
    assert "nowhere" in str(info.value)


def test_missing_batch_warns_or_fails_when_strict(tmp_path):
    folder = fx.write_cifar_py(tmp_path, per_batch=2)
    (folder / "test_batch").unlink()
    with pytest.warns(UserWarning, match="test_batch"):
        record = load_cifar10(folder)
    assert len(record) == 10 and record.info["missing"] == ["test_batch"]
    with pytest.raises(FileNotFoundError, match="test_batch"):
        load_cifar10(folder, strict=True)


def test_truncated_binary_batch_is_an_error_naming_the_file(tmp_path):
    folder = fx.write_cifar_bin(tmp_path, per_batch=2)
    path = folder / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(InputError, match="data_batch_3.bin"):
        load_cifar10(tmp_path)


def test_truncated_python_batch_is_an_error_naming_the_file(tmp_path):
    folder = fx.write_cifar_py(tmp_path, per_batch=2)
    path = folder / "data_batch_1"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(InputError, match="data_batch_1"):
        load_cifar10(tmp_path)
