"""Segmentation metrics that skip the ignore label: pixel accuracy and mean IoU (readings §1.2).

Backend-agnostic (``keras.ops`` only) and registered, so checkpoints that hold them
load back with ``safe_mode=True``.
"""

from __future__ import annotations

import keras
from keras import ops

from rol_hashing.constants import IGNORE_LABEL


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
