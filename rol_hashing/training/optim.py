"""The hashing stream's optimiser and schedule (readings §1.4): SGD with Caffe-style weight
decay (SSDH's solver) and the paper's step learning rate; for the cpu recipe also AdamW
and a linear warm-up (``hashing.optimizer``, ``hashing.warmup_epochs``).

Registered, so checkpoints that hold the optimiser load back with ``safe_mode=True``.
"""

from __future__ import annotations

import keras
from keras import ops

from rol_hashing.errors import InputError


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


def scheduled_learning_rate(
    epoch: int, base: float, drop_epoch: int, after: float, warmup_epochs: int = 0
) -> float:
    """``step_learning_rate``, with the first ``warmup_epochs`` (1-based) rising linearly
    to ``base``: epoch e <= warmup_epochs uses ``base * e / (warmup_epochs + 1)``."""
    if epoch <= warmup_epochs:
        return base * epoch / (warmup_epochs + 1)
    return step_learning_rate(epoch, base, drop_epoch, after)


def hashing_optimizer(
    name: str, learning_rate: float, momentum: float, weight_decay: float
) -> keras.optimizers.Optimizer:
    """``"sgd"``: ``CaffeSGD`` (momentum, coupled L2 ``weight_decay``), the paper's;
    ``"adam"``: Keras' AdamW with ``weight_decay`` as its decoupled decay."""
    if name == "sgd":
        return CaffeSGD(learning_rate, momentum=momentum, l2=weight_decay)
    if name == "adam":
        return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    raise InputError(f"optimizer must be 'sgd' or 'adam', got {name!r}")
