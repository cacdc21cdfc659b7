"""Training inputs: a seeded order per epoch, in-memory or streamed images, and
the hashing targets (the class labels plus a placeholder for the code loss).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from rol_hashing.data.pipeline import make_image_dataset
from rol_hashing.data.record import DatasetRecord
from rol_hashing.training.augment import augment_batch, batch_seed

# Preprocessed training images are kept in memory up to this size.
IN_MEMORY_BYTES = 3 * 2**30


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The (n,) permutation used in 0-based ``epoch``: a function of (seed, epoch) only."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def fits_in_memory(n: int, input_size: int, limit: int = IN_MEMORY_BYTES) -> bool:
    """Whether ``n`` preprocessed float32 images of ``input_size`` fit under ``limit``."""
    return n * input_size * input_size * 3 * 4 <= limit


def materialize_images(
    record: DatasetRecord, indices: np.ndarray, input_size: int, batch_size: int = 64
) -> np.ndarray:
    """(N, S, S, 3) float32 preprocessed images of ``record[indices]``, in order."""
    ds = make_image_dataset(record, indices, input_size=input_size, batch_size=batch_size)
    parts = [x.numpy() for x, _ in ds]
    return np.concatenate(parts) if parts else np.zeros((0, input_size, input_size, 3), "float32")


class HashingInputs:
    """The training set of a hashing run, served one seeded epoch at a time.

    Args:
        record, indices: the training images (``split.indices(record).train``).
        input_size, batch_size, bits: model input side, batch, code length.
        seed: the epoch orders' seed.
        masks: optional (N, h, w, 1) cached reliability masks aligned with ``indices``;
            then the inputs are ``{"image", "mask"}``.
        in_memory: keep preprocessed images in memory (default: when they fit).
        augment, mirror: training-time augmentation (``hashing.augment``,
            ``hashing.augment_mirror``), applied to shuffled (training) epochs only; a
            cached mask is cropped with its image.
    """

    def __init__(
        self,
        record: DatasetRecord,
        indices: np.ndarray,
        input_size: int,
        batch_size: int,
        bits: int,
        seed: int = 0,
        masks: np.ndarray | None = None,
        in_memory: bool | None = None,
        images: np.ndarray | None = None,
        augment: str = "none",
        mirror: bool = False,
    ) -> None:
        self.record = record
        self.indices = np.asarray(indices, np.int64)
        self.input_size = input_size
        self.batch_size = batch_size
        self.bits = bits
        self.seed = seed
        self.masks = masks
        self.augment = augment
        self.mirror = mirror
        labels = record.labels[self.indices]
        self.labels = labels.astype("float32") if record.multilabel else labels.astype("int64")
        if in_memory is None:
            in_memory = fits_in_memory(len(self.indices), input_size)
        if images is None and in_memory:
            images = materialize_images(record, self.indices, input_size)
        self.images = images

    def __len__(self) -> int:
        return len(self.indices)

    def steps_per_epoch(self) -> int:
        return -(-len(self) // self.batch_size)

    def _targets(self, x, y):
        zeros = tf.zeros((tf.shape(y)[0], self.bits), tf.float32)
        return x, {"class": y, "hash": zeros}

    def dataset(self, epoch: int, shuffle: bool = True) -> tf.data.Dataset:
        """Batches of epoch ``epoch`` (0-based): ``(inputs, {"class", "hash"})``; with
        ``shuffle`` (training) also augmented, by (seed, epoch, batch)."""
        order = epoch_order(len(self), self.seed, epoch) if shuffle else np.arange(len(self))
        labels = self.labels[order]
        if self.images is not None:
            images = tf.data.Dataset.from_tensor_slices(self.images[order]).batch(self.batch_size)
        else:
            images = make_image_dataset(
                self.record,
                self.indices[order],
                input_size=self.input_size,
                batch_size=self.batch_size,
            ).map(lambda x, _: x)
        if self.masks is not None:
            masks = tf.data.Dataset.from_tensor_slices(self.masks[order]).batch(self.batch_size)
            images = tf.data.Dataset.zip(images, masks).map(lambda x, m: {"image": x, "mask": m})
        labels_ds = tf.data.Dataset.from_tensor_slices(labels).batch(self.batch_size)
        ds = tf.data.Dataset.zip(images, labels_ds).map(self._targets)
        if shuffle and self.augment != "none":
            ds = ds.enumerate().map(lambda i, xy: (self._augmented(xy[0], epoch, i), xy[1]))
        return ds.prefetch(tf.data.AUTOTUNE)

    def _augmented(self, x, epoch: int, batch):
        seed = batch_seed(self.seed, epoch, batch)
        if isinstance(x, dict):
            image, mask = augment_batch(x["image"], seed, self.augment, self.mirror, x["mask"])
            return {"image": image, "mask": mask}
        return augment_batch(x, seed, self.augment, self.mirror)[0]
