"""tf.data pipeline: shapes, dtypes, value range, geometry, determinism."""

from __future__ import annotations

import data_fixtures as fx
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from rol_hashing.data.cifar10 import load_cifar10
from rol_hashing.data.folders import load_class_folders
from rol_hashing.data.pipeline import (
    VGG_MEAN_BGR,
    deprocess_vgg,
    load_rgb_and_mask,
    make_image_dataset,
    make_segmentation_dataset,
    preprocess_image,
    preprocess_vgg,
    resize_size,
)
from rol_hashing.data.voc import VOC_CLASSES, load_voc2012, load_voc_segmentation
from rol_hashing.errors import InputError

LOW = -max(VGG_MEAN_BGR)
HIGH = 255.0 - min(VGG_MEAN_BGR)


def collect(ds: tf.data.Dataset) -> list[np.ndarray]:
    parts = list(zip(*[[t.numpy() for t in batch] for batch in ds], strict=True))
    return [np.concatenate(p) for p in parts]


def test_preprocess_matches_keras_and_inverts():
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 5, 5, 3)).astype(np.float32)
    expected = keras.applications.vgg16.preprocess_input(x.copy())
    np.testing.assert_allclose(preprocess_vgg(x).numpy(), expected, atol=1e-4)
    np.testing.assert_array_equal(deprocess_vgg(preprocess_vgg(np.round(x))), np.round(x))


def test_resize_rule():
    assert resize_size(224) == 256
    assert resize_size(64) == 73
    assert resize_size(32) == 37


def test_centre_crop_geometry():
    # An image already at the resize side r is only cropped: rows/cols (r-S)//2 on.
    size, r = 64, resize_size(64)
    image = np.random.default_rng(0).integers(0, 256, size=(r, r, 3), dtype=np.uint8)
    out = preprocess_image(image, size).numpy()
    off = (r - size) // 2
    expected = preprocess_vgg(image[off : off + size, off : off + size].astype(np.float32))
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-3)


def test_file_images_of_every_mode_batch_shape_dtype_range(tmp_path):
    root = fx.write_class_folders(tmp_path, per_class=3)
    fx.write_cmyk_jpeg(root / "cat" / "cmyk.jpg")
    fx.write_rgba_png(root / "dog" / "alpha.png")
    fx.write_gray_png(root / "dog" / "gray.png")
    fx.write_palette_png(root / "dog" / "palette.png")
    record = load_class_folders(root)
    ds = make_image_dataset(record, input_size=32, batch_size=4)
    images, labels = collect(ds)
    assert images.shape == (len(record), 32, 32, 3) and images.dtype == np.float32
    assert labels.dtype == np.int64 and labels.tolist() == record.labels.tolist()
    assert images.min() >= LOW - 1e-3 and images.max() <= HIGH + 1e-3
    first = next(iter(ds))
    assert first[0].shape == (4, 32, 32, 3)


def test_multilabel_labels_are_float_multi_hot(tmp_path):
    fx.write_voc_devkit(tmp_path)
    record = load_voc2012(tmp_path)
    images, labels, index = collect(
        make_image_dataset(record, input_size=16, batch_size=2, with_index=True)
    )
    assert labels.dtype == np.float32 and labels.shape == (5, 20)
    np.testing.assert_array_equal(labels, record.labels)
    assert index.tolist() == list(range(5))


def test_same_image_same_tensor_whatever_order_or_cache(tmp_path):
    root = fx.write_class_folders(tmp_path, per_class=4)
    record = load_class_folders(root)
    plain = collect(make_image_dataset(record, input_size=24, batch_size=3, with_index=True))
    again = collect(make_image_dataset(record, input_size=24, batch_size=3, with_index=True))
    for a, b in zip(plain, again, strict=True):
        np.testing.assert_array_equal(a, b)
    for cache in (False, True):
        ds = make_image_dataset(
            record, input_size=24, batch_size=3, shuffle=True, seed=1, cache=cache, with_index=True
        )
        images, labels, index = collect(ds)
        assert sorted(index.tolist()) == list(range(len(record)))
        assert index.tolist() != list(range(len(record)))
        np.testing.assert_array_equal(images, plain[0][index])
        np.testing.assert_array_equal(labels, plain[1][index])
        # The same seed gives the same order again.
        assert (
            collect(
                make_image_dataset(
                    record,
                    input_size=24,
                    batch_size=3,
                    shuffle=True,
                    seed=1,
                    cache=cache,
                    with_index=True,
                )
            )[2].tolist()
            == index.tolist()
        )


def test_cifar_arrays_take_the_same_steps_as_files(tmp_path):
    fx.write_cifar_py(tmp_path, per_batch=2)
    record = load_cifar10(tmp_path)
    for k in (0, 5):
        Image.fromarray(record.images[k]).save(tmp_path / f"{k}.png")
    from_arrays, labels = collect(make_image_dataset(record, [0, 5], input_size=32, batch_size=2))
    assert from_arrays.shape == (2, 32, 32, 3) and labels.tolist() == record.labels[[0, 5]].tolist()
    folders = tmp_path / "folders"
    (folders / "x").mkdir(parents=True)
    for k in (0, 5):
        (tmp_path / f"{k}.png").rename(folders / "x" / f"{k}.png")
    from_files, _ = collect(make_image_dataset(load_class_folders(folders), input_size=32))
    np.testing.assert_array_equal(from_arrays, from_files)


def test_segmentation_dataset_keeps_255_and_aligns(tmp_path):
    fx.write_voc_devkit(tmp_path, height=30, width=40)
    record = load_voc_segmentation(tmp_path)
    images, masks = collect(make_segmentation_dataset(record, input_size=16, batch_size=2))
    assert images.shape == (3, 16, 16, 3) and images.dtype == np.float32
    assert masks.shape == (3, 16, 16) and masks.dtype == np.int32
    present = {0, 255} | {1 + VOC_CLASSES.index(c) for c in ("bus", "aeroplane", "cat")}
    assert 255 in masks and set(np.unique(masks).tolist()) == present
    assert images.min() >= LOW - 1e-3 and images.max() <= HIGH + 1e-3


def test_segmentation_needs_masks_and_matching_sizes(tmp_path):
    devkit = fx.write_voc_devkit(tmp_path, height=30, width=40)
    with pytest.raises(InputError, match="masks"):
        make_segmentation_dataset(load_voc2012(devkit))
    record = load_voc_segmentation(devkit)
    fx.write_voc_mask(record.mask_paths[1], np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError) as info:
        load_rgb_and_mask(record, 1)
    assert "2008_000001.png" in str(info.value) and "2008_000001.jpg" in str(info.value)
