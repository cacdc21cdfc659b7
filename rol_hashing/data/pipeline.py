"""tf.data input pipeline: decode, resize to 256, centre-crop 224, VGG preprocessing.

Every image, whether a file (decoded by PIL, see ``images.py``) or a row of an
in-memory array (CIFAR-10), goes through the same steps (readings §1, paper
sec. 4.2):

1. ``(H, W, 3)`` uint8 RGB;
2. bilinear resize (antialiased) to ``r x r`` with ``r = round(input_size * 256 / 224)``
   (256 at the paper's 224), aspect ratio not kept, as the paper says "resized to 256x256";
3. centre crop ``input_size x input_size``;
4. ``preprocess_vgg``: RGB -> BGR, ImageNet mean subtracted (the Keras VGG16 one),
   applied here and only here.

Masks take the same geometry with nearest-neighbour resizing, so 255 stays 255.
Each step is a pure function of the image, so the same image always yields the
same tensor, whatever the batch, order, shuffling or caching.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from rol_hashing.data.images import decode_image, read_mask
from rol_hashing.data.record import DatasetRecord
from rol_hashing.errors import InputError

VGG_MEAN_BGR = (103.939, 116.779, 123.68)
PAPER_RESIZE = 256
PAPER_CROP = 224


# An image file is decoded shrunk by whole factors, each side kept at least this many
# times the model's resize side (memory follows the model input, not the file's pixels);
# gallery, training and query images all go through ``decode_for_model``, so one file is
# one input whichever way it comes in.
DECODE_SCALE = 4


def resize_size(input_size: int) -> int:
    """Side before cropping: 256 for 224, ``round(input_size * 256 / 224)`` otherwise."""
    return int(round(input_size * PAPER_RESIZE / PAPER_CROP))


def decode_for_model(path: str | Path, input_size: int) -> np.ndarray:
    """An image file as the model's pipeline reads it: uint8 RGB (H, W, 3), each side of
    at least twice ``DECODE_SCALE * resize_size(input_size)`` shrunk by a whole factor
    (``decode_image(min_size=...)``); ImageError names a bad file."""
    return decode_image(path, min_size=DECODE_SCALE * resize_size(input_size))


def preprocess_vgg(x: tf.Tensor | np.ndarray) -> tf.Tensor:
    """float RGB in 0..255 ``(..., 3)`` -> BGR minus the ImageNet mean (float32).

    Identical to ``keras.applications.vgg16.preprocess_input`` (caffe mode).
    """
    x = tf.cast(x, tf.float32)
    return tf.reverse(x, axis=[-1]) - tf.constant(VGG_MEAN_BGR, dtype=tf.float32)


def deprocess_vgg(x: tf.Tensor | np.ndarray) -> np.ndarray:
    """Inverse of ``preprocess_vgg``: uint8 RGB ``(..., 3)`` for plotting."""
    x = np.asarray(x, dtype=np.float32) + np.asarray(VGG_MEAN_BGR, dtype=np.float32)
    return np.clip(np.round(x[..., ::-1]), 0, 255).astype(np.uint8)


def _center_crop(x: tf.Tensor, size: int) -> tf.Tensor:
    height, width = tf.shape(x)[0], tf.shape(x)[1]
    top, left = (height - size) // 2, (width - size) // 2
    return x[top : top + size, left : left + size]


def resize_and_crop(image: tf.Tensor, input_size: int) -> tf.Tensor:
    """``(H, W, 3)`` uint8 -> ``(S, S, 3)`` float32 in 0..255 (resize to r, centre crop S)."""
    r = resize_size(input_size)
    x = tf.image.resize(tf.cast(image, tf.float32), (r, r), method="bilinear", antialias=True)
    x = tf.clip_by_value(x, 0.0, 255.0)
    x = _center_crop(x, input_size)
    return tf.ensure_shape(x, (input_size, input_size, 3))


def resize_and_crop_mask(mask: tf.Tensor, input_size: int) -> tf.Tensor:
    """``(H, W)`` uint8 -> ``(S, S)`` int32, nearest neighbour, same geometry as images."""
    r = resize_size(input_size)
    m = tf.image.resize(mask[:, :, None], (r, r), method="nearest")
    m = _center_crop(m, input_size)[:, :, 0]
    return tf.ensure_shape(tf.cast(m, tf.int32), (input_size, input_size))


def resize_and_crop_masks(masks: np.ndarray, input_size: int) -> np.ndarray:
    """``(B, H, W)`` uint8 masks -> ``(B, S, S)`` int32, as ``resize_and_crop_mask`` does
    to each (nearest neighbour, same geometry as images)."""
    r = resize_size(input_size)
    m = tf.image.resize(np.asarray(masks)[..., None], (r, r), method="nearest")
    top = (r - input_size) // 2
    m = m[:, top : top + input_size, top : top + input_size, 0]
    return tf.cast(m, tf.int32).numpy()


def load_rgb(record: DatasetRecord, index: int, input_size: int | None = None) -> np.ndarray:
    """Image ``index`` of ``record`` as ``(H, W, 3)`` uint8 RGB (array row or decoded
    file); with ``input_size``, a file is decoded as the model reads it
    (``decode_for_model``), else at its full size."""
    if record.images is not None:
        return np.ascontiguousarray(record.images[index])
    if input_size is not None:
        return decode_for_model(record.paths[index], input_size)
    return decode_image(record.paths[index])


def load_rgb_and_mask(record: DatasetRecord, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Image and mask ``index``; ValueError names both files when their sizes differ."""
    if record.mask_paths is None or record.mask_paths[index] is None:
        raise InputError(f"{record.name}: image {record.ids[index]!r} has no mask")
    image = load_rgb(record, index)
    mask = read_mask(record.mask_paths[index])
    if mask.shape != image.shape[:2]:
        source = record.paths[index] if record.paths is not None else record.ids[index]
        raise InputError(
            f"mask {record.mask_paths[index]} is {mask.shape[1]}x{mask.shape[0]} but its image "
            f"{source} is {image.shape[1]}x{image.shape[0]}"
        )
    return image, mask


