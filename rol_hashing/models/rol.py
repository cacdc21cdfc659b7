"""The Reliability Object Layer (Sec. 3.3 of the paper, readings §1.3).

Given segmentation probabilities P (B, H, W, N) and a feature map F (B, h, w, C):

1. drop the background channel (index 0 by default) -> N-1 channels;
2. R = max over the remaining classes per pixel -> (B, H, W, 1);
3. bring R to (h, w) by area averaging (an average pool when H/h and W/w are
   integers; a bilinear resize otherwise, or always with ``resize="bilinear"``);
4. output F * R, broadcast over channels.

The layer has no weights. ``reliability_mask`` (a function) and
``ReliabilityMask`` (a layer) give R on its own, for notebooks and the mask cache.

``form`` (after step 3, at the feature grid) is for the ablation study: ``"soft"`` is
the paper's R (the default); ``"binary"`` is ``R > 0.5`` (the paper's contribution list
calls R "a binary mask"); ``"normalized"`` divides R by its per-image mean, which keeps
the feature map's energy (an extension, not in the paper).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from rol_hashing.constants import MASK_FORMS
from rol_hashing.errors import InputError

RESIZE_MODES = ("area", "bilinear")
# Guards the "normalized" form against an all-zero mask.
NORMALIZE_EPSILON = 1e-6


def _check(background_index: int, resize: str, form: str = "soft") -> None:
    if form not in MASK_FORMS:
        raise InputError(f"form must be one of {MASK_FORMS}, got {form!r}.")
    if resize not in RESIZE_MODES:
        raise InputError(f"resize must be one of {RESIZE_MODES}, got {resize!r}.")
    if background_index < 0:
        raise InputError(f"background_index must be >= 0, got {background_index}.")


def reliability_mask(
    probs, size: tuple[int, int] | None = None, background_index: int = 0, resize: str = "area"
):
    """The reliability mask R of segmentation probabilities.

    Args:
        probs: (B, H, W, N) per-pixel class probabilities, N >= 2.
        size: (h, w) to bring R to; None keeps (H, W).
        background_index: the channel dropped before the max.
        resize: "area" (average pool when the ratio is an integer, else bilinear)
            or "bilinear".

    Returns:
        (B, h, w, 1) tensor, values in [0, 1].
    """
    _check(background_index, resize)
    n = probs.shape[-1]
    if n is not None and not 0 <= background_index < n:
        raise InputError(f"background_index {background_index} is outside the {n} classes.")
    objects = ops.concatenate(
        [probs[..., :background_index], probs[..., background_index + 1 :]], axis=-1
    )
    r = ops.max(objects, axis=-1, keepdims=True)
    if size is None:
        return r
    big_h, big_w = int(probs.shape[1]), int(probs.shape[2])
    h, w = int(size[0]), int(size[1])
    if (big_h, big_w) == (h, w):
        return r
    if resize == "area" and big_h % h == 0 and big_w % w == 0:
        pool = (big_h // h, big_w // w)
        return ops.average_pool(r, pool_size=pool, strides=pool, padding="valid")
    return ops.image.resize(r, (h, w), interpolation="bilinear")


def mask_form(r, form: str = "soft"):
    """R (B, h, w, 1) in the given form: "soft" (unchanged), "binary" (``R > 0.5`` as
    0/1) or "normalized" (R over its per-image mean, so the mean becomes 1)."""
    if form == "soft":
        return r
    if form == "binary":
        return ops.cast(ops.greater(r, 0.5), r.dtype)
    if form == "normalized":
        mean = ops.mean(r, axis=(1, 2, 3), keepdims=True)
        return r / ops.maximum(mean, NORMALIZE_EPSILON)
    raise InputError(f"form must be one of {MASK_FORMS}, got {form!r}.")


@keras.saving.register_keras_serializable(package="rol_hashing")
class ReliabilityMask(layers.Layer):
    """Computes R (B, h, w, 1) from probabilities (B, H, W, N); see ``reliability_mask``.

    Args:
        size: (h, w) of the feature grid, or None for the probabilities' own size.
        background_index: channel of the background class (0 for VOC).
        resize: "area" or "bilinear".
    """

    def __init__(
        self,
        size: tuple[int, int] | None = None,
        background_index: int = 0,
        resize: str = "area",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        _check(background_index, resize)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.background_index = int(background_index)
        self.resize = resize

    def call(self, probs):
        return reliability_mask(probs, self.size, self.background_index, self.resize)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        if self.size is not None:
            h, w = self.size
        return (b, h, w, 1)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {"size": self.size, "background_index": self.background_index, "resize": self.resize}
        )
        return config


@keras.saving.register_keras_serializable(package="rol_hashing")
class ReliabilityObjectLayer(layers.Layer):
    """ROL: ``layer([probs, features])`` returns ``features * R`` (readings §1.3).

    Args:
        background_index: channel of the background class, dropped before the max.
        resize: how R reaches the feature grid: "area" (default) or "bilinear".
        mask_given: the first input is R itself, already at the feature grid
            ((B, h, w, 1), the cached-mask form), so only the form and step 4 remain.
        form: "soft" (the paper's, default), "binary" or "normalized" (see the module).

    Shapes:
        probs (B, H, W, N) (or R (B, h, w, 1) with ``mask_given``), features
        (B, h, w, C) -> (B, h, w, C).

    Example:
        >>> rol = ReliabilityObjectLayer()
        >>> out = rol([keras.ops.ones((1, 8, 8, 3)) / 3, keras.ops.ones((1, 4, 4, 5))])
        >>> out.shape
        (1, 4, 4, 5)
    """

    def __init__(
        self,
        background_index: int = 0,
        resize: str = "area",
        mask_given: bool = False,
        form: str = "soft",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        _check(background_index, resize, form)
        self.background_index = int(background_index)
        self.resize = resize
        self.mask_given = bool(mask_given)
        self.form = form

    def build(self, input_shape) -> None:
        probs_shape, features_shape = input_shape
        if len(probs_shape) != 4 or len(features_shape) != 4:
            raise InputError(
                f"ReliabilityObjectLayer expects [probs (B,H,W,N), features (B,h,w,C)], "
                f"got shapes {probs_shape} and {features_shape}."
            )
        if self.mask_given:
            if tuple(probs_shape[1:]) != (*features_shape[1:3], 1):
                raise InputError(
                    f"ReliabilityObjectLayer(mask_given=True) expects R (B,h,w,1) at the "
                    f"features' grid, got shapes {probs_shape} and {features_shape}."
                )
            self.built = True
            return
        n = probs_shape[-1]
        if n is not None and not 0 <= self.background_index < n:
            raise InputError(
                f"background_index {self.background_index} is outside the {n} classes."
            )
        self.built = True

    def mask(self, probs, features):
        """R at the feature grid, in the layer's form: (B, h, w, 1)."""
        size = (int(features.shape[1]), int(features.shape[2]))
        r = reliability_mask(probs, size, self.background_index, self.resize)
        return mask_form(r, self.form)

    def call(self, inputs):
        first, features = inputs
        if self.mask_given:
            return ops.multiply(features, mask_form(first, self.form))
        return features * ops.cast(self.mask(first, features), features.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "background_index": self.background_index,
                "resize": self.resize,
                "mask_given": self.mask_given,
                "form": self.form,
            }
        )
        return config
