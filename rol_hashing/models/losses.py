"""SSDH's loss terms (Yang, Lin & Chen; readings §1.4), usable with ``model.compile``.

With h the (N, K) sigmoid outputs of the hash layer:

- E1 = -(1/(2NK)) * sum_{n,k} (h_nk - 0.5)^2   pushes every bit away from 0.5;
- E2 = (1/(2N)) * sum_n (mean_k h_nk - 0.5)^2   makes each code fire half its bits.

The total is classification + alpha*E1 + beta*E2 (alpha = beta = 1 in SSDH).
Classification is softmax + negative log-likelihood for single-label data and
sigmoid cross-entropy for multi-label data (VOC).

The segmentation stream's loss, ``MaskedSparseCrossEntropy``, is here too (readings §1.2).
"""

from __future__ import annotations

import keras
from keras import ops

from rol_hashing.constants import IGNORE_LABEL


def ssdh_e1(h):
    """E1 of (N, K) hash activations: a scalar, -0.5 * mean((h - 0.5)^2)."""
    return -0.5 * ops.mean(ops.square(h - 0.5))


def ssdh_e2(h):
    """E2 of (N, K) hash activations: a scalar, 0.5 * mean_n((mean_k h - 0.5)^2)."""
    return 0.5 * ops.mean(ops.square(ops.mean(h, axis=-1) - 0.5))


@keras.saving.register_keras_serializable(package="rol_hashing")
class SSDHCodeLoss(keras.losses.Loss):
    """alpha*E1 + beta*E2 on the hash output; ``y_true`` is ignored.

    Per sample it returns alpha * (-0.5 * mean_k (h_k - 0.5)^2) + beta * 0.5 *
    (mean_k h_k - 0.5)^2, so the default mean over the batch is exactly
    alpha*E1 + beta*E2. Feed any (B, K) placeholder (e.g. zeros) as target.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 1.0,
        name: str = "ssdh_code_loss",
        reduction: str = "sum_over_batch_size",
        dtype=None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, y_true, y_pred):
        h = ops.convert_to_tensor(y_pred)
        e1 = -0.5 * ops.mean(ops.square(h - 0.5), axis=-1)
        e2 = 0.5 * ops.square(ops.mean(h, axis=-1) - 0.5)
        return self.alpha * e1 + self.beta * e2

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"alpha": self.alpha, "beta": self.beta})
        return config


def classification_loss(multilabel: bool = False) -> keras.losses.Loss:
    """NLL of softmax outputs with int labels, or sigmoid cross-entropy for multi-hot."""
    if multilabel:
        return keras.losses.BinaryCrossentropy(name="class_loss")
    return keras.losses.SparseCategoricalCrossentropy(name="class_loss")


def ssdh_losses(
    multilabel: bool = False, alpha: float = 1.0, beta: float = 1.0
) -> dict[str, keras.losses.Loss]:
    """Loss dict for ``model.compile`` of a hashing model (outputs "hash" and "class")."""
    return {"class": classification_loss(multilabel), "hash": SSDHCodeLoss(alpha, beta)}


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