def preprocess_image(image: tf.Tensor | np.ndarray, input_size: int = 224) -> tf.Tensor:
    """One uint8 RGB image -> the model's input ``(S, S, 3)`` float32 (all steps)."""
    return preprocess_vgg(resize_and_crop(tf.convert_to_tensor(image, tf.uint8), input_size))


def _indices(record: DatasetRecord, indices: np.ndarray | list[int] | None) -> np.ndarray:
    idx = np.arange(len(record)) if indices is None else np.asarray(indices, dtype=np.int64)
    if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= len(record))):
        raise InputError(f"indices must be a 1-D array within 0..{len(record) - 1}")
    return idx


def _finish(
    ds: tf.data.Dataset,
    count: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    cache: bool | str,
    repeat: bool,
    drop_remainder: bool,
) -> tf.data.Dataset:
    if cache:
        ds = ds.cache() if cache is True else ds.cache(str(cache))
        if shuffle:
            ds = ds.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def _source(
    idx: np.ndarray, labels: np.ndarray, shuffle: bool, seed: int, cache: bool | str
) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((idx, labels))
    if shuffle and not cache:  # shuffle cheap indices before decoding
        ds = ds.shuffle(len(idx), seed=seed, reshuffle_each_iteration=True)
    return ds


def _map_options(ds: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)


def make_image_dataset(
    record: DatasetRecord,
    indices: np.ndarray | list[int] | None = None,
    input_size: int = 224,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    cache: bool | str = False,
    repeat: bool = False,
    with_index: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of preprocessed images and labels for ``record[indices]``.

    Args:
        record: any loader's record (files or arrays).
        indices: positions into ``record`` (default: all), e.g. ``split.indices(record).train``.
        input_size: the crop side ``S`` (224 in the paper).
        batch_size: images per batch.
        shuffle: shuffle (seeded, a new order each epoch).
        seed: shuffle seed.
        cache: ``True`` caches preprocessed images in memory, a path caches on disk.
        repeat: repeat forever.
        with_index: also yield each image's position in ``record`` (to recover ids).
        drop_remainder: drop a last, smaller batch.

    Yields:
        ``(images, labels)`` or ``(images, labels, index)``: images ``(B, S, S, 3)``
        float32 VGG-preprocessed; labels ``(B,)`` int64, or ``(B, C)`` float32
        multi-hot; index ``(B,)`` int64.
    """
    idx = _indices(record, indices)
    labels = record.labels[idx]
    labels = labels.astype(np.float32) if record.multilabel else labels.astype(np.int64)

    def load(i: np.ndarray) -> np.ndarray:
        return load_rgb(record, int(i), input_size)

    def prepare(i: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, ...]:
        image = tf.numpy_function(load, [i], tf.uint8, stateful=False)
        image = tf.ensure_shape(image, (None, None, 3))
        x = preprocess_vgg(resize_and_crop(image, input_size))
        return (x, label, i) if with_index else (x, label)

    ds = _source(idx, labels, shuffle, seed, cache)
    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = _finish(ds, len(idx), batch_size, shuffle, seed, cache, repeat, drop_remainder)
    return _map_options(ds)


def make_segmentation_dataset(
    record: DatasetRecord,
    indices: np.ndarray | list[int] | None = None,
    input_size: int = 224,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
    cache: bool | str = False,
    repeat: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of ``(images, masks)`` for a record with ``mask_paths``.

    Yields images ``(B, S, S, 3)`` float32 VGG-preprocessed and masks ``(B, S, S)``
    int32 class indices with 255 (ignore) kept. Arguments as ``make_image_dataset``.
    """
    if record.mask_paths is None:
        raise InputError(f"{record.name}: a segmentation data set needs a record with masks")
    idx = _indices(record, indices)

    def load(i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return load_rgb_and_mask(record, int(i))

    def prepare(i: tf.Tensor, _: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image, mask = tf.numpy_function(load, [i], (tf.uint8, tf.uint8), stateful=False)
        image = tf.ensure_shape(image, (None, None, 3))
        mask = tf.ensure_shape(mask, (None, None))
        x = preprocess_vgg(resize_and_crop(image, input_size))
        return x, resize_and_crop_mask(mask, input_size)

    ds = _source(idx, idx, shuffle, seed, cache)
    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = _finish(ds, len(idx), batch_size, shuffle, seed, cache, repeat, drop_remainder)
    return _map_options(ds)
