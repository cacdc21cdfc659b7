"""Training-time augmentation for the cpu recipe (``hashing.augment``, docs/recipe.md).

Works on batches of *preprocessed* images (BGR minus the ImageNet mean, as the models
take them) and, for the cached-mask ROL path, on their reliability masks: one random
box per image is cut from both with ``tf.image.crop_and_resize`` and resized back, so
the mask stays aligned with its image; mirroring swaps the box's x ends (a flipped
crop). Colour changes touch the image only. Every draw is stateless, a function of
``(seed, epoch, batch)``: a resumed run sees the same augmented epoch.
"""

from __future__ import annotations

import tensorflow as tf

from rol_hashing.constants import AUGMENTS
from rol_hashing.data.pipeline import VGG_MEAN_BGR
from rol_hashing.errors import InputError

# A crop keeps this share of the image's area, at an aspect ratio in ASPECT.
AREA = (0.6, 1.0)
ASPECT = (3 / 4, 4 / 3)
# Colour: brightness shift (0..255 scale), contrast factor, per-channel gain.
BRIGHTNESS = 25.0
CONTRAST = (0.75, 1.25)
GAIN = (0.85, 1.15)


def random_boxes(seed: tf.Tensor, n: tf.Tensor, mirror: bool) -> tf.Tensor:
    """(n, 4) normalised boxes ``[y1, x1, y2, x2]``: a random area share and aspect,
    placed at random; with ``mirror``, half of them (at random) with x1 > x2."""
    seeds = tf.random.experimental.stateless_split(seed, 5)
    area = tf.random.stateless_uniform((n,), seeds[0], *AREA)
    log_aspect = tf.random.stateless_uniform(
        (n,), seeds[1], tf.math.log(ASPECT[0]), tf.math.log(ASPECT[1])
    )
    aspect = tf.exp(log_aspect)
    h = tf.minimum(tf.sqrt(area / aspect), 1.0)
    w = tf.minimum(tf.sqrt(area * aspect), 1.0)
    y1 = tf.random.stateless_uniform((n,), seeds[2]) * (1.0 - h)
    x1 = tf.random.stateless_uniform((n,), seeds[3]) * (1.0 - w)
    y2, x2 = y1 + h, x1 + w
    if mirror:
        flip = tf.random.stateless_uniform((n,), seeds[4]) < 0.5
        x1, x2 = tf.where(flip, x2, x1), tf.where(flip, x1, x2)
    return tf.stack([y1, x1, y2, x2], axis=1)


def colour_jitter(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """(B, S, S, 3) preprocessed -> the same, each image with a random brightness,
    contrast (about its own mean) and per-channel gain, kept in 0..255 pixel range."""
    n = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    mean = tf.constant(VGG_MEAN_BGR, tf.float32)
    pixels = images + mean
    centre = tf.reduce_mean(pixels, axis=(1, 2, 3), keepdims=True)
    contrast = tf.random.stateless_uniform((n, 1, 1, 1), seeds[0], *CONTRAST)
    shift = tf.random.stateless_uniform((n, 1, 1, 1), seeds[1], -BRIGHTNESS, BRIGHTNESS)
    gain = tf.random.stateless_uniform((n, 1, 1, 3), seeds[2], *GAIN)
    pixels = ((pixels - centre) * contrast + centre + shift) * gain
    return tf.clip_by_value(pixels, 0.0, 255.0) - mean


def augment_batch(
    images: tf.Tensor,
    seed: tf.Tensor,
    kind: str,
    mirror: bool = False,
    masks: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """One batch augmented by ``kind`` ("none", "crop", "crop_colour").

    Args:
        images: (B, S, S, 3) preprocessed images.
        seed: (2,) int32/int64 stateless seed of this batch.
        kind: what to apply.
        mirror: also flip left-right at random (in the crop).
        masks: optional (B, h, w, 1) reliability masks, cropped like their images.

    Returns:
        ``(images, masks)`` of the same shapes (masks None when not given).
    """
    if kind not in AUGMENTS:
        raise InputError(f"augment must be one of {AUGMENTS}, got {kind!r}")
    if kind == "none":
        return images, masks
    images = tf.convert_to_tensor(images, tf.float32)
    seed = tf.cast(seed, tf.int64)
    n = tf.shape(images)[0]
    crop_seed, colour_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    boxes = random_boxes(crop_seed, n, mirror)
    index = tf.range(n)
    side = images.shape[1:3]
    out = tf.image.crop_and_resize(images, boxes, index, side)
    if masks is not None:
        masks = tf.image.crop_and_resize(tf.cast(masks, tf.float32), boxes, index, masks.shape[1:3])
    if kind == "crop_colour":
        out = colour_jitter(out, colour_seed)
    return out, masks


def batch_seed(seed: int, epoch: int, batch: tf.Tensor) -> tf.Tensor:
    """The (2,) stateless seed of batch ``batch`` (0-based) in epoch ``epoch``."""
    return tf.stack(
        [tf.constant(seed * 100_003 + epoch, tf.int64), tf.cast(batch, tf.int64)], axis=0
    )
