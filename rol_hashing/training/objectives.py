"""Training objectives beyond SSDH's: the segmentation loss and metrics, the SGD
with Caffe-style weight decay, and the paper's learning-rate schedule.

Backend-agnostic (``keras.ops`` only) and registered, so checkpoints that hold
them load back with ``safe_mode=True``.
"""

from __future__ import annotations

import keras
from keras import ops

IGNORE_LABEL = 255


@keras.saving.register_keras_serializable(package="rol_hashing")
class MaskedSparseCrossEntropy(keras.losses.Loss):
    """Per-pixel cross-entropy of (B, H, W, C) probabilities that skips ``ignore_label``.

    ``y_true`` is (B, H, W) integer class indices; pixels equal to ``ignore_label``
    (VOC's "void" 255) add nothing, and the mean is over the other pixels.
    """

    def __init__(
        self,
        ignore_label: int = IGNORE_LABEL,
        name: str = "masked_sparse_cross_entropy",
        reduction: str = "sum_over_batch_size",
        dtype=None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.ignore_label = int(ignore_label)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, -1)
        valid = ops.cast(ops.not_equal(y_true, self.ignore_label), y_pred.dtype)
        safe = ops.where(ops.equal(y_true, self.ignore_label), 0, y_true)
        ce = keras.losses.sparse_categorical_crossentropy(safe, y_pred)
        per_image = ops.sum(ce * valid, axis=(1, 2))
        counts = ops.sum(valid, axis=(1, 2))
        # Per image: mean over its valid pixels, so the batch mean is per-pixel fair.
        return per_image / ops.maximum(counts, 1.0)

    def get_config(self) -> dict:
        config = super().get_config()
        config["ignore_label"] = self.ignore_label
        return config


@keras.saving.register_keras_serializable(package="rol_hashing")
class PixelAccuracy(keras.metrics.Metric):
    """Fraction of non-ignored pixels whose argmax class equals the label."""

    def __init__(self, ignore_label: int = IGNORE_LABEL, name: str = "pixel_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.ignore_label = int(ignore_label)
        self.correct = self.add_variable((), initializer="zeros", name="correct")
        self.total = self.add_variable((), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, -1)
        valid = ops.not_equal(y_true, self.ignore_label)
        hit = ops.logical_and(valid, ops.equal(ops.cast(ops.argmax(y_pred, -1), "int32"), y_true))
        self.correct.assign_add(ops.sum(ops.cast(hit, "float32")))
        self.total.assign_add(ops.sum(ops.cast(valid, "float32")))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self) -> dict:
        config = super().get_config()
        config["ignore_label"] = self.ignore_label
        return config


def mean_iou_metric(num_classes: int) -> keras.metrics.Metric:
    """Mean IoU over ``num_classes`` from probabilities, ignoring label 255."""
    return keras.metrics.MeanIoU(
        num_classes=num_classes, ignore_class=IGNORE_LABEL, sparse_y_pred=False, name="mean_iou"
    )


@keras.saving.register_keras_serializable(package="rol_hashing")
class CaffeSGD(keras.optimizers.SGD):
    """SGD with momentum and Caffe's coupled L2 weight decay (SSDH's solver).

    The decay ``l2 * w`` is added to the gradient of every kernel (variables of
    rank >= 2; biases and BatchNorm parameters are not decayed, as in SSDH's
    ``decay_mult: 0`` for biases) *before* the momentum update, as Caffe does.
    Keras' own ``weight_decay`` is decoupled from momentum, which at momentum
    0.9 decays about ten times less.
    """

    def __init__(self, learning_rate=1e-3, momentum: float = 0.9, l2: float = 5e-4, **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, **kwargs)
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2 and len(variable.shape) >= 2:
            gradient = gradient + ops.cast(self.l2, variable.dtype) * variable
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        config = super().get_config()
        config["l2"] = self.l2
        return config


def step_learning_rate(epoch: int, base: float, drop_epoch: int, after: float) -> float:
    """The paper's schedule: ``base`` for epochs 1..drop_epoch, then ``after``.

    ``epoch`` is 1-based: with the paper's values, epochs 1-20 use 1e-3 and
    epochs 21-40 use 1e-4.
    """
    return base if epoch <= drop_epoch else after
